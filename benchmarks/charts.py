"""PNG charts of a benchmark: per-stage latency, throughput against batch size, memory against
recording length. Each reads only the ``bench.json`` dictionary, so charts can be redrawn from a
saved result (:func:`draw_charts`). Small figures at a modest dpi keep committed PNGs small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["CHARTS", "draw_charts", "stage_chart", "throughput_chart", "memory_chart"]

#: Chart name -> file name suffix.
CHARTS: tuple[str, ...] = ("stages", "throughput", "memory")
_DPI = 80
_SIZE = (7.0, 3.6)


def _figure(size: tuple[float, float] = _SIZE) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=_DPI)
    return fig, ax


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def stage_chart(result: dict[str, Any], path: Path) -> Path:
    """Stacked horizontal bars: milliseconds per 3 s window by stage, one bar per precision
    (and one for the official-style reference when it ran). The axis ends a little past the
    longest pipeline bar so its stages stay readable; a longer bar (the reference) is cut there
    and labelled with its total."""
    import matplotlib

    from .report import REFERENCE_LABEL

    rows = result["summary"]["per_window_stages_ms"]
    labels = list(rows)
    stages = list(dict.fromkeys(stage for row in rows.values() for stage in row))
    totals = [sum(rows[label].values()) for label in labels]
    floor = result["summary"].get("floor_ms_per_window")
    ours = [t for label, t in zip(labels, totals) if label != REFERENCE_LABEL]
    limit = 1.25 * max(ours + [floor or 0.0])

    fig, ax = _figure((8.5, 3.6))
    cmap = matplotlib.colormaps["tab20"]
    left = [0.0] * len(labels)
    for k, stage in enumerate(stages):
        values = [rows[label].get(stage, 0.0) for label in labels]
        ax.barh(labels, values, left=left, color=cmap(k % 20), label=stage)
        left = [a + b for a, b in zip(left, values)]
    for y, total in enumerate(totals):
        cut = total > limit
        ax.text(
            min(total, limit),
            y,
            f"{total:,.0f} ms{' >' if cut else ''} ",
            va="center",
            ha="right" if cut else "left",
            fontsize=7,
            color="white" if cut else "black",
            fontweight="bold" if cut else "normal",
        )
    if floor:
        ax.axvline(floor, color="black", linestyle="--", linewidth=1, label="compute floor")
    ax.set_xlim(0, limit * 1.12)
    ax.invert_yaxis()
    ax.set_xlabel("ms per 3 s window (median)")
    ax.set_title("Per-stage latency")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _save(fig, path)


def throughput_chart(result: dict[str, Any], path: Path) -> Path:
    """Bags scored per second against bags per call, one line per precision."""
    fig, ax = _figure()
    sizes: set[int] = set()
    for precision, sweep in result["throughput"].items():
        rows = [r for r in sweep["rows"] if "skipped" not in r]
        sizes.update(r["batch"] for r in rows)
        ax.plot([r["batch"] for r in rows], [r["bags_per_s"] for r in rows], marker="o", label=precision)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(sizes), [str(b) for b in sorted(sizes)])
    ax.set_xlabel("bags per call (batch)")
    ax.set_ylabel("bags / s")
    ax.set_ylim(bottom=0)
    ax.set_title("Batched bag scoring throughput")
    ax.legend(fontsize=7)
    return _save(fig, path)


def memory_chart(result: dict[str, Any], path: Path) -> Path:
    """Peak resident memory of a whole run against the recording's length, one line per precision."""
    fig, ax = _figure()
    by_precision: dict[str, list[tuple[float, float]]] = {}
    for run in result["endtoend"]:
        by_precision.setdefault(run["precision"], []).append((run["recording_s"] / 60, run["peak_rss_mb"]))
    for precision, points in by_precision.items():
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=precision)
    ax.set_xlabel("recording length (min)")
    ax.set_ylabel("peak RSS (MB)")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Peak memory of one run (own process, {result['settings']['pipeline_batch']} bags per call)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def draw_charts(result: dict[str, Any], folder: Path, prefix: str = "") -> dict[str, str]:
    """Draw every chart into ``folder`` as ``{prefix}{name}.png``; returns name -> file name."""
    drawers = {"stages": stage_chart, "throughput": throughput_chart, "memory": memory_chart}
    return {name: drawers[name](result, folder / f"{prefix}{name}.png").name for name in CHARTS}
