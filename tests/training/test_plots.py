"""confusion.png says n, accuracy and macro-F1; curves.png says when there is no validation set."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from milmer.training import plots  # noqa: E402
from milmer.training.metrics import accuracy, macro_f1  # noqa: E402

CM = [[5, 1, 0, 0], [2, 4, 0, 0], [0, 0, 6, 0], [1, 0, 1, 4]]
NAMES = ["HAHV", "HALV", "LAHV", "LALV"]


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions save (still written to disk as PNG)."""
    saved = []
    real = plots._save

    def keep(fig, path):
        saved.append(fig)
        return real(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    return saved


def test_confusion_summary_matches_the_metrics():
    y_true = np.repeat(np.arange(4), np.asarray(CM).sum(1))
    y_pred = np.concatenate([np.repeat(np.arange(4), row) for row in CM])
    assert accuracy(y_true, y_pred) == pytest.approx(19 / 24)
    assert plots.confusion_summary(CM) == f"n 24 | accuracy 0.792 | macro-F1 {macro_f1(y_true, y_pred, 4):.3f}"
    assert plots.confusion_summary(CM) == "n 24 | accuracy 0.792 | macro-F1 0.791"
    # A class neither true nor predicted does not count (sklearn's macro average).
    assert plots.confusion_summary([[3, 1, 0], [0, 2, 0], [0, 0, 0]]) == "n 6 | accuracy 0.833 | macro-F1 0.829"
    assert plots.confusion_summary(np.zeros((4, 4), int)) == "n 0 | accuracy - | macro-F1 -"


def test_confusion_png_title_gives_n_accuracy_and_macro_f1(tmp_path, figures):
    path = plots.plot_confusion(CM, NAMES, tmp_path / "confusion.png", title="loso-s01 - protocol 'loso'")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figures[0]._suptitle.get_text() == "loso-s01 - protocol 'loso'\nn 24 | accuracy 0.792 | macro-F1 0.791"


def test_curves_without_validation_say_so_instead_of_empty_axes(tmp_path, figures):
    history = [{"epoch": e, "train_loss": 1.5 - 0.1 * e, "val_loss": None, "val_accuracy": None} for e in (1, 2, 3)]
    plots.plot_curves(history, tmp_path / "curves.png", title="loso-s01")
    loss, scores = figures[0].axes
    assert [line.get_label() for line in loss.lines] == ["train loss"]
    assert not scores.lines and not scores.axison
    assert [t.get_text() for t in scores.texts] == [plots.NO_VALIDATION]
    assert plots.NO_VALIDATION.startswith("no validation set")


def test_curves_with_validation_plot_the_scores(tmp_path, figures):
    history = [{"epoch": e, "train_loss": 1.0, "val_loss": 1.1, "val_accuracy": 0.5, "val_macro_f1": 0.4} for e in (1, 2)]
    plots.plot_curves(history, tmp_path / "curves.png")
    loss, scores = figures[0].axes
    assert [line.get_label() for line in scores.lines] == ["val accuracy", "val macro-F1"]
    assert scores.axison and not scores.texts and scores.get_ylim() == (0.0, 1.0)
