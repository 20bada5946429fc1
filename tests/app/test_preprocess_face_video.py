"""`milmer preprocess` on a truncated face video: the real end, not the header's, and a warning."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from milmer.app.cli import main
from milmer.app.errors import EXIT_OK

from .conftest import write_edf, write_video


def test_preprocess_truncated_video_ends_where_its_frames_end(tmp_path: Path, capsys) -> None:
    import av

    full = write_video(tmp_path / "full.avi", 12.0)  # 240 frames at 20 fps, MJPG
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.6)])  # the AVI index at the end is lost too
    with av.open(str(cut)) as c:  # whole frames: the last packet, cut in the middle, is corrupt
        n = sum(len(p.decode()) for p in c.demux(video=0) if p.size and not p.is_corrupt)
    assert 120 < n < 160
    eeg = write_edf(tmp_path / "eeg.edf", 12.0)
    out = tmp_path / "pre"
    code = main(["preprocess", str(cut), str(eeg), "--out", str(out), "--detector", "opencv-haar"])
    stdout, stderr = capsys.readouterr()
    assert code == EXIT_OK, stderr
    report = json.loads((out / "report.json").read_text())
    video = report["face_info"]["video"]
    assert video["n_frames"] == n and abs(video["duration_s"] - n / 20) < 1e-6
    # 3 s windows whose 10 sampled frames (0.15 ... 2.85 s into the window) exist.
    expected = int(np.sum(np.arange(4) * 3.0 + 2.85 < n / 20))
    assert report["n_windows"] == expected and report["windows_dropped_outside_video"] == 4 - expected
    assert report["face_info"]["frames_past_video_end"] == 0  # no black crops stand in for missing frames
    assert f"{n / 20:.2f} s, {n} frames at 20.00 fps" in stdout
    assert re.search(rf"dropped \(outside video\)\s+│ {4 - expected}\s", stdout)
    assert f"The video looks truncated: its frames end at {n / 20:.2f} s ({n} whole frames, 1 corrupt" in stderr
