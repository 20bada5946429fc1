"""ONNX Runtime backend: parity with numpy references, input checks, providers, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.backends import ort as ort_backend
from milmer.runtime.backends.base import TensorMeta
from milmer.runtime.backends.ort import OrtRunner


def test_swin_matches_numpy_reference(tiny, tiny_spec, swin_path):
    frames = np.random.default_rng(0).random((3, 3, 224, 224), dtype=np.float32)
    with OrtRunner(swin_path, intra_op_num_threads=1) as runner:
        out = runner.infer({"frames": frames})
        single = runner.infer({"frames": frames[:1]})  # dynamic N
    assert list(out) == ["tokens"]
    assert out["tokens"].shape == (3, 49, 8) and out["tokens"].dtype == np.float32
    np.testing.assert_allclose(out["tokens"], tiny.swin_reference(tiny_spec, frames), atol=1e-5)
    np.testing.assert_allclose(single["tokens"], out["tokens"][:1], atol=1e-6)


def test_fusion_matches_numpy_reference(tiny, tiny_spec, fusion_path):
    rng = np.random.default_rng(1)
    eeg = rng.standard_normal((2, 32, 384)).astype(np.float32)
    tokens = rng.standard_normal((2, 10, 49, 8)).astype(np.float32)
    with OrtRunner(fusion_path, intra_op_num_threads=1) as runner:
        out = runner.infer({"eeg": eeg, "tokens": tokens})
    ref = tiny.fusion_reference(tiny_spec, eeg, tokens)
    assert list(out) == ["logits", "probabilities", "mil_weights", "selected"]
    for name in ("logits", "probabilities", "mil_weights"):
        np.testing.assert_allclose(out[name], ref[name], atol=1e-5, err_msg=name)
    assert out["selected"].dtype == np.int64
    np.testing.assert_array_equal(out["selected"], ref["selected"])
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, atol=1e-6)


def test_input_metadata_from_graph(fusion_path):
    with OrtRunner(fusion_path) as runner:
        meta = runner.input_metadata()
    assert meta == {
        "eeg": TensorMeta(np.float32, (None, 32, 384), ("B", None, None)),
        "tokens": TensorMeta(np.float32, (None, 10, 49, 8), ("B", None, None, None)),
    }


def test_shared_checks_apply(fusion_path):
    rng = np.random.default_rng(2)
    eeg = rng.standard_normal((2, 32, 384)).astype(np.float32)
    tokens = rng.standard_normal((2, 8, 49, 8)).astype(np.float32)
    with OrtRunner(fusion_path) as runner:
        with pytest.raises(
            MilmerInputError,
            match=r"^Invalid input 'tokens': expected shape \(B, 10, 49, 8\), got \(2, 8, 49, 8\)\.$",
        ):
            runner.infer({"eeg": eeg, "tokens": tokens})
        with pytest.raises(
            MilmerInputError, match=r"^Invalid input 'eeg': expected dtype float32, got float16"
        ):
            runner.infer({"eeg": eeg.astype(np.float16), "tokens": tokens[:, :1].repeat(10, axis=1)})


def test_session_options(swin_path):
    with OrtRunner(swin_path, intra_op_num_threads=1) as runner:
        options = runner._session.get_session_options()
        assert options.intra_op_num_threads == 1
        # Idle pools sleep: the detector, backbone and fusion sessions take turns on the same cores.
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert runner._session.get_providers() == ["CPUExecutionProvider"]
    assert OrtRunner(swin_path).intra_op_num_threads == ort_backend.default_threads() >= 1
    with pytest.raises(
        MilmerInputError, match=r"'intra_op_num_threads': expected an integer >= 1 or None, got 0"
    ):
        OrtRunner(swin_path, intra_op_num_threads=0)


@pytest.mark.parametrize(
    ("device", "provider"), [("cuda", "CUDAExecutionProvider"), ("tensorrt", "TensorrtExecutionProvider")]
)
def test_unavailable_provider_is_an_error(swin_path, device, provider):
    available = ort_backend.available_providers()
    if provider in available:
        pytest.skip(f"this onnxruntime has {provider}")
    with pytest.raises(MilmerInputError) as info:
        OrtRunner(swin_path, device=device)
    message = str(info.value)
    assert f"Invalid value for '--device': '{device}' needs onnxruntime's {provider}" in message
    assert f"offers only {', '.join(available)}" in message
    assert "onnxruntime-gpu" in message


def test_provider_dropped_by_session_is_an_error(swin_path, monkeypatch):
    """ORT warns and runs on CPU when a GPU provider fails to start; we refuse instead."""
    if "CUDAExecutionProvider" in ort_backend.available_providers():
        pytest.skip("this onnxruntime really has CUDA")
    real = ort_backend.available_providers()
    monkeypatch.setattr(ort_backend, "available_providers", lambda: ["CUDAExecutionProvider", *real])
    runner = OrtRunner(swin_path, device="cuda")
    with (
        pytest.warns(UserWarning),
        pytest.raises(
            MilmerInputError,
            match=r"'--device': 'cuda' needs onnxruntime's CUDAExecutionProvider started for 'swin\.onnx', got a session with only CPUExecutionProvider \(it could not start CUDAExecutionProvider\); check the CUDA",
        ),
    ):
        runner.activate()
    assert not runner.is_active


@pytest.fixture
def trt_ep(monkeypatch):
    """Pretend this onnxruntime has the TensorRT and CUDA EPs (options are built, no session)."""
    monkeypatch.setattr(
        ort_backend,
        "available_providers",
        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    )


def test_tensorrt_provider_options(swin_path, fusion_path, tmp_path, trt_ep):
    """The EP gets the graph's optimisation profile (1-32 bags: frames x10), so a shorter last batch
    does not rebuild the engine; engines and timings are cached; no precision flag (strong typing)."""
    runner = OrtRunner(
        swin_path,
        device="tensorrt",
        precision="fp16",
        trt_cache_dir=tmp_path / "c",
        trt_workspace_bytes=1 << 30,
    )
    (name, trt), (cuda, _), (cpu, _) = runner.provider_options()
    assert (name, cuda, cpu) == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    assert trt == {
        "trt_profile_min_shapes": "frames:10x3x224x224",
        "trt_profile_opt_shapes": "frames:80x3x224x224",
        "trt_profile_max_shapes": "frames:320x3x224x224",
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(tmp_path / "c"),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(tmp_path / "c"),
        "trt_max_workspace_size": 1 << 30,
    }
    fusion = OrtRunner(fusion_path, device="tensorrt").provider_options()[0][1]
    assert fusion["trt_profile_max_shapes"] == "eeg:32x32x384,tokens:32x10x49x8"
    assert fusion["trt_profile_min_shapes"] == "eeg:1x32x384,tokens:1x10x49x8"
    default = OrtRunner(swin_path, device="tensorrt")
    assert default.trt_cache_dir == swin_path.parent / "engines" / "ort-trt"
    custom = {"frames": ((2, 3, 224, 224), (4, 3, 224, 224), (6, 3, 224, 224))}
    assert OrtRunner(swin_path, device="tensorrt", trt_profile=custom).provider_options()[0][1][
        "trt_profile_opt_shapes"
    ] == "frames:4x3x224x224"
    assert OrtRunner(swin_path, device="cpu").provider_options() == [("CPUExecutionProvider", {})]


def test_int8_with_tensorrt_ep_is_refused(swin_path, trt_ep):
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid combination of '--precision' 'int8' and '--device' 'tensorrt': milmer's int8 graphs are "
        r"dynamically quantised for CPUs .* use --precision fp16 or fp32 with --device tensorrt, or --precision "
        r"int8 with --device cpu\.$",
    ):
        OrtRunner(swin_path, device="tensorrt", precision="int8")
    assert OrtRunner(swin_path, device="cuda", precision="int8").device == "cuda"


def test_corrupt_onnx_is_an_input_error(tmp_path):
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"\x08\x07not an onnx file at all" * 10)
    runner = OrtRunner(bad)
    with pytest.raises(
        MilmerInputError, match=r"Cannot load ONNX model '.*garbage\.onnx' \(corrupt, truncated"
    ):
        runner.activate()
    assert not runner.is_active


def test_truncated_onnx_is_an_input_error(tmp_path, fusion_path):
    data = fusion_path.read_bytes()
    cut = tmp_path / "fusion.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MilmerInputError, match=r"Cannot load ONNX model '.*fusion\.onnx'"):
        OrtRunner(cut).activate()
