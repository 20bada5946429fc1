"""Classification metrics in numpy: accuracy, macro-F1, confusion matrix, mean +- std over folds.

Definitions follow ``sklearn.metrics`` (the tests compare against it): macro-F1 is the unweighted
mean of per-class F1 over the classes that occur in ``y_true`` or ``y_pred`` (sklearn's
``f1_score(average="macro")``), so a class missing from a small fold's test set and never
predicted does not cap the score; one that is predicted but absent scores 0. ``n_classes`` fixes
the confusion matrix's size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..runtime.check import check_array, check_nonempty, check_same_length

__all__ = ["confusion_matrix", "accuracy", "macro_f1", "per_class_f1", "classification_metrics", "summarize_folds"]


def _labels(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true).astype(np.int64).ravel()
    p = np.asarray(y_pred).astype(np.int64).ravel()
    check_same_length(("y_true", "y_pred"), (t, p))
    for name, arr in (("y_true", t), ("y_pred", p)):
        check_array(name, arr, low=0, high=n_classes - 1)
    return t, p


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int64 counts: row = true class, column = predicted class."""
    t, p = _labels(y_true, y_pred, n_classes)
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Share of samples predicted correctly (NaN for no samples)."""
    t = np.asarray(y_true).ravel()
    p = np.asarray(y_pred).ravel()
    check_same_length(("y_true", "y_pred"), (t, p))
    return float(np.mean(t == p)) if t.size else float("nan")


def per_class_f1(cm: np.ndarray) -> np.ndarray:
    """(n_classes,) F1 of each class from a confusion matrix; NaN for a class that is neither
    true nor predicted anywhere."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    denom = cm.sum(axis=0) + cm.sum(axis=1)  # predicted + true = 2 tp + fp + fn
    return np.divide(2 * tp, denom, out=np.full_like(tp, np.nan), where=denom > 0)


def _macro(f1: np.ndarray) -> float:
    present = f1[~np.isnan(f1)]
    return float(present.mean()) if present.size else float("nan")


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> float:
    """Unweighted mean F1 over the classes occurring in ``y_true`` or ``y_pred``."""
    return _macro(per_class_f1(confusion_matrix(y_true, y_pred, n_classes)))


def classification_metrics(
    y_true: ArrayLike, y_pred: ArrayLike, n_classes: int, class_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class F1 (None for a class that occurs nowhere) and the confusion
    matrix, JSON-ready."""
    cm = confusion_matrix(y_true, y_pred, n_classes)
    f1 = per_class_f1(cm)
    names = list(class_names) if class_names is not None else [str(i) for i in range(n_classes)]
    return {
        "n": int(cm.sum()),
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": _macro(f1),
        "per_class_f1": {name: None if np.isnan(v) else float(v) for name, v in zip(names, f1)},
        "confusion": cm.tolist(),
        "class_names": names,
    }


def summarize_folds(per_fold: Sequence[Mapping[str, float]], keys: Sequence[str] = ("accuracy", "macro_f1")) -> dict[str, dict[str, float]]:
    """``{key: {"mean", "std", "min", "max"}}`` over folds (population std, ``ddof=0``; 0 for one fold)."""
    out: dict[str, dict[str, float]] = {}
    for key in keys:
        values = np.array([float(f[key]) for f in per_fold], dtype=np.float64)
        check_nonempty("per_fold", values, "fold's metrics")
        out[key] = {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
        }
    return out
