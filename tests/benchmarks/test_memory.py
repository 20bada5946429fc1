"""The EEG memory figure is the preprocessing child's own peak, never the benchmark's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from milmer.benchmarks.memory import TARGET_MB, measure_memory

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the inherited ru_maxrss is a Linux trait")


@linux
def test_child_peak_is_not_the_parents(tmp_path):
    """On Linux a child's ``ru_maxrss`` starts at its parent's peak; CI's bench process (about
    2 GB) once reported 2089 MB for a 60 s file that needs about 300 MB. With the parent holding
    1.5 GB, the 20 s figure stays far below it."""
    pytest.importorskip("pyedflib")
    ballast = np.ones(int(1.5 * 2**30) // 8)  # 1.5 GiB resident in this (parent) process
    mem = measure_memory(tmp_path, seconds=20)
    assert ballast[-1] == 1.0
    assert mem["n_windows"] == 6 and mem["recording_s"] == 20 and mem["channels"] == 41
    assert 50 < mem["peak_rss_mb"] < 1000, mem
    assert mem["met"] is (mem["peak_rss_mb"] <= TARGET_MB)
    assert list(tmp_path.iterdir()) == []  # the BDF is deleted after the run


def test_the_memory_figure_is_on_the_summary_screen_and_in_bench_md():
    """bench.json's ``eeg_memory`` is read back as one line in the summary screen and bench.md:
    the figure, the file it was measured on and the target's verdict; a skipped one says why."""
    from milmer.benchmarks.markdown import markdown
    from milmer.benchmarks.summary import eeg_memory_line

    measured = {
        "recording_s": 3600, "sfreq": 2048, "channels": 41, "file_mb": 865.2, "peak_rss_mb": 341.5,
        "wall_s": 14.678, "n_windows": 1200, "target_mb": 2048.0, "met": True,
        "notes": ["resampled early (2048 -> 128 Hz, polyphase 1/16, read 60 s at a time) to bound memory"],
    }  # fmt: skip
    line = (
        "EEG preprocessing memory: peak RSS 342 MB for 1 h of a 41-channel 2048 Hz BDF (865 MB file, 1200 "
        "windows, 14.7 s), target <= 2048 MB for any length and rate: met"
    )
    assert eeg_memory_line({"eeg_memory": measured}) == line
    missed = eeg_memory_line({"eeg_memory": {**measured, "peak_rss_mb": 2100.0, "met": False}})
    assert missed == line.replace("342 MB", "2100 MB").replace(": met", ": NOT met")
    assert eeg_memory_line({"eeg_memory": {"skipped": "pyedflib is not installed (pip install pyedflib): it writes the BDF"}}) == (
        "EEG preprocessing memory: not measured (pyedflib is not installed (pip install pyedflib): it writes the BDF)"
    )
    # --tiny's 60 s file is read whole: the line says it does not speak for long recordings.
    short = {**measured, "recording_s": 60, "file_mb": 14.4, "n_windows": 20, "wall_s": 1.2, "notes": []}
    assert eeg_memory_line({"eeg_memory": short}) == (
        "EEG preprocessing memory: peak RSS 342 MB for 1 min of a 41-channel 2048 Hz BDF (14 MB file, 20 windows, "
        "1.2 s), target <= 2048 MB for any length and rate: met; read whole (short file): says nothing about long "
        "recordings"
    )
    assert eeg_memory_line({}) is None
    results = Path(__file__).parents[2] / "benchmarks" / "results" / "cpu-amd-epyc-avx512-bf16.json"
    result = json.loads(results.read_text())
    assert eeg_memory_line(result) + "." in markdown(result).splitlines()
