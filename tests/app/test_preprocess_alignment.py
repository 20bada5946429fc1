"""``milmer preprocess`` states the alignment it used: report.json, the summary, warnings."""

from __future__ import annotations

import json
import sys

from milmer.app.cli import main


def test_report_states_the_alignment_and_its_source(recording, tmp_path, capsys):
    video, eeg = recording
    assert main(["preprocess", str(video), str(eeg), "--out", str(tmp_path / "auto")]) == 0
    stdout = capsys.readouterr().out
    report = json.loads((tmp_path / "auto" / "report.json").read_text())
    alignment = report["alignment"]
    # An AVI (no creation_time) and an EDF: no pair of start times, so offset 0 is assumed and said.
    assert (report["offset_s"], alignment["offset_source"]) == (0.0, "assumed")
    assert [n["code"] for n in alignment["notes"]] == ["offset-assumed"]
    assert alignment["video"]["rate"] == {"value": 20.0, "source": "header", "detail": "AVI header fps"}
    assert "offset +0.000 s (assumed)" in " ".join(stdout.replace("│", " ").split())

    assert main(["preprocess", str(video), str(eeg), "--out", str(tmp_path / "set"), "--offset", "-1.5"]) == 0
    report = json.loads((tmp_path / "set" / "report.json").read_text())
    assert (report["offset_s"], report["alignment"]["offset_source"]) == (-1.5, "option")
    assert report["face_info"]["alignment"]["video"]["start"] == {"value": 1.5, "source": "option", "detail": "--offset"}
    assert report["windows_dropped_outside_video"] == 1  # the video starts 1.5 s into the EEG


def test_start_times_give_the_offset_and_a_contrary_offset_is_one_warning(tmp_path, capsys, syncgen):
    """EDF started 10:00:00, the camera's MP4 10:00:05: auto gives -5 s (header); --offset 0 is used
    but disagrees, which is one 'Warning: Alignment:' line naming --offset."""
    import mne

    write_edf = sys.modules["milmer_tests_runtime_conftest"].write_edf  # loaded by tests/app/conftest.py

    edf = write_edf(tmp_path / "eeg.edf", seconds=20.0)
    raw = mne.io.read_raw_edf(edf, preload=True, verbose=False)
    raw.set_meas_date(syncgen.utc(2024, 5, 1, 10, 0, 0))
    raw.export(str(edf), fmt="edf", overwrite=True, verbose=False)
    video = syncgen.write_mp4(tmp_path / "v.mp4", 10.0, 200, range(0), creation_time="2024-05-01T10:00:05Z")

    assert main(["preprocess", str(video), str(edf), "--out", str(tmp_path / "auto")]) == 0
    captured = capsys.readouterr()
    stderr, table = captured.err, " ".join(captured.out.replace("│", " ").split())
    # The summary's alignment row carries its notes: here the stamps and their caveat.
    assert "offset -5.000 s from the recorded start times" in table and "whole-second stamps" in table
    report = json.loads((tmp_path / "auto" / "report.json").read_text())
    assert (report["offset_s"], report["alignment"]["offset_source"]) == (-5.0, "header")
    assert "Alignment" not in stderr
    assert main(["preprocess", str(video), str(edf), "--out", str(tmp_path / "forced"), "--offset", "0"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "Alignment" in line]
    assert lines == [
        "Warning: Alignment: --offset 0 s differs from the recorded start times' -5 s (EEG EDF header "
        "2024-05-01 10:00:00, video creation_time 2024-05-01 10:00:05); --offset is used. Check with --faces or a "
        "flash/blink."
    ]
