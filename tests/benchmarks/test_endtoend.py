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


def test_backend_options_reach_the_worker(tmp_path, monkeypatch):
    """endtoend_subprocess hands the variant's runner options to the worker's Pipeline as JSON:
    the worker's arguments, captured, parse back to the same mapping."""
    import json

    from milmer.benchmarks import endtoend

    seen = {}
    monkeypatch.setattr(endtoend, "spawn_worker", lambda module, args, out, logs: seen.update(args=list(args)) or {})
    options = {"openvino": {"inference_precision": "bf16", "num_threads": 2}}
    endtoend.endtoend_subprocess(
        tmp_path, tmp_path / "v.mp4", tmp_path / "e.edf", tmp_path / "o.json", precision="fp32",
        backend="openvino", device="cpu", batch=None, threads=None, backend_options=options,
    )  # fmt: skip
    args = seen["args"]
    assert json.loads(args[args.index("--backend-options") + 1]) == options
    with pytest.raises(Exception, match=r"Invalid options for backend 'openvino': unknown key\(s\) precision; expected some of "):
        endtoend.main(["--model", str(tmp_path), "--video", "v", "--eeg", "e", "--backend", "openvino",
                       "--backend-options", '{"openvino": {"precision": "bf16"}}', "--json", str(tmp_path / "x.json")])  # fmt: skip
