"""Metrics against scikit-learn, fold summaries, and the PNG figures."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from milmer.runtime.check import MilmerInputError
from milmer.training.metrics import accuracy, classification_metrics, confusion_matrix, macro_f1, summarize_folds
from milmer.training.plots import plot_confusion, plot_curves


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 4, 57)
    p = np.where(rng.random(57) < 0.5, t, rng.integers(0, 4, 57))
    np.testing.assert_array_equal(confusion_matrix(t, p, 4), skm.confusion_matrix(t, p, labels=range(4)))
    assert accuracy(t, p) == pytest.approx(skm.accuracy_score(t, p), abs=1e-12)
    assert macro_f1(t, p, 4) == pytest.approx(skm.f1_score(t, p, average="macro"), abs=1e-12)


def test_absent_classes_follow_sklearn():
    t = np.array([0, 0, 1, 1, 1])
    p = np.array([0, 1, 1, 1, 0])  # classes 2 and 3 occur nowhere: left out of the mean
    assert macro_f1(t, p, 4) == pytest.approx(skm.f1_score(t, p, average="macro")) == pytest.approx((0.5 + 2 / 3) / 2)
    p2 = np.array([0, 3, 1, 1, 0])  # class 3 predicted but never true: F1 0, in the mean
    assert macro_f1(t, p2, 4) == pytest.approx(skm.f1_score(t, p2, average="macro")) == pytest.approx((0.5 + 0.8 + 0) / 3)


def test_classification_metrics_and_bad_input():
    m = classification_metrics([0, 1, 1, 2], [0, 1, 2, 2], 4, ["a", "b", "c", "d"])
    assert m["n"] == 4 and m["accuracy"] == 0.75 and m["confusion"][:3] == [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0]]
    assert m["per_class_f1"]["d"] is None and m["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert {k: m["per_class_f1"][k] for k in "abc"} == pytest.approx({"a": 1.0, "b": 2 / 3, "c": 2 / 3})
    with pytest.raises(MilmerInputError, match=r"'y_pred': expected values in \[0, 2\], got values from 0 to 3"):
        confusion_matrix([0, 1], [0, 3], 3)
    with pytest.raises(MilmerInputError, match=r"expected the same length, got 2 and 3"):
        confusion_matrix([0, 1], [0, 1, 1], 3)


def test_summarize_folds_mean_std():
    s = summarize_folds([{"accuracy": 0.5, "macro_f1": 0.4}, {"accuracy": 0.7, "macro_f1": 0.6}, {"accuracy": 0.9, "macro_f1": 0.5}])
    assert s["accuracy"] == pytest.approx({"mean": 0.7, "std": np.std([0.5, 0.7, 0.9]), "min": 0.5, "max": 0.9})
    assert s["macro_f1"]["mean"] == pytest.approx(0.5)
    with pytest.raises(MilmerInputError, match="at least one fold"):
        summarize_folds([])


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_plots_write_pngs(tmp_path):
    cm = np.array([[5, 1, 0, 0], [2, 3, 0, 1], [0, 0, 0, 0], [1, 0, 2, 4]])
    out = plot_confusion(cm, ("HAHV", "HALV", "LAHV", "LALV"), tmp_path / "confusion.png", title="fold 0")
    assert _is_png(out)
    history = [
        {"epoch": 1, "train_loss": 1.4, "val_loss": 1.3, "val_accuracy": 0.3, "val_macro_f1": 0.2},
        {"epoch": 2, "train_loss": 1.1, "val_loss": 1.2, "val_accuracy": 0.4, "val_macro_f1": 0.35},
        {"epoch": 3, "train_loss": 0.9, "val_loss": None, "val_accuracy": None, "val_macro_f1": None},
    ]
    assert _is_png(plot_curves(history, tmp_path / "curves.png", title="fold 0"))
