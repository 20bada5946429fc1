"""Worker processes report their own peak memory, not the parent's."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from milmer.benchmarks.endtoend import spawn_worker
from milmer.benchmarks.machine import own_peak_rss_mb


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_child_peak_excludes_the_parents_memory(tmp_path, monkeypatch):
    ballast = np.ones(300 * 2**20 // 8)  # 300 MB resident in this (parent) process
    assert own_peak_rss_mb() > 300
    # A stand-in worker (python -m finds it in the working directory) writing its own peak.
    (tmp_path / "peakworker.py").write_text(
        "import json, sys\n"
        "from milmer.benchmarks.machine import own_peak_rss_mb\n"
        "json.dump({'peak': own_peak_rss_mb()}, open(sys.argv[-1], 'w'))\n"
    )
    monkeypatch.chdir(tmp_path)
    result = spawn_worker("peakworker", [], tmp_path / "child.json", tmp_path / "logs")
    # ru_maxrss would say > 300 here: Linux carries the parent's peak over exec.
    assert result["peak"] < 150 and result["process_s"] > 0
    del ballast


def test_failing_worker_reports_its_log(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)no_such_module failed \(exit 1\).*No module named"):
        spawn_worker("no_such_module", [], tmp_path / "x.json", tmp_path / "logs")
