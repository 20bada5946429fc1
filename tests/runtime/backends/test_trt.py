"""Native TensorRT backend.

Here (no TensorRT, no GPU) only the import guard, the error messages and the construction run;
the engine tests at the bottom run where TensorRT >= 10, cuda-python and a GPU are present.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from milmer.runtime._check import MilmerInputError
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
        match=r"TensorRT is not available .*pip install milmer\[trt\] cuda-python.*or use backend='ort'",
    ):
        runner.activate()
    assert not runner.is_active
    reason = TrtRunner.unavailable_reason(swin_path, device="cuda", precision="fp32")
    assert reason is not None and reason.startswith("TensorRT is not available")


def test_trt_runs_on_cuda_only(swin_path):
    with pytest.raises(
        MilmerInputError, match=r"Invalid value for 'device': expected one of 'cuda', got 'cpu'"
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


def _build_engine(trt, onnx_path, cache, precision, max_batch):
    from milmer.runtime.backends.trt import local_target
    from milmer.runtime.backends.trt_cache import EngineMeta, engine_paths, file_sha256, write_meta

    target = local_target(precision, onnx_sha256=file_sha256(onnx_path))
    profile = {"frames": ((1, 3, 224, 224), (4, 3, 224, 224), (max_batch, 3, 224, 224))}
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_path.read_bytes()), [parser.get_error(i) for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    opt = builder.create_optimization_profile()
    opt.set_shape("frames", *profile["frames"])
    config.add_optimization_profile(opt)
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
