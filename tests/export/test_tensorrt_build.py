"""TensorRT: profiles and trtexec lines (pure Python, pinned); engine builds where TensorRT exists."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from milmer.export import command
from milmer.export.tensorrt_build import (
    build_engine,
    build_engines,
    check_bag_profile,
    graph_profiles,
    trtexec_commands,
)
from milmer.runtime._check import MilmerInputError
from milmer.runtime.spec import ModelSpec

SWIN_FP16 = (
    "trtexec --onnx=swin.fp16.onnx --saveEngine=engines/swin.fp16.trtexec.engine --fp16 "
    "--minShapes=frames:10x3x224x224 --optShapes=frames:80x3x224x224 --maxShapes=frames:320x3x224x224 "
    "--memPoolSize=workspace:4096M --timingCacheFile=engines/timing.cache"
)
FUSION_FP32 = (
    "trtexec --onnx=fusion.onnx --saveEngine=engines/fusion.fp32.trtexec.engine --noTF32 "
    "--minShapes=eeg:2x32x384,tokens:2x10x49x64 --optShapes=eeg:4x32x384,tokens:4x10x49x64 "
    "--maxShapes=eeg:16x32x384,tokens:16x10x49x64 --memPoolSize=workspace:1536M "
    "--timingCacheFile=engines/timing.cache"
)


def test_trtexec_commands_are_pinned(exported):
    swin, fusion = trtexec_commands(exported, (1, 8, 32), "fp16")
    assert swin == SWIN_FP16
    assert fusion.startswith("trtexec --onnx=fusion.fp16.onnx --saveEngine=engines/fusion.fp16.trtexec.engine --fp16 ")
    assert trtexec_commands(exported, (2, 4, 16), "fp32", workspace_gb=1.5)[1] == FUSION_FP32
    with pytest.raises(MilmerInputError, match="Invalid value for 'precision'.*got 'int8'"):
        trtexec_commands(exported, (1, 8, 32), "int8")


def test_trtexec_file_is_written_by_every_export(exported):
    text = (exported / "trtexec.txt").read_text()
    assert SWIN_FP16 in text
    assert "trtexec --onnx=swin.onnx --saveEngine=engines/swin.fp32.trtexec.engine --noTF32" in text
    assert "register_engine('.', 'engines/swin.fp16.trtexec.engine', graph='swin', precision='fp16'" in text


def test_profiles_scale_frames_by_frames_per_window():
    profiles = graph_profiles(ModelSpec(), (1, 8, 32))
    assert profiles["swin"] == {"frames": ((10, 3, 224, 224), (80, 3, 224, 224), (320, 3, 224, 224))}
    assert profiles["fusion"]["tokens"] == ((1, 10, 49, 768), (8, 10, 49, 768), (32, 10, 49, 768))
    assert profiles["fusion"]["eeg"][2] == (32, 32, 384)


@pytest.mark.parametrize("bags", [(0, 1, 2), (1, 8), (4, 2, 8), (1, 2.5, 4), [1, True, 3]])
def test_bad_bag_profiles(bags):
    with pytest.raises(MilmerInputError, match=r"'trt_profile': expected \(min, opt, max\) bags"):
        check_bag_profile(bags)


def test_without_tensorrt_building_says_how_to_install(exported, tmp_path, monkeypatch, tiny_ckpt):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail
    with pytest.raises(MilmerInputError, match=r"TensorRT is not available .*pip install milmer\[trt\]"):
        build_engine(exported / "swin.onnx", graph_profiles(ModelSpec(), (1, 1, 1))["swin"], "fp32", tmp_path)
    # export --trt fails before the (slow) export, leaving nothing behind
    with pytest.raises(MilmerInputError, match="TensorRT is not available"):
        command.export_command(tiny_ckpt, tmp_path / "model", trt=True, progress=False)
    assert not (tmp_path / "model").exists()


@pytest.mark.gpu
@pytest.mark.trt
def test_engines_build_and_match_onnx_runtime(exported, tmp_path):
    pytest.importorskip("tensorrt")
    pytest.importorskip("cuda")
    import shutil

    from milmer.runtime.backends.ort import OrtRunner
    from milmer.runtime.backends.trt import TrtRunner, cuda_device_present

    if not cuda_device_present():
        pytest.skip("no CUDA device")
    model_dir = shutil.copytree(exported, tmp_path / "model")
    built = build_engines(model_dir, ("fp32", "fp16"), (1, 2, 4), workspace_gb=1)
    assert {(e.graph, e.precision) for e in built} == {(g, p) for g in ("swin", "fusion") for p in ("fp32", "fp16")}
    assert (model_dir / "engines" / "timing.cache").is_file()
    frames = np.random.default_rng(0).standard_normal((20, 3, 224, 224)).astype(np.float32)
    with OrtRunner(model_dir / "swin.onnx") as ort_runner:
        expected = ort_runner.infer({"frames": frames})["tokens"]
    for precision, atol in (("fp32", 1e-3), ("fp16", 5e-2)):
        name = "swin.onnx" if precision == "fp32" else "swin.fp16.onnx"
        with TrtRunner(model_dir / name, precision=precision) as trt_runner:
            got = trt_runner.infer({"frames": frames})["tokens"]
        assert np.abs(got - expected).max() < atol, precision


def test_engine_tools_import_without_torch():
    """trtexec lines and engine registration run on a Jetson that has no PyTorch."""
    import subprocess

    code = (
        "import sys; import milmer.export.tensorrt_build; "
        "heavy = [m for m in ('torch', 'transformers', 'tensorrt') if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
