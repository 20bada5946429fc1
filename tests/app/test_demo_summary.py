"""The demo's closing lines: the figures, where they were written, and the model for milmer-infer
(no training here: a summary shaped like demo_summary.json)."""

from __future__ import annotations

import pytest

rich = pytest.importorskip("rich")


def test_closing_lines_name_the_result_files_and_the_model(tmp_path):
    from rich.console import Console

    from milmer.app.demo import _print_summary

    row = {"accuracy_mean": 0.68, "accuracy_std": 0.164, "macro_f1_mean": 0.669, "macro_f1_std": 0.174,
           "folds": 4, "folds_total": 4, "chance": 0.25, "caveat": None}  # fmt: skip
    summary = {
        "accuracy_by_protocol": {"trial": row}, "ablations": {"protocol": "trial", "models": {}},
        "recording_accuracy_vs_truth": 0.4, "timings_s": {"total": 172.2}, "model_dir": str(tmp_path / "demo" / "model"),
    }  # fmt: skip
    console = Console(width=300, record=True)
    _print_summary(console, summary)
    text = console.export_text()
    lines = text.splitlines()
    demo = tmp_path / "demo"
    assert lines[-2] == f"Results: {demo / 'demo_summary.json'} (these figures), {demo / 'predictions.json'} (the recording's windows)"
    assert lines[-1] == f"Model for milmer-infer: {demo / 'model'}"
    assert "0.680 +- 0.164" in text
