"""`milmer live` as a user runs it (a subprocess), stopped with SIGTERM mid-session: exit 0, the
JSON lines end with the summary, and the recording holds every sample that arrived."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np

from .conftest import load_runtime_test_module

# The live tests' LSL player and demo recording (tests/runtime/live/conftest.py).
_live = load_runtime_test_module("live/conftest")
EEGPlayer, needs_lsl, stream_name = _live.EEGPlayer, _live.needs_lsl, _live.stream_name
demo_recording = _live.demo_recording

pytestmark = needs_lsl


def test_sigterm_stops_cleanly_and_keeps_the_recording(tiny_model, demo_recording, tmp_path):
    rec = demo_recording
    name = stream_name()
    player = EEGPlayer(name, rec["data"], rec["sfreq"], rec["channels"], rec["types"]).start()
    out, record = tmp_path / "live.jsonl", tmp_path / "rec"
    cmd = [
        sys.executable, "-c", "import sys; from milmer.app.cli import main; sys.exit(main(sys.argv[1:]))",
        "live", "--model", str(tiny_model), "--eeg-stream", name, "--video", str(rec["video"]),
        "--calibration", "3", "--out", str(out), "--record", str(record), "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_text().count('"type": "window"') >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        player.close()
    assert proc.returncode == 0, stderr[-2000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[-1]["type"] == "summary" and lines[-1]["scored"] >= 2
    assert json.loads(stdout.strip().splitlines()[-1])["scored"] == lines[-1]["scored"]
    assert sorted(p.name for p in record.iterdir()) == ["alignment.json", "eeg_raw.fif", "eeg_times.npy", "header.json", "video.mkv", "video_times.npy"]
    alignment = json.loads((record / "alignment.json").read_text())
    # LSL's clock offset to the sender: measured at the start, ~0 on one machine.
    assert alignment["lsl_clock_offsets"] and abs(alignment["lsl_clock_offsets"][0][1]) < 0.01
    import mne

    raw = mne.io.read_raw_fif(record / "eeg_raw.fif", preload=True, verbose="error")
    n = alignment["eeg"]["n_samples"]
    assert raw.n_times == n == len(np.load(record / "eeg_times.npy")) > 0
    # What was recorded is what was sent, sample for sample (float32 on the wire, microvolts -> volts).
    np.testing.assert_allclose(raw.get_data().T * 1e6, rec["data"][:n].astype(np.float32), rtol=1e-6, atol=1e-6)
    assert raw.ch_names == rec["channels"] and raw.get_channel_types() == rec["types"]
