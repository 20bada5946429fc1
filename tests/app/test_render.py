"""Terminal rendering of predictions (``milmer.app.render``): the per-window table, the summary
and its warning lines, on the hand-built result of ``tests/runtime/conftest.py``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from milmer.app import render
from milmer.runtime.eeg.report import EEGNote
from milmer.runtime.results import PredictionResult

DEMO_NOTE = "DEMO MODEL, trained on synthetic data: not a prediction about this recording"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """A fresh MILMER_HOME: no demo model is recorded unless a test records one."""
    monkeypatch.setenv("MILMER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def result(prediction_result) -> PredictionResult:
    return prediction_result


def test_summary_markup_follows_the_severity_not_the_words():
    from milmer.app.render import eeg_note_markup

    assert eeg_note_markup(EEGNote.of("clipping", "clipping in Fp1")) == "[yellow]clipping in Fp1[/yellow]"
    # An info note that happens to contain the old trigger words stays plain.
    assert eeg_note_markup(EEGNote.of("line-noise", "did NOT converge [sic]")) == "did NOT converge \\[sic]"


def test_formatting(result):
    first, second = result.windows
    assert render.format_selected(first) == "2:0.31 5:0.22 7:0.19"
    assert render.format_selected(second, digits=3) == "0:0.100 1:0.100 2:0.100"
    assert (render.format_faces(first), render.format_faces(second)) == ("10/10", "0/10")
    assert render._clock(3.0) == "0:03.0"
    assert render._clock(3723.25) == "1:02:03.2"


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


def _text(result, width=80) -> str:
    console = Console(record=True, width=width, color_system=None)
    render.print_report(result, console)
    return console.export_text()


def _model_row(text: str) -> str:
    """The summary's model line, its cells joined by one space (wrapped lines not included)."""
    line = next(line for line in text.splitlines() if line.strip("│ ").startswith("model"))
    return " ".join(" ".join(cell.split()) for cell in line.split("│") if cell.strip())


def test_demo_model_output_says_so_in_the_table_and_summary(result):
    """A model whose spec says 'demo': the note heads the table and is the summary's model line."""
    result.spec = result.spec.replace(provenance="demo")
    text = _text(result)
    lines = text.splitlines()
    title = next(i for i, line in enumerate(lines) if "Predictions per 3 s window" in line)
    assert " ".join(" ".join(lines[:title]).split()) == DEMO_NOTE  # the table's header, above its title
    assert "DEMO MODEL" in _model_row(text)
    assert max(len(line) for line in lines) <= 80


def test_the_summary_names_where_the_model_came_from(result, tmp_path):
    assert _model_row(_text(result, width=160)) == "model trained"
    result.spec = result.spec.replace(provenance="benchmark")
    text = _text(result, width=160)
    assert _model_row(text) == "model " + render.BENCH_NOTE
    assert "DEMO" not in text
    # A spec written before provenance existed: inferred, and the line says so.
    from milmer.runtime.demo_model import record_demo_model

    result.spec, result.model_dir = result.spec.replace(provenance=None), tmp_path
    assert _model_row(_text(result, width=160)) == "model trained (inferred: the spec predates provenance)"
    record_demo_model(tmp_path)
    text = _text(result, width=160)
    assert _model_row(text) == f"model {DEMO_NOTE} (inferred: the spec predates provenance)"
    assert DEMO_NOTE in " ".join(text.split()[:20])  # the table's header too


def test_a_window_without_prediction_is_shown_as_such(result):
    """A faceless window the model did not score: 'no face' for a label, '-' for probabilities, the
    summary counts it and the legend explains F."""
    second = result.windows[1]
    nan4, nan10 = np.full(4, np.nan, np.float32), np.full(10, np.nan, np.float32)
    result.windows[1] = dataclasses.replace(
        second, label=None, class_index=-1, probabilities=nan4, logits=nan4, mil_weights=nan10,
        selected=np.zeros(0, np.int64), flags=("no-face",),
    )  # fmt: skip
    text = _text(result, width=120)
    row = next(line.split() for line in text.splitlines() if line.strip().startswith("2 "))
    assert row == ["2", "0:06.0", "no", "face", "-", "-", "-", "-", "0/10", "F"]
    assert "(1 not predicted)" in text and "quality: F = no-face" in text


def test_interpolated_channels_are_listed_in_the_legend(result):
    """Every window interpolated from the same channels: each row's quality starts with I, and the
    legend lists the channels, sorted."""
    flag = "interpolated:AF3,T7,PO3,Oz,AF4,T8,PO4"
    result.windows = [dataclasses.replace(w, flags=(flag,)) for w in result.windows]
    text = _text(result, width=200)
    rows = [line.split() for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 2 and all(row[-1] == "I" for row in rows)
    assert "quality: I = interpolated (AF3, AF4, Oz, PO3, PO4, T7, T8)" in " ".join(text.split())
