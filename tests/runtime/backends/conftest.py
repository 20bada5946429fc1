"""Fixtures for backend tests: tiny ONNX graphs written to a temporary folder."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def load_tiny_graphs():
    """Import tiny_graphs.py by path (tests run with --import-mode=importlib)."""
    name = "milmer_tests_tiny_graphs"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("tiny_graphs.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


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
