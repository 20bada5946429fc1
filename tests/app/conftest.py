"""The commands' tests run on the inference tests' inputs: the tiny model and the short synthetic
recording of ``tests/runtime/conftest.py`` (loaded by path: tests run with --import-mode=importlib)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def load_runtime_test_module(stem: str):
    """``tests/runtime/<stem>.py``, loaded once by path."""
    name = f"milmer_tests_runtime_{stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "runtime" / f"{stem}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def syncgen():
    """``tests/runtime/syncgen.py``: recordings out of step in known ways (flash at a known real time)."""
    return load_runtime_test_module("syncgen")


_shared = load_runtime_test_module("conftest")
# Fixtures (pytest collects them from this module's names) and helpers of the runtime tests.
tiny_graphs = _shared.tiny_graphs
tiny_model = _shared.tiny_model
recording = _shared.recording
short_video = _shared.short_video
write_edf = _shared.write_edf
write_video = _shared.write_video
load_tiny_graphs = _shared.load_tiny_graphs
EEG_SECONDS = _shared.EEG_SECONDS
