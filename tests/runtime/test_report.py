"""Prediction writers (JSON, CSV) on a hand-built result (no model needed); the terminal table is
tested with the commands (tests/app/test_render.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from milmer.runtime import report
from milmer.runtime.check import MilmerInputError
from milmer.runtime.results import PredictionResult, WindowPrediction
from milmer.runtime.spec import ModelSpec


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """A fresh MILMER_HOME: no demo model is recorded unless a test records one."""
    monkeypatch.setenv("MILMER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def result(prediction_result) -> PredictionResult:
    return prediction_result


def test_csv_content_is_pinned(result, tmp_path):
    out = report.write_predictions(result, tmp_path / "pred.CSV")
    weights = " ".join(["0.040000"] * 2 + ["0.310000", "0.040000", "0.040000", "0.220000", "0.040000", "0.190000"] + ["0.040000"] * 2)
    assert out.read_text().splitlines() == [
        "start,end,label,p_HAHV,p_HALV,p_LAHV,p_LALV,selected,mil_weights,faces_found,quality,demo_model,"
        "video_start,alignment",
        f"3.000,6.000,HAHV,0.700000,0.100000,0.150000,0.050000,2 5 7,{weights},10,,false,0.000,-3.000 s (option)",
        "6.000,9.000,LALV,0.100000,0.200000,0.300000,0.400000,0 1 2," + " ".join(["0.100000"] * 10)
        + ',0,"bad-span:BAD_move;interpolated:T7,T8;no-face",false,3.000,-3.000 s (option)',
    ]


def test_json_content_is_pinned(result, tmp_path):
    out = report.write_predictions(result, tmp_path / "sub" / "pred.json")
    doc = json.loads(out.read_text())
    assert list(doc) == ["format", "format_version", "milmer_version", "model", "settings", "windows", "summary"]
    assert (doc["format"], doc["format_version"]) == ("milmer-predictions", 1)
    assert doc["model"] == {
        "dir": "models/demo",
        "provenance": "trained",
        "provenance_source": "spec",
        "demo": False,
        "label_scheme": "deap4",
        "class_names": ["HAHV", "HALV", "LAHV", "LALV"],
        "spec_fingerprint": ModelSpec().fingerprint(),
    }
    assert doc["settings"] == result.settings
    assert doc["windows"][0] == {
        "index": 1,
        "start": 3.0,
        "end": 6.0,
        "label": "HAHV",
        "class_index": 0,
        "probabilities": {"HAHV": 0.7, "HALV": 0.1, "LAHV": 0.15, "LALV": 0.05},
        "selected": [2, 5, 7],
        "selected_weights": [0.31, 0.22, 0.19],
        "mil_weights": [0.04, 0.04, 0.31, 0.04, 0.04, 0.22, 0.04, 0.19, 0.04, 0.04],
        "faces_found": 10,
        "n_frames": 10,
        "window_has_face": True,
        "predicted": True,
        "frame_times": [3.15, 3.45, 3.75, 4.05, 4.35, 4.65, 4.95, 5.25, 5.55, 5.85],
        "frame_flags": None,
        "quality": [],
    }
    assert (doc["windows"][1]["label"], doc["windows"][1]["window_has_face"]) == ("LALV", False)
    assert doc["windows"][1]["quality"] == ["bad-span:BAD_move", "interpolated:T7,T8", "no-face"]
    assert doc["summary"] == {
        "n_windows": 2,
        "seconds_covered": 6.0,
        "class_counts": {"HAHV": 1, "HALV": 0, "LAHV": 0, "LALV": 1},
        "frames_with_face": 10,
        "frames_total": 20,
        "windows_without_face": 1,
        "windows_without_prediction": 0,
        "coverage": {
            "n_windows": 4, "n_covered": 2, "n_dropped_start": 1, "n_dropped_end": 1,
            "video_duration_s": 8.5, "eeg_duration_s": 12.0, "offset_s": -3.0, "video_unused_end_s": 0.0,
        },  # fmt: skip
        "alignment": {
            "clock": "eeg", "offset_s": -3.0, "offset_source": "option", "video_lead_s": 0.0,
            "eeg": {"name": "eeg", "nominal_rate": 128.0, "start": {"value": 0.0, "source": "assumed"},
                    "rate": {"value": 128.0, "source": "assumed", "detail": "nominal rate"}, "drift_ppm": 0.0, "segments": []},
            "video": {"name": "video", "nominal_rate": 25.0, "start": {"value": 3.0, "source": "option", "detail": "--offset"},
                      "rate": {"value": 25.0, "source": "assumed", "detail": "nominal rate"}, "drift_ppm": 0.0, "segments": []},
            "notes": [],
        },  # fmt: skip
        "n_batches": 1,
        "wall_s": 1.5,
        "real_time_factor": 0.25,
        "timings_s": {"eeg_read": 0.01, "eeg_preprocess": 0.5, "faces": 0.2, "normalise": 0.02, "backbone": 0.4, "fusion": 0.02},
        "timings_ms_per_window": {
            "eeg_read": 5.0, "eeg_preprocess": 250.0, "faces": 100.0, "normalise": 10.0, "backbone": 200.0, "fusion": 10.0,
        },  # fmt: skip
        "face_timings_s": {"decode": 0.0, "detect": 0.0, "crop": 0.0},
        "eeg": {
            "ica_excluded": [1], "ica_converged": None, "ica_n_components": None, "eog_source": "proxy Fp1/Fp2",
            "reference": None, "line_noise": None, "channels": None, "bad_spans": None, "windows_dropped_gap": None,
            "resampled_from": None, "duration_s": 12.0,
        },  # fmt: skip
        "eeg_source": {},
        "windows_flagged": 1,
        "notes": ["interpolated 2 channel(s) from their neighbours: T7, T8 (every window is flagged)"],
    }


def test_nan_frame_times_become_null(result):
    window = result.windows[0]
    times = window.frame_times.copy()
    times[-1] = np.nan
    record = report.prediction_record(
        WindowPrediction(**{**window.__dict__, "frame_times": times}), result.class_names
    )
    assert record["frame_times"][-1] is None
    json.dumps(record, allow_nan=False)


@pytest.mark.parametrize("name", ["pred.txt", "pred", "pred.json.gz"])
def test_bad_suffix_is_refused_before_writing(result, tmp_path, name):
    suffix = Path(name).suffix or "(none)"
    message = f"Invalid value for 'out': unsupported file type '{suffix}' for '{name}'; expected one of '.json', '.csv'."
    with pytest.raises(MilmerInputError, match=f"^{re.escape(message)}$"):
        report.write_predictions(result, tmp_path / name)
    with pytest.raises(MilmerInputError, match="expected one of '.json', '.csv'"):
        report.check_out_path(name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_failure_mid_write_leaves_no_file(result, tmp_path, monkeypatch, suffix):
    calls = []
    real = report.prediction_record

    def fail_on_second(window, class_names):
        calls.append(window.index)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real(window, class_names)

    monkeypatch.setattr(report, "prediction_record", fail_on_second)
    out = tmp_path / f"pred{suffix}"
    with pytest.raises(RuntimeError, match="disk full"):
        report.write_predictions(result, out)
    assert calls == [1, 2]
    assert list(tmp_path.iterdir()) == []
    # An earlier file is left exactly as it was.
    out.write_text("old")
    calls.clear()
    with pytest.raises(RuntimeError, match="disk full"):
        report.write_predictions(result, out)
    assert out.read_text() == "old" and list(tmp_path.iterdir()) == [out]


DEMO_NOTE = "DEMO MODEL, trained on synthetic data: not a prediction about this recording"


def test_demo_model_output_says_so_in_csv_and_json(result, tmp_path):
    """Predictions of a model whose spec says 'demo' are marked in the CSV and the JSON."""
    result.spec = result.spec.replace(provenance="demo")
    rows = (tmp_path / "p.csv", tmp_path / "p.json")
    report.write_predictions(result, rows[0])
    report.write_predictions(result, rows[1])
    csv_lines = rows[0].read_text().splitlines()
    assert csv_lines[0].endswith(",quality,demo_model,video_start,alignment")
    assert all(r.split(",")[-3] == "true" for r in csv_lines[1:])
    model_doc = json.loads(rows[1].read_text())["model"]
    assert (model_doc["provenance"], model_doc["provenance_source"]) == ("demo", "spec")
    assert (model_doc["demo"], model_doc["note"], model_doc["dir"]) == (True, DEMO_NOTE, "models/demo")


def test_a_spec_without_provenance_is_inferred_and_says_so(result, tmp_path):
    """A model exported before specs carried provenance: the folder the demo recorded is the demo
    model, any other is 'trained', and the JSON says the provenance was inferred."""
    from milmer.runtime.demo_model import record_demo_model

    model = tmp_path / "demo-model"
    model.mkdir()
    result.spec, result.model_dir = result.spec.replace(provenance=None), model
    record_demo_model(model)
    doc = json.loads(report.write_predictions(result, tmp_path / "p.json").read_text())["model"]
    assert (doc["provenance"], doc["provenance_source"], doc["demo"]) == ("demo", "inferred", True)
    result.model_dir = tmp_path  # another folder, the record present
    doc = json.loads(report.write_predictions(result, tmp_path / "p.json").read_text())["model"]
    assert (doc["provenance"], doc["provenance_source"], doc["demo"]) == ("trained", "inferred", False)
    assert "note" not in doc
