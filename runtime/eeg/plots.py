"""Figures for checking EEG preprocessing by eye."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .preprocess import ICATrace

__all__ = ["plot_ica_before_after"]


def plot_ica_before_after(trace: ICATrace, path: str | os.PathLike[str]) -> Path:
    """Write a PNG of ``trace``: each channel before (grey) and after (colour) ICA, stacked.

    Channels share one vertical scale (the spacing is printed on the figure) so amplitudes
    compare across channels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    times = trace.times
    # Space the rows by the largest before-ICA swing so blinks do not overlap the row above.
    spacing = float(np.percentile(np.abs(trace.before), 99.5)) * 2 or 1.0
    offsets = -spacing * np.arange(len(trace.channels))  # first channel on top

    fig, ax = plt.subplots(figsize=(11, 1.0 + 0.9 * len(trace.channels)), dpi=100)
    colours = plt.get_cmap("tab10").colors
    for row, name in enumerate(trace.channels):
        ax.plot(times, trace.before[row] + offsets[row], color="0.65", lw=0.8,
                label="before ICA" if row == 0 else None)  # fmt: skip
        ax.plot(times, trace.after[row] + offsets[row], color=colours[row % len(colours)], lw=0.9,
                label="after ICA" if row == 0 else None)  # fmt: skip
    ax.set_yticks(offsets, trace.channels)
    ax.set_xlim(times[0], times[-1])
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"row spacing {spacing:.0f} \u00b5V")
    excluded = ", ".join(map(str, trace.excluded)) or "none"
    ax.set_title(f"ICA: excluded component(s) {excluded} ({trace.eog_source})")
    ax.legend(loc="upper right", frameon=False, ncols=2)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
