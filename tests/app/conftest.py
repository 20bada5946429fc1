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
prediction_result = _shared.prediction_result
short_video = _shared.short_video
write_edf = _shared.write_edf
write_video = _shared.write_video
load_tiny_graphs = _shared.load_tiny_graphs
EEG_SECONDS = _shared.EEG_SECONDS


def _write_fif(path: Path, edit) -> Path:
    import mne
    import numpy as np

    from milmer.runtime.spec import DEAP_CHANNELS

    rng = np.random.default_rng(1)
    data = 20e-6 * (rng.standard_normal((32, 32)) @ rng.uniform(-1, 1, (32, int(EEG_SECONDS * 128))))
    edit(data)
    raw = mne.io.RawArray(data, mne.create_info(list(DEAP_CHANNELS), 128.0, "eeg"), verbose="error")
    raw.save(path, overwrite=True, verbose="error")
    return path


@pytest.fixture(scope="session")
def gap_eeg(tmp_path_factory) -> Path:
    """12 s of EEG (FIF) with a NaN dropout at 4.2-5.0 s on every channel: windows 3 s and 6 s cross it."""

    import numpy as np

    def gap(data):
        data[:, int(4.2 * 128) : int(5.0 * 128)] = np.nan

    return _write_fif(tmp_path_factory.mktemp("gap") / "gap_raw.fif", gap)


@pytest.fixture(scope="session")
def clipped_eeg(tmp_path_factory) -> Path:
    """12 s of EEG (FIF) whose F3 sits at its maximum for 0.5 s from 7.0 s (a saturated amplifier)."""

    def clip(data):
        data[3, int(7.0 * 128) : int(7.5 * 128)] = 5 * data[3].max()

    return _write_fif(tmp_path_factory.mktemp("clip") / "clip_raw.fif", clip)
