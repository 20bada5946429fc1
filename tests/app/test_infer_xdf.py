"""``milmer-infer`` on a LabRecorder .xdf (EEG stream + video frame markers) aligns by the XDF clock."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from milmer.app.infer import main as infer_main


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MILMER_HOME", str(tmp_path / "home"))


def test_infer_on_xdf_aligns_by_its_clock(capsys, tiny_model, recording, tmp_path, syncgen):
    """The camera started 3 s before the amplifier: its frame markers (one per frame, 20 fps) begin
    at LSL 997 s, the EEG stream at LSL 1000 s, so EEG t = 0 is video 3 s. Nothing is set by hand:
    the last window (EEG 9-12 s = video 12-15 s) lies past the 12 s video and is dropped."""
    pytest.importorskip("pyxdf")
    import mne

    video, edf = recording
    raw = mne.io.read_raw_edf(edf, preload=True, verbose=False)
    n = raw.n_times
    eeg = {
        "name": "Amp", "type": "EEG", "channels": raw.ch_names, "srate": 128.0, "format": "float32",
        "data": raw.get_data().T * 1e6, "stamps": 1000.0 + np.arange(n) / 128.0,
    }
    frames = np.arange(240)
    markers = {
        "name": "VideoFrames", "type": "Markers", "channels": ["frame"], "srate": 0.0, "format": "string",
        "data": [str(k) for k in frames], "stamps": 997.0 + frames / 20.0,
    }
    xdf = syncgen.write_xdf(tmp_path / "session.xdf", [eeg, markers])
    out = tmp_path / "pred.json"
    code = infer_main([str(video), str(xdf), "--model", str(tiny_model), "--out", str(out), "--device", "cpu"])
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    doc = json.loads(out.read_text())
    alignment = doc["settings"]["alignment"]
    assert alignment["clock"] == "xdf" and alignment["offset_source"] == "clock"
    assert doc["settings"]["offset_s"] == pytest.approx(3.0, abs=1e-3)
    assert alignment["video"]["rate"]["value"] == pytest.approx(20.0, rel=1e-6)
    assert [w["start"] for w in doc["windows"]] == [0.0, 3.0, 6.0]
    assert doc["summary"]["coverage"]["n_dropped_end"] == 1
    assert re.search(r"aligned: offset \+3\.000 s \(clock\)", stdout)
    # The frames used are those of the video's 3 s onwards: window 0 samples EEG 0.15 s -> video 3.15 s.
    assert doc["windows"][0]["frame_times"][0] == pytest.approx(3.15, abs=0.05 + 1e-9)


def test_preprocess_offset_against_the_xdf_clock_is_one_warning(capsys, recording, tmp_path, syncgen):
    """The clock says the video's 3 s is EEG t = 0 (markers from LSL 997 s, EEG from 1000 s);
    --offset 1 is used, and one line names both values."""
    pytest.importorskip("pyxdf")
    import mne

    from milmer.app.cli import main

    video, edf = recording
    raw = mne.io.read_raw_edf(edf, preload=True, verbose=False)
    eeg = {"name": "Amp", "type": "EEG", "channels": raw.ch_names, "srate": 128.0, "format": "float32",
           "data": raw.get_data().T * 1e6, "stamps": 1000.0 + np.arange(raw.n_times) / 128.0}
    frames = np.arange(240)
    markers = {"name": "VideoFrames", "type": "Markers", "channels": ["frame"], "srate": 0.0, "format": "string",
               "data": [str(k) for k in frames], "stamps": 997.0 + frames / 20.0}
    xdf = syncgen.write_xdf(tmp_path / "session.xdf", [eeg, markers])
    assert main(["preprocess", str(video), str(xdf), "--out", str(tmp_path / "x"), "--offset", "1"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "Alignment" in line]
    assert lines == ["Warning: Alignment: --offset 1 s differs from the XDF clock's +3.000 s (its video frame markers); "
                     "--offset is used. Leave --offset out to use the clock."]
    report = json.loads((tmp_path / "x" / "report.json").read_text())
    assert (report["offset_s"], report["alignment"]["offset_source"]) == (1.0, "option")
