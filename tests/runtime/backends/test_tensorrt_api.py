"""The TensorRT and ONNX Runtime GPU names milmer uses exist in the real bindings.

``tensorrt_api/`` holds the names read from the real wheels' binaries (``extract.py``: source wheel
and sha256 in each file): ``tensorrt-cu12-bindings`` 10.3.0 (JetPack 6) and 11.4.0.106, and the
execution-provider option names of ``onnxruntime-gpu`` 1.23.2. The stand-ins of
``fake_tensorrt.py`` raise AttributeError when milmer's code reads a name that is not in its
version's file, so every engine-building and running test here also checks the names it touches.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from milmer.runtime.backends.ort import OrtRunner
from milmer.runtime.backends.trt import TrtRunner

from .conftest import load_fake_tensorrt
from .test_trt import _build_engine

API_FILES = {
    "tensorrt-10.3.0.txt": "tensorrt_cu12_bindings-10.3.0-cp311-none-manylinux_2_17_x86_64.whl",
    "tensorrt-11.4.0.106.txt": "tensorrt_cu12_bindings-11.4.0.106-cp311-none-manylinux_2_28_x86_64.whl",
    "onnxruntime-gpu-1.23.2-tensorrt.txt": "onnxruntime_gpu-1.23.2-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
    "onnxruntime-gpu-1.23.2-cuda.txt": "onnxruntime_gpu-1.23.2-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
}
#: Checked by hand in both binaries (strings): present in 10.3 and 11.4.
IN_BOTH = ("STRONGLY_TYPED", "set_timing_cache", "add_optimization_profile", "set_tensor_address",
           "execute_async_v3", "get_tensor_profile_shape", "TF32", "WORKSPACE", "OnnxParser")  # fmt: skip
ENUMS = ("BuilderFlag", "NetworkDefinitionCreationFlag", "MemoryPoolType", "DataType", "TensorIOMode")


def _names(filename: str) -> frozenset[str]:
    fake = load_fake_tensorrt()
    lines = (fake.API_DIR / filename).read_text().splitlines()
    return frozenset(line.split()[0] for line in lines if line and not line.startswith("#"))


def _header(filename: str) -> dict[str, str]:
    lines = (load_fake_tensorrt().API_DIR / filename).read_text().splitlines()
    return dict(line[2:].split(": ", 1) for line in lines if line.startswith("# ") and ": " in line)


@pytest.mark.parametrize("filename", sorted(API_FILES))
def test_each_file_names_its_source_wheel_and_hashes(filename):
    header = _header(filename)
    assert header["wheel"] == API_FILES[filename]
    assert re.fullmatch(r"[0-9a-f]{64}", header["wheel sha256"])
    assert sum(re.fullmatch(r"[0-9a-f]{64}", v) is not None for v in header.values()) == 2  # wheel + .so
    assert int(header["names"]) == len(_names(filename))


def test_the_files_hold_what_the_binaries_were_checked_for():
    v10, v11 = _names("tensorrt-10.3.0.txt"), _names("tensorrt-11.4.0.106.txt")
    assert "FP16" in v10 and "FP16" not in v11
    assert "EXPLICIT_BATCH" in v10 and "EXPLICIT_BATCH" not in v11
    assert set(IN_BOTH) <= v10 & v11


def _stand_in(version: str):
    fake = load_fake_tensorrt()
    return fake, fake.make_tensorrt(version, fake.FakeGPU())


def _members(trt) -> set[str]:
    return {m for e in ENUMS for m in getattr(trt, e).__members__} | set(trt.Logger.Severity.__members__)


@pytest.mark.parametrize(("version", "filename"), [("10.3.0", "tensorrt-10.3.0.txt"), ("11.4.0", "tensorrt-11.4.0.106.txt")])
def test_stand_in_names_are_in_the_real_bindings(version, filename):
    _, trt = _stand_in(version)
    names = _names(filename)
    classes = {n for n, v in vars(trt).items() if isinstance(v, type)}
    assert classes - names == set()
    assert _members(trt) - names == set()


def test_what_11_removed_is_gone_from_the_11_stand_in():
    fake, trt10 = _stand_in("10.3.0")
    _, trt11 = _stand_in("11.4.0")
    gone = _names("tensorrt-10.3.0.txt") - _names("tensorrt-11.4.0.106.txt")
    assert _members(trt10) & gone == {"FP16", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
                                      "REJECT_EMPTY_ALGORITHMS", "WEIGHTLESS", "EXPLICIT_BATCH"}  # fmt: skip
    assert _members(trt11) & gone == set()
    # the rest of the stand-in's removed flags are typing flags (migration guide), still DataType names
    assert fake.REMOVED_IN_11 - gone <= fake.TYPING_FLAGS
    assert "DIRECT_IO" in _names("tensorrt-11.4.0.106.txt") and "DIRECT_IO" in trt11.BuilderFlag.__members__


def test_milmer_reads_only_names_of_each_version(fake_trt, swin_path, tmp_path):
    """Load and run an engine through milmer's runner; every name it read is in that version's file."""
    trt, _ = fake_trt
    _build_engine(trt, swin_path, tmp_path, "fp32", max_batch=4)
    with TrtRunner(swin_path, engine_dir=tmp_path) as runner:
        runner.infer({"frames": np.zeros((2, 3, 224, 224), np.float32)})
    touched = trt.guard.touched
    assert {"Runtime", "deserialize_cuda_engine", "create_execution_context", "set_input_shape",
            "set_tensor_address", "execute_async_v3", "num_io_tensors", "get_tensor_name"} <= touched  # fmt: skip
    assert touched <= trt.guard.names
    if trt.__version__.startswith("11"):
        assert touched.isdisjoint(_names("tensorrt-10.3.0.txt") - _names("tensorrt-11.4.0.106.txt"))


def test_a_name_missing_from_the_bindings_fails_the_runner(monkeypatch, swin_path, tmp_path):
    """Guard: with 'execute_async_v3' struck from the 11.4 names, milmer's run raises AttributeError."""
    trt, _ = load_fake_tensorrt().install(monkeypatch, "11.1.0")
    _build_engine(trt, swin_path, tmp_path, "fp32", max_batch=4)
    monkeypatch.setattr(trt.guard, "names", trt.guard.names - {"execute_async_v3"})
    with TrtRunner(swin_path, engine_dir=tmp_path) as runner, pytest.raises(AttributeError, match="execute_async_v3"):
        runner.infer({"frames": np.zeros((2, 3, 224, 224), np.float32)})


def test_onnx_runtime_gpu_options_exist_in_the_providers(swin_path, tmp_path, monkeypatch):
    """The options milmer gives the TensorRT / CUDA execution providers are names they read."""
    monkeypatch.setattr(OrtRunner, "unavailable_reason", classmethod(lambda cls, *a, **k: None))  # no GPU build here
    runner = OrtRunner(swin_path, device="tensorrt", trt_cache_dir=tmp_path)
    options = dict(runner.provider_options())
    assert set(options) == {"TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"}
    assert set(options["TensorrtExecutionProvider"]) - _names("onnxruntime-gpu-1.23.2-tensorrt.txt") == set()
    assert set(options["CUDAExecutionProvider"]) - _names("onnxruntime-gpu-1.23.2-cuda.txt") == set()
    assert "trt_fp16_enable" in _names("onnxruntime-gpu-1.23.2-tensorrt.txt")  # the file is not empty
