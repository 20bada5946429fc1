"""The commands' tests run on the inference tests' inputs: the tiny model and the short synthetic
recording of ``tests/runtime/conftest.py`` (loaded by path: tests run with --import-mode=importlib)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _runtime_conftest():
    name = "milmer_tests_runtime_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "runtime" / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_shared = _runtime_conftest()
# Fixtures (pytest collects them from this module's names) and helpers of the runtime tests.
tiny_graphs = _shared.tiny_graphs
tiny_model = _shared.tiny_model
recording = _shared.recording
short_video = _shared.short_video
write_edf = _shared.write_edf
write_video = _shared.write_video
load_tiny_graphs = _shared.load_tiny_graphs
EEG_SECONDS = _shared.EEG_SECONDS
