"""PNG figures of a run: confusion matrix and learning curves (matplotlib, Agg, imported lazily)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_confusion", "plot_curves", "confusion_summary", "NO_VALIDATION"]

#: What the scores panel of curves.png says when the run had no validation split.
NO_VALIDATION = "no validation set\n(no validation loss, accuracy or macro-F1)"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on training servers
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    from ..runtime.files import atomic_file

    path = Path(path)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def confusion_summary(cm: np.ndarray | Sequence[Sequence[int]]) -> str:
    """``n 24 | accuracy 0.833 | macro-F1 0.829`` of a (C, C) count matrix (rows = true class);
    macro-F1 over the classes that occur (as :func:`.metrics.macro_f1`, sklearn's definition)."""
    from .metrics import per_class_f1

    cm = np.asarray(cm, dtype=np.int64)
    n = int(cm.sum())
    if n == 0:
        return "n 0 | accuracy - | macro-F1 -"
    f1 = per_class_f1(cm)
    return f"n {n} | accuracy {np.trace(cm) / n:.3f} | macro-F1 {float(np.mean(f1[~np.isnan(f1)])):.3f}"


def plot_confusion(
    cm: np.ndarray | Sequence[Sequence[int]],
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    *,
    title: str = "",
) -> Path:
    """Counts (left) and row-normalised shares (right) of a confusion matrix, rows = true class.

    cm: (C, C) counts. The figure's title ends with a line giving the number of windows n, the
    accuracy and the macro-F1 computed from ``cm`` (definitions of :mod:`.metrics`).
    """
    plt = _pyplot()
    cm = np.asarray(cm, dtype=np.int64)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=np.float64), where=rows > 0)
    n = len(class_names)
    side = 3.2 + 0.35 * n
    fig, axes = plt.subplots(1, 2, figsize=(2 * side + 1.5, side), layout="constrained")
    for ax, values, fmt, label in (
        (axes[0], cm, "{:d}", "count"),
        (axes[1], share, "{:.2f}", "share of true class"),
    ):
        im = ax.imshow(values, cmap="Blues", vmin=0, vmax=max(float(values.max()), 1e-9))
        ax.set_xticks(range(n), class_names, rotation=45, ha="right")
        ax.set_yticks(range(n), class_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(label)
        top = float(values.max())
        for i in range(n):
            for j in range(n):
                v = values[i, j]
                ax.text(j, i, fmt.format(v.item()), ha="center", va="center",
                        color="white" if top and v > top / 2 else "black", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle("\n".join(filter(None, (title, confusion_summary(cm)))))
    return _save(fig, path)


def plot_curves(history: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Train/validation loss (left) and validation accuracy and macro-F1 (right) per epoch.

    history: per-epoch records with ``epoch``, ``train_loss`` and, when there is a validation
    split, ``val_loss``, ``val_accuracy``, ``val_macro_f1`` (missing or None values are skipped).
    Without any validation score the right panel says :data:`NO_VALIDATION` instead of axes.
    """
    plt = _pyplot()

    def series(key: str) -> tuple[list[int], list[float]]:
        pts = [(int(h["epoch"]), float(h[key])) for h in history if h.get(key) is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for key, label in (("train_loss", "train loss"), ("val_loss", "val loss")):
        x, y = series(key)
        if x:
            ax_loss.plot(x, y, marker="o", ms=3, label=label)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.legend()
    for key, label in (("val_accuracy", "val accuracy"), ("val_macro_f1", "val macro-F1")):
        x, y = series(key)
        if x:
            ax_score.plot(x, y, marker="o", ms=3, label=label)
    ax_loss.grid(alpha=0.3)
    if ax_score.lines:
        ax_score.set_xlabel("epoch")
        ax_score.set_ylim(0, 1)
        ax_score.legend()
        ax_score.grid(alpha=0.3)
    else:  # e.g. loso or val_fraction 0: say so rather than draw empty axes
        ax_score.set_axis_off()
        ax_score.text(0.5, 0.5, NO_VALIDATION, ha="center", va="center", fontsize=13, color="0.35",
                      transform=ax_score.transAxes)  # fmt: skip
    if title:
        fig.suptitle(title)
    return _save(fig, path)
