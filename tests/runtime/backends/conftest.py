"""Fixtures for backend tests: tiny ONNX graphs written to a temporary folder."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load(name: str, filename: str):
    """Import a helper module of this folder by path (tests run with --import-mode=importlib)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(filename))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def load_tiny_graphs():
    return _load("milmer_tests_tiny_graphs", "tiny_graphs.py")


def load_fake_tensorrt():
    """Typed stand-ins for TensorRT 10.3 / 11.x and cudart (see fake_tensorrt.py)."""
    return _load("milmer_tests_fake_tensorrt", "fake_tensorrt.py")


#: The TensorRT versions milmer supports: JetPack 6's, and what `pip install tensorrt` gives today.
TRT_VERSIONS = ("10.3.0", "11.1.0")


@pytest.fixture(params=TRT_VERSIONS)
def fake_trt(request, monkeypatch):
    """(tensorrt, cudart) stand-ins of one supported TensorRT version, with one GPU ('Orin', sm_87)."""
    return load_fake_tensorrt().install(monkeypatch, request.param)


@pytest.fixture(scope="session")
def fake():
    return load_fake_tensorrt()


@pytest.fixture(scope="session")
def tiny():
    return load_tiny_graphs()


@pytest.fixture(scope="session")
def tiny_spec(tiny):
    return tiny.tiny_spec()


@pytest.fixture(scope="session")
def model_dir(tiny, tiny_spec, tmp_path_factory):
    """A model directory with fp32 graphs: spec.json, swin.onnx, fusion.onnx."""
    return tiny.write_model_dir(tmp_path_factory.mktemp("model"), tiny_spec)


@pytest.fixture(scope="session")
def swin_path(model_dir):
    return model_dir / "swin.onnx"


@pytest.fixture(scope="session")
def fusion_path(model_dir):
    return model_dir / "fusion.onnx"


@pytest.fixture
def no_openvino(monkeypatch):
    """OpenVINO absent (as in the torch-free Python 3.10 CI env): 'auto' falls back to ONNX Runtime on
    the CPU. Tests of the TensorRT/CUDA fallbacks use it so that their CPU answer does not depend on
    whether the openvino extra is installed."""
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)
