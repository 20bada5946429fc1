"""Native TensorRT backend.

Without TensorRT or a GPU (this project's CI) the runner is driven through typed stand-ins of the
TensorRT 10.3 and 11.x APIs and cudart (``fake_tensorrt.py``, the ``fake_trt`` fixture runs each
test once per version); the ``trt``/``gpu`` tests at the bottom run the real thing where
TensorRT, cuda-python and a GPU are present. The real ones have never run here.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.backends import resolve_backend
from milmer.runtime.backends.ort import OrtRunner
from milmer.runtime.backends.trt import TrtRunner, cuda_device_present


def test_module_imports_without_tensorrt():
    code = (
        "import sys; import milmer.runtime.backends.trt, milmer.runtime.backends; "
        "heavy = [m for m in ('tensorrt', 'cuda', 'onnxruntime', 'torch') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_activate_without_tensorrt_says_how_to_install(swin_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail
    runner = TrtRunner(swin_path)  # construction needs no TensorRT
    assert runner.engine_dir == swin_path.parent / "engines"
    with pytest.raises(
        MilmerInputError,
        match=r"TensorRT is not available .*pip install \"milmer\[trt\]\".*or use --backend ort",
    ):
        runner.activate()
    assert not runner.is_active
    reason = TrtRunner.unavailable_reason(swin_path, device="cuda", precision="fp32")
    assert reason is not None and reason.startswith("TensorRT is not available")


def test_trt_runs_on_cuda_only(swin_path):
    with pytest.raises(
        MilmerInputError, match=r"Invalid value for '--device': expected one of 'cuda', got 'cpu'"
    ):
        TrtRunner(swin_path, device="cpu")


def test_cuda_device_present_is_false_without_cuda_python(monkeypatch):
    monkeypatch.setitem(sys.modules, "cuda", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    assert cuda_device_present() is False


# ---------------------------------------------------------------------- with TensorRT and a GPU
def _need_trt_gpu():
    trt = pytest.importorskip("tensorrt")
    pytest.importorskip("cuda")
    if not cuda_device_present():
        pytest.skip("no CUDA device")
    return trt


def _build_engine(trt, onnx_path, cache, precision, max_batch, profile=None):
    """A strongly typed engine for ``onnx_path`` filed in ``cache`` the way export files it."""
    from milmer.runtime.backends.trt import local_target
    from milmer.runtime.backends.trt_cache import EngineMeta, engine_paths, file_sha256, write_meta

    target = local_target(precision, onnx_sha256=file_sha256(onnx_path))
    if profile is None:
        profile = {"frames": ((1, 3, 224, 224), (4, 3, 224, 224), (max_batch, 3, 224, 224))}
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(onnx_path)), [parser.get_error(i) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    opt = builder.create_optimization_profile()
    for name, shapes in profile.items():
        opt.set_shape(name, *shapes)
    assert config.add_optimization_profile(opt) == 0
    serialized = builder.build_serialized_network(network, config)
    assert serialized is not None
    meta = EngineMeta(
        onnx_name=onnx_path.name,
        onnx_sha256=target.onnx_sha256,
        tensorrt_version=target.tensorrt_version,
        gpu_name=target.gpu_name,
        compute_capability=target.compute_capability,
        precision=precision,
        profile=profile,
    )
    engine_path, _ = engine_paths(cache, meta.key)
    cache.mkdir(parents=True, exist_ok=True)
    engine_path.write_bytes(bytes(serialized))
    write_meta(meta, cache)
    return engine_path, meta


FUSION_PROFILE = {
    "eeg": ((1, 32, 384), (2, 32, 384), (4, 32, 384)),
    "tokens": ((1, 10, 49, 8), (2, 10, 49, 8), (4, 10, 49, 8)),
}


# ---------------------------------------------------------------------- typed stand-ins of 10.3 / 11.x
def test_runner_matches_onnx_runtime_through_the_api(fake_trt, tiny, tiny_spec, swin_path, fusion_path, tmp_path):
    """Engines load, buffers are sized and copied both ways, shapes reset per call (10.3 and 11.x)."""
    trt, cudart = fake_trt
    cache = tmp_path / "engines"
    swin_engine, _ = _build_engine(trt, swin_path, cache, "fp32", max_batch=8)
    _build_engine(trt, fusion_path, cache, "fp32", max_batch=4, profile=FUSION_PROFILE)
    rng = np.random.default_rng(0)
    frames = rng.random((5, 3, 224, 224), dtype=np.float32)
    eeg = rng.standard_normal((3, 32, 384)).astype(np.float32)
    tokens = rng.standard_normal((3, 10, 49, 8)).astype(np.float32)
    with TrtRunner(swin_path, engine_dir=cache) as runner:
        assert runner.engine_path == swin_engine
        out = runner.infer({"frames": frames})["tokens"]
        small = runner.infer({"frames": frames[:2]})["tokens"]  # buffers reused, shapes reset
        with pytest.raises(MilmerInputError, match=r"shape \(9, 3, 224, 224\) is outside the engine's optimisation profile"):
            runner.infer({"frames": np.zeros((9, 3, 224, 224), np.float32)})
        assert len(cudart.memory) == 2  # one buffer per tensor, grown in place
    assert not cudart.memory and not cudart.streams  # freed on deactivate
    np.testing.assert_allclose(out, tiny.swin_reference(tiny_spec, frames), atol=1e-5)
    np.testing.assert_array_equal(small, out[:2])
    with TrtRunner(fusion_path, engine_dir=cache) as runner, OrtRunner(fusion_path) as ort_runner:
        got, want = runner.infer({"eeg": eeg, "tokens": tokens}), ort_runner.infer({"eeg": eeg, "tokens": tokens})
    assert list(got) == list(want) == ["logits", "probabilities", "mil_weights", "selected"]
    for name in want:
        assert got[name].dtype == want[name].dtype
        np.testing.assert_array_equal(got[name], want[name])


def test_auto_falls_back_when_a_cuda_call_fails(fake, monkeypatch, swin_path, tmp_path, no_openvino):
    """A CUDA RuntimeError while probing TensorRT is a reason to skip it, not a crash."""
    fake.install(monkeypatch, "10.3.0", fail_properties=True)
    reason = TrtRunner.unavailable_reason(swin_path, device="cuda", precision="fp32")
    assert reason == "CUDA error in cudaGetDeviceProperties: cudaErrorInsufficientDriver"
    assert resolve_backend(swin_path, device="auto") == "ort"
    fake.install(monkeypatch, "11.1.0", no_gpu=True)
    assert TrtRunner.unavailable_reason(swin_path, device="cuda", precision="fp32") == "no CUDA device found"


def test_no_engine_is_a_reason_not_an_error(fake_trt, swin_path, tmp_path):
    reason = TrtRunner.unavailable_reason(swin_path, device="cuda", precision="fp32", engine_dir=tmp_path / "none")
    assert reason.startswith("No TensorRT engine in ") and "milmer export CKPT --out DIR --trt" in reason


def test_output_with_unknown_shape_is_a_clear_error(fake_trt, swin_path, tmp_path, monkeypatch):
    trt, _ = fake_trt
    _build_engine(trt, swin_path, tmp_path / "engines", "fp32", max_batch=4)
    monkeypatch.setattr(trt.IExecutionContext, "get_tensor_shape", lambda self, name: (-1, 49, 8))
    with TrtRunner(swin_path, engine_dir=tmp_path / "engines") as runner:
        with pytest.raises(
            MilmerInputError,
            match=r"gives output 'tokens' an unknown shape \(-1, 49, 8\) for inputs frames \(2, 3, 224, 224\); "
            r"milmer's graphs have no data-dependent outputs",
        ):
            runner.infer({"frames": np.zeros((2, 3, 224, 224), np.float32)})


def test_refused_tensor_address_is_an_error(fake_trt, swin_path, tmp_path, monkeypatch):
    trt, _ = fake_trt
    _build_engine(trt, swin_path, tmp_path / "engines", "fp32", max_batch=4)
    monkeypatch.setattr(trt.IExecutionContext, "set_tensor_address", lambda self, name, ptr: False)
    with TrtRunner(swin_path, engine_dir=tmp_path / "engines") as runner:
        with pytest.raises(RuntimeError, match=r"TensorRT refused the device address of tensor 'frames'"):
            runner.infer({"frames": np.zeros((2, 3, 224, 224), np.float32)})


def test_engine_that_does_not_fit_its_metadata_is_refused(fake_trt, swin_path, tmp_path):
    import json

    trt, _ = fake_trt
    engine_path, _ = _build_engine(trt, swin_path, tmp_path / "engines", "fp32", max_batch=8)
    meta_path = engine_path.with_suffix(".json")
    data = json.loads(meta_path.read_text())
    data["profile"]["frames"][2] = [16, 3, 224, 224]  # says max 16, the engine holds max 8
    meta_path.write_text(json.dumps(data))
    with pytest.raises(
        MilmerInputError,
        match=r"does not fit its profile: input 'frames' profile min/opt/max .*\(8, 3, 224, 224\)\) vs "
        r".*\(16, 3, 224, 224\)\); rebuild it with: milmer export CKPT --out DIR --trt",
    ):
        TrtRunner(swin_path, engine_dir=tmp_path / "engines").activate()


def test_engine_from_another_tensorrt_is_refused(fake, monkeypatch, swin_path, tmp_path):
    import json

    trt, _ = fake.install(monkeypatch, "10.3.0")
    engine_path, _ = _build_engine(trt, swin_path, tmp_path / "engines", "fp32", max_batch=4)
    fake.install(monkeypatch, "11.1.0")
    with pytest.raises(MilmerInputError, match=r"differs in tensorrt_version: tensorrt_version '10.3.0' vs '11.1.0'"):
        TrtRunner(engine_path).activate()  # its metadata says so
    meta_path = engine_path.with_suffix(".json")
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "tensorrt_version": "11.1.0"}))
    with pytest.raises(MilmerInputError, match=r"Cannot load TensorRT engine .*built by another TensorRT version or GPU"):
        TrtRunner(engine_path).activate()  # metadata that lies: TensorRT itself refuses the plan


@pytest.mark.trt
@pytest.mark.gpu
def test_engine_matches_onnx_runtime(tiny, tiny_spec, swin_path, tmp_path):
    trt = _need_trt_gpu()
    cache = tmp_path / "engines"
    engine_path, _ = _build_engine(trt, swin_path, cache, "fp32", max_batch=8)
    frames = np.random.default_rng(0).random((5, 3, 224, 224), dtype=np.float32)
    with TrtRunner(swin_path, engine_dir=cache) as runner:
        assert runner.engine_path == engine_path
        out = runner.infer({"frames": frames})
        small = runner.infer({"frames": frames[:2]})  # buffers reused, shapes reset
        with pytest.raises(MilmerInputError, match=r"outside the engine's optimisation profile"):
            runner.infer({"frames": np.zeros((9, 3, 224, 224), np.float32)})
    np.testing.assert_allclose(out["tokens"], tiny.swin_reference(tiny_spec, frames), atol=1e-4)
    np.testing.assert_allclose(small["tokens"], out["tokens"][:2], atol=1e-5)
    with TrtRunner(engine_path) as direct:  # the engine file itself
        np.testing.assert_allclose(direct.infer({"frames": frames})["tokens"], out["tokens"], atol=1e-6)


@pytest.mark.trt
@pytest.mark.gpu
def test_engine_for_other_precision_is_refused(swin_path, tmp_path):
    trt = _need_trt_gpu()
    cache = tmp_path / "engines"
    _build_engine(trt, swin_path, cache, "fp32", max_batch=4)
    with pytest.raises(MilmerInputError, match=r"differs in precision: precision 'fp32' vs 'fp16'"):
        TrtRunner(swin_path, precision="fp16", engine_dir=cache).activate()


def test_trt_extra_stays_on_the_cuda_12_line():
    """tensorrt-cu12 (the `tensorrt` metapackage pulls tensorrt-cu13 since 11.x) and cuda-python 12:
    cuda-python 13 needs a CUDA 13 driver, and JetPack 6 is CUDA 12."""
    tomllib = pytest.importorskip("tomllib")
    from pathlib import Path

    from packaging.requirements import Requirement

    pyproject = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    extra = {r.name: r.specifier for r in map(Requirement, pyproject["project"]["optional-dependencies"]["trt"])}
    assert set(extra) == {"tensorrt-cu12", "cuda-python"}
    assert {v for v in ("9.3.0", "10.3.0", "10.16.0", "11.4.0.106") if v in extra["tensorrt-cu12"]} == {
        "10.3.0", "10.16.0", "11.4.0.106"
    }
    assert {v for v in ("11.8.0", "12.0.0", "12.9.1", "13.0.0", "13.4.4") if v in extra["cuda-python"]} == {
        "12.0.0", "12.9.1"
    }
