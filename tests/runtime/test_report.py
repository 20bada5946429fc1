"""Prediction writers and terminal rendering, on a hand-built result (no model needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from milmer.app import render
from milmer.runtime import report
from milmer.runtime.check import MilmerInputError
from milmer.runtime.eeg.report import EEGNote
from milmer.runtime.results import PredictionResult, RunStats, WindowPrediction
from milmer.runtime.timebase import Alignment, Fact, StreamClock
from milmer.runtime.recording import window_coverage
from milmer.runtime.spec import ModelSpec
from milmer.runtime.windows import EEGWindows


def _window(index, probs, weights, selected, found, flags=()):
    probs = np.asarray(probs, np.float32)
    k = int(np.argmax(probs))
    return WindowPrediction(
        index=index,
        start=3.0 * index,
        end=3.0 * index + 3.0,
        label=ModelSpec().class_names[k],
        class_index=k,
        probabilities=probs,
        logits=np.log(probs),
        mil_weights=np.asarray(weights, np.float32),
        selected=np.asarray(selected, np.int64),
        found=np.asarray(found, bool),
        frame_times=3.0 * index + 0.15 + 0.3 * np.arange(len(found)),
        flags=tuple(flags),
    )


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """A fresh MILMER_HOME: no demo model is recorded unless a test records one."""
    monkeypatch.setenv("MILMER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def result() -> PredictionResult:
    w = np.full(10, 0.04, np.float32)
    w[[2, 5, 7]] = [0.31, 0.22, 0.19]  # sums to 1 with the seven 0.04s... (0.72 + 0.28)
    first = _window(1, [0.7, 0.1, 0.15, 0.05], w, [2, 5, 7], [True] * 10)
    second = _window(
        2, [0.1, 0.2, 0.3, 0.4], np.full(10, 0.1, np.float32), [0, 1, 2], [False] * 10,
        flags=("bad-span:BAD_move", "interpolated:T7,T8", "no-face"),
    )
    eeg = EEGWindows(np.zeros((4, 1, 1), np.float32), np.arange(4) * 3.0, {"duration_s": 12.0})
    stats = RunStats(
        timings={"eeg_read": 0.01, "eeg_preprocess": 0.5, "faces": 0.2, "normalise": 0.02, "backbone": 0.4, "fusion": 0.02},
        n_windows=2,
        n_frames=20,
        n_batches=1,
        max_batch=2,
        wall_s=1.5,
        coverage=window_coverage(eeg, 3.0, 8.5, -3.0),
        eeg_info={"ica_excluded": [1], "eog_source": "proxy Fp1/Fp2", "resampled_from": None, "duration_s": 12.0},
        notes=[EEGNote.of("interpolated", "interpolated 2 channel(s) from their neighbours: T7, T8 (every window is flagged)")],
        # --offset -3: the video started 3 s after the EEG (EEG 3 s = video 0 s).
        alignment=Alignment(StreamClock("eeg", 128.0), StreamClock("video", 25.0, Fact(3.0, "option", "--offset"))),
    )
    return PredictionResult(
        windows=[first, second],
        spec=ModelSpec(),
        model_dir=Path("models/demo"),
        settings={"backend": {"swin": "ort", "fusion": "ort"}, "device": {"swin": "cpu", "fusion": "cpu"},
                  "precision": "fp32", "batch": 8, "video": "face.mp4", "eeg": "eeg.edf",
                  "offset_s": -3.0, "baseline_s": 0.0},  # fmt: skip
        stats=stats,
    )


def test_formatting(result):
    first, second = result.windows
    assert render.format_selected(first) == "2:0.31 5:0.22 7:0.19"
    assert render.format_selected(second, digits=3) == "0:0.100 1:0.100 2:0.100"
    assert (render.format_faces(first), render.format_faces(second)) == ("10/10", "0/10")
    assert render._clock(3.0) == "0:03.0"
    assert render._clock(3723.25) == "1:02:03.2"


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


def test_table_and_summary_render(result):
    console = Console(record=True, width=160, color_system=None)
    render.print_report(result, console)
    text = console.export_text()
    assert "Predictions per 3 s window" in text
    rows = [line.split() for line in text.splitlines() if line.strip().startswith(("1 ", "2 "))]
    assert rows == [
        ["1", "0:03.0", "HAHV", "0.70", "0.10", "0.15", "0.05", "2:0.31", "5:0.22", "7:0.19", "10/10", "ok"],
        ["2", "0:06.0", "LALV", "0.10", "0.20", "0.30", "0.40", "0:0.10", "1:0.10", "2:0.10", "0/10", "BIF"],
    ]
    assert "quality: B = bad-span (BAD_move); I = interpolated (T7, T8); F = no-face" in text
    assert "HA/LA = high/low arousal, HV/LV = high/low valence (self-ratings >= 5 are high)" in text
    assert "1 of 2 (see the quality column)" in text
    assert "interpolated 2 channel(s) from their neighbours: T7, T8" in text
    assert "HAHV 1, HALV 0, LAHV 0, LALV 1" in text
    assert "10/20 frames with a face; 1 of 2 windows without any" in text
    assert "1 at the start, 1 at the end (outside the video)" in text
    assert "eeg_read 5.0, eeg_preprocess 250.0, faces 100.0, normalise 10.0, backbone 200.0, fusion 10.0" in text
    assert "0.250 (1.50 s for 6 s; below 1 is faster than real time)" in text
    assert "swin ort/cpu, fusion ort/cpu, fp32, batch 8" in text


def test_quiet_report_has_summary_only(result):
    console = Console(record=True, width=100, color_system=None)
    render.print_report(result, console, table=False)
    text = console.export_text()
    assert "Predictions per" not in text and "real-time factor" in text


def test_table_fits_80_columns(result):
    console = Console(record=True, width=80, color_system=None)
    console.print(render.render_table(result))
    text = console.export_text()
    assert "…" not in text and "2:0.31 5:0.22 7:0.19" in text
    assert " BIF" in text and " ok" in text
    assert max(len(line) for line in text.splitlines()) <= 80


DEMO_NOTE = "DEMO MODEL, trained on synthetic data: not a prediction about this recording"


def test_demo_model_output_says_so_everywhere(result, tmp_path):
    """Predictions of the recorded demo model are marked in the table, summary, CSV and JSON."""
    from milmer.runtime.demo_model import record_demo_model

    model = tmp_path / "demo-model"
    model.mkdir()
    result.model_dir = model
    record_demo_model(model)
    console = Console(record=True, width=80, color_system=None)
    render.print_report(result, console)
    text = console.export_text()
    lines = text.splitlines()
    title = next(i for i, line in enumerate(lines) if "Predictions per 3 s window" in line)
    assert " ".join(" ".join(lines[:title]).split()) == DEMO_NOTE  # the table's header, above its title
    summary_row = next(line for line in lines if line.strip("│ ").startswith("model"))
    assert "DEMO MODEL" in summary_row
    assert max(len(line) for line in lines) <= 80
    rows = (tmp_path / "p.csv", tmp_path / "p.json")
    report.write_predictions(result, rows[0])
    report.write_predictions(result, rows[1])
    csv_lines = rows[0].read_text().splitlines()
    assert csv_lines[0].endswith(",quality,demo_model,video_start,alignment")
    assert all(r.split(",")[-3] == "true" for r in csv_lines[1:])
    model_doc = json.loads(rows[1].read_text())["model"]
    assert (model_doc["demo"], model_doc["note"], model_doc["dir"]) == (True, DEMO_NOTE, str(model))
    # Another folder is not the demo model, even with the pointer present.
    result.model_dir = tmp_path
    assert json.loads(report.write_predictions(result, rows[1]).read_text())["model"]["demo"] is False
    console = Console(record=True, width=80, color_system=None)
    render.print_report(result, console)
    assert "DEMO" not in console.export_text()


def test_ica_non_convergence_warning_text():
    assert render.ica_convergence_warning({"ica_converged": False, "ica_method": "fastica"}) == (
        "ICA (FastICA) did not converge: the eye-artefact removal may be incomplete (ica_converged: false in "
        "the report); check the EEG's quality, e.g. with `milmer preprocess` and its eeg_ica.png."
    )
    # The solver that ran is named (Picard is the default); none recorded: just 'ICA'.
    assert render.ica_convergence_warning({"ica_converged": False, "ica_method": "picard"}).startswith(
        "ICA (Picard) did not converge: "
    )
    assert render.ica_convergence_warning({"ica_converged": False}).startswith("ICA did not converge: ")
    assert render.ica_convergence_warning({"ica_converged": True}) is None
    assert render.ica_convergence_warning({}) is None  # no ICA ran
