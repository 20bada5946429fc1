"""Faults in a live session: EEG samples lost, an EEG stall, a camera that stops; each window
without its data is skipped with the reason and the session goes on when the stream comes back."""

from __future__ import annotations

import json

from milmer.runtime.live.engine import LiveConfig
from milmer.runtime.live.session import LiveRequest, run_live

from .conftest import EEGPlayer, needs_lsl, stream_name, write_paused_video

pytestmark = needs_lsl


def test_gaps_and_stalls_are_skipped_and_reported(tiny_model, demo_recording, tmp_path):
    rec = demo_recording
    name = stream_name()
    # EEG: samples of 7.0-7.5 s never sent (window 2); 15.5-16 s held back and sent at 21 s with
    # everything after them (window 5's data arrives 3 s after its end: later than max_delay_s).
    player = EEGPlayer(
        name, rec["data"], rec["sfreq"], rec["channels"], rec["types"], drop=(7.0, 7.5), stall=(15.5, 16.0), hold_s=5.0
    ).start()
    # Video: the camera delivers nothing for 1.6 s inside window 3 (10.2-11.8 s of the file).
    video = write_paused_video(rec["video"], tmp_path / "paused.mkv", (10.2, 11.8))
    out = tmp_path / "live.jsonl"
    request = LiveRequest(
        model=tiny_model, eeg_stream=name, video=str(video),
        config=LiveConfig(calibration_s=6.0, max_delay_s=2.0, duration_s=40.0),
        out=out, record=tmp_path / "rec", view=False,
    )
    summary = run_live(request)
    player.thread.join(5.0)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    windows = [r for r in lines if r["type"] == "window"][:7]
    got = [r["skipped"] or r["status"] for r in windows]
    assert got == ["scored", "scored", "eeg-gap", "video-stall", "scored", "eeg-stall", "scored"], got
    assert windows[0]["calibration"] and windows[1]["calibration"] and not windows[4]["calibration"]
    assert "calibration" in windows[0]["flags"]
    for r in windows:
        if r["skipped"]:
            assert r["label"] is None and r["probabilities"] is None
    assert summary["skipped"]["eeg-gap"] == 1 and summary["skipped"]["video-stall"] == 1
    assert summary["skipped"]["eeg-stall"] >= 1
    # The recording kept everything that arrived, the lost half second excepted, and says where.
    alignment = json.loads((tmp_path / "rec" / "alignment.json").read_text())
    n_sent = len(rec["data"]) - int(0.5 * rec["sfreq"])
    assert alignment["eeg"]["n_samples"] == n_sent
    segments = alignment["timebase"]["eeg"]["segments"]
    assert len(segments) == 1 and abs(segments[0]["local_s"] - 7.0) < 0.1
