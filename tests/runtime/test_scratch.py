"""The scratch file for full-length arrays (:mod:`milmer.runtime.scratch`): ordinary arrays when
small, pages handed back, refusals up front, ``.npz`` written a block at a time, nothing left behind."""

from __future__ import annotations

import gc
import mmap
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from milmer.runtime import scratch
from milmer.runtime.check import MilmerInputError
from milmer.runtime.scratch import empty, is_disk_backed, release
from milmer.runtime.windows import EEGWindows

linux = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(mmap, "MADV_DONTNEED"), reason="/proc and madvise"
)


def _rss_mb() -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_small_arrays_stay_ordinary_and_make_no_folder(scratch_dir):
    a = empty((4, 5))
    assert type(a) is np.ndarray and not is_disk_backed(a) and not scratch_dir.exists()
    release(a)  # nothing to do
    release(None)


@linux
def test_release_hands_the_touched_pages_back(scratch_dir, monkeypatch, scratch_mappings):
    monkeypatch.setattr(scratch, "MAX_IN_MEMORY_BYTES", 0)
    a = empty((200 * 2**20 // 8,))  # 200 MB
    assert is_disk_backed(a) and is_disk_backed(a[10:20]) and os.listdir(scratch_dir) == []  # unlinked at once
    before = _rss_mb()
    a[:] = 1.5
    touched = _rss_mb()
    release(a[5:])  # a view finds its mapping
    released = _rss_mb()
    assert touched - before > 180 and touched - released > 180, (before, touched, released)
    assert a[0] == 1.5 and a[-1] == 1.5 and a.sum() == 1.5 * a.size  # the data stays in the file
    del a
    gc.collect()
    assert scratch_mappings() == 0


def test_too_little_disk_space_is_refused_up_front(scratch_dir, monkeypatch):
    import shutil

    monkeypatch.setattr(scratch, "MAX_IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(scratch.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10 * 2**30, 0, 2**20))
    with pytest.raises(MilmerInputError, match=(
        rf"Invalid value for 'MILMER_SCRATCH': the scratch folder {scratch_dir} has 1.00 MB free; this recording "
        r"needs 100 MB there for its EEG \(about 0.2 GB per hour of recording\)\. Free space there or set MILMER_SCRATCH"
    )):  # fmt: skip
        empty((100 * 2**20 // 4,), np.float32)


def test_a_scratch_folder_that_cannot_be_made_is_refused(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(scratch.SCRATCH_ENV, str(blocker / "scratch"))
    monkeypatch.setattr(scratch, "MAX_IN_MEMORY_BYTES", 0)
    with pytest.raises(MilmerInputError, match=r"cannot use .*a-file/scratch as the scratch folder .*needs 1.00 MB there for its EEG \(about 0.2 GB per hour of recording\)\. Set MILMER_SCRATCH"):
        empty((2**20,), np.uint8)


def test_the_default_scratch_folder_is_under_the_milmer_home(tmp_path, monkeypatch):
    monkeypatch.delenv(scratch.SCRATCH_ENV, raising=False)
    monkeypatch.setenv("MILMER_HOME", str(tmp_path))
    assert scratch.scratch_folder() == tmp_path / "scratch"


def test_selecting_windows_keeps_a_long_recording_out_of_memory(scratch_dir, monkeypatch):
    data = np.arange(6 * 2 * 3, dtype=np.float32).reshape(6, 2, 3)
    windows = EEGWindows(data=data, starts=np.arange(6.0))
    assert windows.select(np.ones(6, bool)).data is data  # all kept: no copy
    monkeypatch.setattr(scratch, "MAX_IN_MEMORY_BYTES", 0)
    mask = np.array([1, 0, 1, 1, 0, 1], bool)
    kept = windows.select(mask)
    assert is_disk_backed(kept.data) and np.array_equal(kept.data, data[mask]) and kept.starts.tolist() == [0, 2, 3, 5]


def test_savez_writes_the_file_np_savez_writes(scratch_dir, monkeypatch, tmp_path):
    """The same members, byte for byte, as np.savez: a scratch-backed array (written a block at
    a time), ordinary arrays, strings and a scalar."""
    import zipfile

    monkeypatch.setattr(scratch, "WRITE_BLOCK_BYTES", 100)  # several blocks, one a partial row
    monkeypatch.setattr(scratch, "MAX_IN_MEMORY_BYTES", 0)
    big = empty((7, 3, 5, 4), np.uint8)
    big[:] = np.arange(big.size, dtype=np.uint8).reshape(big.shape)
    monkeypatch.setattr(scratch, "MAX_IN_MEMORY_BYTES", 2**20)
    arrays = {"faces": big, "starts": np.arange(7.0), "flags": np.array(["a;b", "", "c"]), "n": np.int64(3)}
    scratch.savez(tmp_path / "ours.npz", **arrays)
    np.savez(tmp_path / "numpy.npz", **{k: np.asarray(v) for k, v in arrays.items()})
    with zipfile.ZipFile(tmp_path / "ours.npz") as ours, zipfile.ZipFile(tmp_path / "numpy.npz") as theirs:
        assert ours.namelist() == theirs.namelist() == ["faces.npy", "starts.npy", "flags.npy", "n.npy"]
        for name in theirs.namelist():
            assert ours.read(name) == theirs.read(name), name
    with np.load(tmp_path / "ours.npz") as loaded:
        assert np.array_equal(loaded["faces"], big) and loaded["flags"].tolist() == ["a;b", "", "c"]


@linux
def test_savez_keeps_a_scratch_array_out_of_the_resident_set(scratch_dir, monkeypatch, tmp_path):
    """numpy's writer touches every page of the array at once; ours a block at a time, releasing
    each: the process's peak (VmHWM, reset first) grows by blocks, not by the array's 200 MB."""
    clear_refs = Path("/proc/self/clear_refs")
    try:
        clear_refs.write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        pytest.skip("cannot reset the peak RSS here")
    monkeypatch.setattr(scratch, "MAX_IN_MEMORY_BYTES", 0)
    a = empty((200, 2**20), np.uint8)  # 200 MB
    for start in range(0, 200, 20):
        a[start : start + 20] = 7
        release(a)
    clear_refs.write_text("5")
    before = _rss_mb()
    scratch.savez(tmp_path / "big.npz", data=a)
    assert _peak_mb() - before < 100, (before, _peak_mb())
    assert (tmp_path / "big.npz").stat().st_size > 200 * 2**20


def _peak_mb() -> float:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
