"""Long recordings' full-length arrays in a scratch file (:mod:`milmer.runtime.scratch`): the
same windows as in memory, refused before any work when the disk is short, nothing left behind."""

from __future__ import annotations

import dataclasses
import gc
import mmap
import os
import sys

import numpy as np
import pytest

from milmer.runtime import scratch
from milmer.runtime.check import MilmerInputError
from milmer.runtime.eeg import decimate, working
from milmer.runtime.eeg.preprocess import preprocess_raw
from milmer.runtime.scratch import is_disk_backed
from milmer.runtime.spec import DEAP_CHANNELS, EEGSpec

from .test_decimate import _busy_recording, _raw

linux = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(mmap, "MADV_DONTNEED"), reason="/proc and madvise"
)
NAMES = (*DEAP_CHANNELS, "hEOG", "vEOG")
NO_ICA = dataclasses.replace(EEGSpec(), ica=dataclasses.replace(EEGSpec().ica, enabled=False))


def _preprocess(x, spec=None):
    return preprocess_raw(_raw(x.copy(), NAMES, 512.0), spec or EEGSpec())


@pytest.mark.parametrize("early", [True, False], ids=["early-resampled", "own-rate"])
def test_disk_backed_windows_equal_the_in_memory_ones(scratch_dir, monkeypatch, early):
    """The whole chain (reference, notch, band-pass, ICA, windows) on a scratch-file buffer gives
    exactly the numbers it gives in memory (the same arithmetic on the same values)."""
    x = _busy_recording()
    if early:
        monkeypatch.setattr(decimate, "MAX_FULL_RATE_BYTES", 1)
    in_memory = _preprocess(x)
    monkeypatch.setattr(scratch, "MAX_IN_MEMORY_BYTES", 0)
    on_disk = _preprocess(x)
    assert is_disk_backed(on_disk.data) and not is_disk_backed(in_memory.data)
    assert np.array_equal(on_disk.data, in_memory.data)
    np.testing.assert_array_equal(on_disk.starts, in_memory.starts)
    assert on_disk.flags == in_memory.flags and len(in_memory.info["ica_excluded"]) > 0
    assert {k: v for k, v in on_disk.info.items() if k != "timings"} == {
        k: v for k, v in in_memory.info.items() if k != "timings"
    }


@linux
@pytest.mark.parametrize("outcome", ["success", "error", "interrupt"])
def test_no_scratch_file_is_left_behind(scratch_dir, monkeypatch, outcome, scratch_mappings):
    """The scratch file is unlinked as soon as it is mapped: the folder is empty during the run,
    after it and after Ctrl-C; the space comes back with the last array that maps it."""
    from milmer.runtime.eeg import preprocess as module

    monkeypatch.setattr(scratch, "MAX_IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(decimate, "MAX_FULL_RATE_BYTES", 1)
    seen = []
    real = module.bandpass

    def bandpass(work, spec_eeg):
        seen.append((is_disk_backed(work._data), os.listdir(scratch_dir), scratch_mappings()))
        if outcome == "error":
            raise MilmerInputError("a refusal midway")
        if outcome == "interrupt":
            raise KeyboardInterrupt
        real(work, spec_eeg)

    monkeypatch.setattr(module, "bandpass", bandpass)
    if outcome == "success":
        out = _preprocess(_busy_recording(), dataclasses.replace(EEGSpec(), ica=dataclasses.replace(EEGSpec().ica, enabled=False)))
        assert is_disk_backed(out.data) and scratch_mappings() == 1  # the windows
        del out
    else:
        with pytest.raises(MilmerInputError if outcome == "error" else KeyboardInterrupt) as caught:
            _preprocess(_busy_recording())
        del caught  # its traceback holds the buffer
    gc.collect()
    assert seen == [(True, [], 1)]  # the buffer, disk-backed, no file in the folder
    assert os.listdir(scratch_dir) == [] and scratch_mappings() == 0


def test_the_windows_to_come_are_counted_before_any_work(scratch_dir, monkeypatch):
    """The working buffer's allocation checks room for the windows too: a disk that holds the
    buffer but not the windows refuses at the start, not after the filters and ICA."""
    import shutil

    monkeypatch.setattr(scratch, "MAX_IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(decimate, "MAX_FULL_RATE_BYTES", 1)
    x = _busy_recording()  # 60 s -> 7680 samples at 128 Hz: buffer 34 x 7680 x 8, windows 32 x 7680 x 4
    buffer, windows = 34 * 7680 * 8, 32 * 7680 * 4
    free = buffer + windows // 2
    monkeypatch.setattr(scratch.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(2**40, 0, free))
    started = []
    monkeypatch.setattr(working, "resample_early", lambda *a, **k: started.append(1))
    with pytest.raises(MilmerInputError, match=r"has 2.46 MB free; this recording needs 2.93 MB there"):
        _preprocess(x)
    assert started == []  # refused before reading the recording
    monkeypatch.undo()
    monkeypatch.setenv(scratch.SCRATCH_ENV, str(scratch_dir))
    monkeypatch.setattr(scratch, "MAX_IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(decimate, "MAX_FULL_RATE_BYTES", 1)
    monkeypatch.setattr(scratch.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(2**40, 0, buffer + windows))
    assert is_disk_backed(_preprocess(x, NO_ICA).data)

