"""PNG charts of a benchmark: per-stage latency, throughput against batch size, memory against
recording length. Each reads only the ``bench.json`` dictionary, so charts can be redrawn from a
saved result (:func:`draw_charts`). Small figures at a modest dpi keep committed PNGs small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .summary import title_tag

__all__ = ["CHARTS", "draw_charts", "length_label", "stage_chart", "throughput_chart", "memory_chart"]

#: Chart name -> file name suffix.
CHARTS: tuple[str, ...] = ("stages", "throughput", "memory")
_DPI = 80
_SIZE = (7.0, 3.6)


def _figure(size: tuple[float, float] = _SIZE, **subplots: Any) -> tuple[Any, Any]:
    """A figure and its axes on the Agg backend; ``subplots`` go to ``plt.subplots`` (``ncols=2``...)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=_DPI, **subplots)
    return fig, ax


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


#: Line style per precision: equal figures (fp16 and fp32 often are) stay visible as two lines,
#: fp32 drawn last and hollow markers over filled ones.
_STYLES: dict[str, dict[str, Any]] = {
    "fp32": {"color": "C0", "marker": "o", "linestyle": "-", "markerfacecolor": "none", "markersize": 8, "zorder": 4},
    "fp16": {"color": "C1", "marker": "s", "linestyle": "--", "markersize": 5, "zorder": 3},
    "int8": {"color": "C2", "marker": "^", "linestyle": ":", "markersize": 6, "zorder": 2},
}
_LEGEND_FONT = 9


def _style(precision: str) -> dict[str, Any]:
    return {"color": "C3", "marker": "D", "linestyle": "-.", "zorder": 1, **_STYLES.get(precision, {})}


def _draw_order(names: list[str]) -> list[str]:
    """Precisions in drawing order: fp32 last, so it is on top."""
    return sorted(names, key=lambda p: _STYLES.get(p, {}).get("zorder", 1))


def stage_chart(result: dict[str, Any], path: Path) -> Path:
    """Two panels of milliseconds per 3 s window by stage, one bar per precision (and one for the
    official-style reference when it ran). Left: the stages stacked, so the totals compare; the
    axis ends a little past the longest pipeline bar and a longer bar (the reference) is cut
    there and labelled with its total. Right: every stage on its own on a log axis, so stages
    of a millisecond or less (crop, normalise) are as readable as the backbone."""
    import matplotlib

    from .report import REFERENCE_LABEL

    rows = result["summary"]["per_window_stages_ms"]
    labels = list(rows)
    stages = list(dict.fromkeys(stage for row in rows.values() for stage in row))
    totals = [sum(rows[label].values()) for label in labels]
    floor = result["summary"].get("floor_ms_per_window")
    ours = [t for label, t in zip(labels, totals) if label != REFERENCE_LABEL]
    limit = 1.25 * max(ours + [floor or 0.0])

    fig, (ax, ax_log) = _figure(
        (11.0, max(4.5, 1.8 + 0.3 * len(stages))), ncols=2, gridspec_kw={"width_ratios": [1.0, 1.1]}
    )
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
            fontsize=8,
            color="white" if cut else "black",
            fontweight="bold" if cut else "normal",
        )
    if floor:
        ax.axvline(floor, color="black", linestyle="--", linewidth=1, label="compute floor")
    ax.set_xlim(0, limit * 1.15)
    ax.invert_yaxis()
    ax.set_xlabel("ms per 3 s window (median), stacked")
    ax.set_title("Per-stage latency" + title_tag(result))

    height = 0.8 / max(len(labels), 1)
    for j, label in enumerate(labels):
        values = [rows[label].get(stage) for stage in stages]
        ys = [k - 0.4 + height * (j + 0.5) for k in range(len(stages))]
        kept = [(y, v) for y, v in zip(ys, values) if v]
        color = _STYLES.get(label, {}).get("color", f"C{3 + j}")
        ax_log.barh([y for y, _ in kept], [v for _, v in kept], height=height, color=color, label=label)
    ax_log.set_xscale("log")
    ax_log.set_yticks(range(len(stages)), stages)
    ax_log.invert_yaxis()
    ax_log.set_xlabel("ms per 3 s window (median), log scale")
    ax_log.set_title("Each stage alone" + title_tag(result))
    ax_log.grid(axis="x", which="major", linewidth=0.5, alpha=0.5)
    ax_log.legend(fontsize=_LEGEND_FONT, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    # The stage colours of the stacked panel, under it.
    ax.legend(fontsize=_LEGEND_FONT, loc="upper center", bbox_to_anchor=(0.45, -0.14), ncol=3, frameon=False)
    return _save(fig, path)


def throughput_chart(result: dict[str, Any], path: Path) -> Path:
    """Bags scored per second against bags per call, one line per precision."""
    fig, ax = _figure()
    sizes: set[int] = set()
    for precision in _draw_order(list(result["throughput"])):
        rows = [r for r in result["throughput"][precision]["rows"] if "skipped" not in r]
        sizes.update(r["batch"] for r in rows)
        ax.plot([r["batch"] for r in rows], [r["bags_per_s"] for r in rows], label=precision, **_style(precision))
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(sizes), [str(b) for b in sorted(sizes)])
    ax.set_xlabel("bags per call (batch)")
    ax.set_ylabel("bags / s")
    ax.set_ylim(0, 1.3 * max([line.get_ydata().max() for line in ax.get_lines()] + [1e-9]))  # room for the legend
    ax.set_title("Batched bag scoring throughput" + title_tag(result))
    ax.legend(fontsize=_LEGEND_FONT)
    return _save(fig, path)


def length_label(seconds: float) -> str:
    """A recording length for an axis tick: whole minutes ('10 min'), else seconds ('12 s')."""
    return f"{seconds / 60:g} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:g} s"


def memory_chart(result: dict[str, Any], path: Path) -> Path:
    """Peak resident memory of a whole run against the recording's length, one line per
    precision; a tick at each measured length, labelled in whole minutes."""
    fig, ax = _figure()
    by_precision: dict[str, list[tuple[float, float]]] = {}
    for run in result["endtoend"]:
        by_precision.setdefault(run["precision"], []).append((run["recording_s"], run["peak_rss_mb"]))
    lengths = sorted({p[0] for points in by_precision.values() for p in points})
    for precision in _draw_order(list(by_precision)):
        points = sorted(by_precision[precision])
        ax.plot([p[0] for p in points], [p[1] for p in points], label=precision, **_style(precision))
    if len(lengths) > 1 and lengths[-1] / lengths[0] >= 5:
        ax.set_xscale("log")  # 1 and 10 min: both ends readable
    ax.set_xticks(lengths, [length_label(s) for s in lengths])
    ax.minorticks_off()
    ax.set_xlabel("recording length")
    ax.set_ylabel("peak RSS (MB)")
    ax.set_ylim(0, 1.3 * max([line.get_ydata().max() for line in ax.get_lines()] + [1e-9]))  # room for the legend
    ax.set_title(f"Peak memory of one run (own process, {result['settings']['pipeline_batch']} bag(s) per call)" + title_tag(result))
    ax.legend(fontsize=_LEGEND_FONT)
    return _save(fig, path)


def draw_charts(result: dict[str, Any], folder: Path, prefix: str = "") -> dict[str, str]:
    """Draw every chart into ``folder`` as ``{prefix}{name}.png``; returns name -> file name."""
    drawers = {"stages": stage_chart, "throughput": throughput_chart, "memory": memory_chart}
    return {name: drawers[name](result, folder / f"{prefix}{name}.png").name for name in CHARTS}
