"""The speed targets of the side-by-side benchmark, and the one-screen summary ``milmer bench``
prints at the end. Reads ``bench.json``'s figures only; measures nothing.

Targets (reported, never asserted):

- end to end per window at the default settings (``milmer-infer`` with no options), start-up
  included, on the 60 s recording, <= 0.6x the fp32 floor on a CPU with native bf16 (not
  applicable elsewhere; missed: by how much and why, :mod:`.default_settings`);
- end to end per 3 s window, with the fastest variant that agrees with fp32 (>= 98 % top-1,
  >= 95 % selected frames), at most 1.0x the fp32 floor (FLOPs / the best fp32 GEMM peak);
- that run >= 4x faster end to end than the official-style PyTorch reference;
- the backbone of every variant within 1.5x of its own precision's floor;
- ICA (the spec's solver, Picard by default) <= 10 ms per window, amortised over the longest recording;
- peak RSS of the longest recording <= 1.5 GB at the default settings (fp32, the default batch).
"""

from __future__ import annotations

from typing import Any

from .default_settings import GOAL, default_target, goal_lines
from .formatting import fmt, format_value, length, side_by_side_cells, verdict

__all__ = [
    "SPEED_TARGETS", "PAPER_SIZE_TARGETS", "run_caveats", "tiny_reason", "title_tag", "speed_targets", "peer_lines",
    "summary_screen", "eeg_memory_line", "targets_not_applied_line",
]  # fmt: skip

SPEED_TARGETS: dict[str, tuple[str, float]] = {
    "default": GOAL,
    "floor": ("end to end per window, fastest agreeing variant, <= 1.0x the fp32 floor", 1.0),
    "reference": ("fastest agreeing variant >= 4x faster end to end than the PyTorch reference", 4.0),
    "backbone_floor": ("backbone within 1.5x of its precision's GEMM floor", 1.5),
    "ica": ("ICA <= 10 ms per window amortised on the longest recording", 10.0),
    "rss": ("peak RSS on the longest recording <= 1.5 GB at the default settings", 1536.0),
}
#: Targets set for the paper-size model: a tiny model's time is all outside its backbone (a run
#: measured "140x floor"), so they are not applied to a model that is not the paper's size (``--tiny``,
#: or a ``--model`` such as the demo's: bench.json's ``model.tiny``). ICA does not depend on the model.
PAPER_SIZE_TARGETS = frozenset({"default", "floor", "reference", "backbone_floor", "rss"})
_AT_MOST = {"default", "floor", "backbone_floor", "ica", "rss"}
_UNITS = {"default": "x", "floor": "x", "reference": "x", "backbone_floor": "x", "ica": "ms", "rss": "MB"}


def run_caveats(result: dict[str, Any]) -> list[str]:
    """What every title of this run must say: 'TINY model' (random weights, not the paper's size)
    and 'not quiet' (the load was over the limit at the start), in that order; empty for neither."""
    tags = []
    if (result.get("model") or {}).get("tiny"):
        tags.append("TINY model")
    if not ((result.get("load") or {}).get("before") or {}).get("quiet"):
        tags.append("not quiet")
    return tags


def tiny_reason(result: dict[str, Any]) -> str:
    """'TINY model (not the paper's size: token_dim 64 (paper: 768), ...)' for a run whose model is
    not the paper's size (bench.json's ``model.not_paper_size``; older results: 'TINY model')."""
    why = (result.get("model") or {}).get("not_paper_size")
    return f"TINY model (not the paper's size: {', '.join(why)})" if why else "TINY model"


def targets_not_applied_line(result: dict[str, Any]) -> str | None:
    """The line the summary screen and bench.md give a model not of the paper's size (its
    :data:`PAPER_SIZE_TARGETS` are not applied, :func:`tiny_reason` says why); None otherwise."""
    if not (result.get("model") or {}).get("tiny"):
        return None
    return f"Speed targets for the paper-size model not applied: {tiny_reason(result)}."


def title_tag(result: dict[str, Any]) -> str:
    """`` [TINY model, not quiet]`` for titles, or '' when neither applies."""
    tags = run_caveats(result)
    return f" [{', '.join(tags)}]" if tags else ""


def _row(name: str, value: float | None, **context: Any) -> dict[str, Any]:
    text, limit = SPEED_TARGETS[name]
    met = value is not None and (value <= limit if name in _AT_MOST else value >= limit)
    return {"target": text, **context, "value": value, "unit": _UNITS[name], "threshold": limit, "met": met}


def _fp32_floor_ms(result: dict[str, Any]) -> float | None:
    flops = result["floor"].get("flops")
    peak = (result["floor"].get("precision_peaks") or {}).get("fp32", {}).get("peak_gflops")
    if not flops or not peak:
        return None
    return flops["per_window"] / (peak * 1e9) * 1e3


def _best_runs(result: dict[str, Any]) -> list[dict[str, Any]]:
    """End-to-end runs of the fastest agreeing variant (its own runs, or the plain precision's)."""
    side = result.get("side_by_side") or {}
    best = side.get("fastest_agreeing")
    if best is None:
        return []
    if result.get("endtoend_best"):
        return list(result["endtoend_best"])
    row = next(r for r in side["rows"] if r["name"] == best)
    return [r for r in result["endtoend"] if r["precision"] == row["precision"]]


def speed_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The :data:`SPEED_TARGETS` rows for a finished benchmark ``result`` (for a tiny model, only
    those outside :data:`PAPER_SIZE_TARGETS`)."""
    rows = _speed_targets(result)
    if (result.get("model") or {}).get("tiny"):
        paper = {SPEED_TARGETS[name][0] for name in PAPER_SIZE_TARGETS}
        rows = [r for r in rows if r["target"] not in paper]
    return rows


def _speed_targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    floor_ms = _fp32_floor_ms(result)
    side = result.get("side_by_side") or {}
    best_runs = sorted(_best_runs(result), key=lambda r: r["recording_s"])
    if best_runs:
        longest = best_runs[-1]
        per_window_ms = longest["per_window_s"] * 1e3 if longest.get("per_window_s") else None
        rows.append(
            _row(
                "floor", per_window_ms / floor_ms if per_window_ms and floor_ms else None,
                variant=side.get("fastest_agreeing"), recording_s=longest["recording_s"], per_window_ms=per_window_ms,
                floor_ms=floor_ms,
            )
        )  # fmt: skip
        extrapolated = ((result.get("summary") or {}).get("reference") or {}).get("extrapolated_total_s") or {}
        ref_total = extrapolated.get(str(longest["recording_s"]))
        ours = longest["startup_s"] + longest["wall_s"]
        rows.append(
            _row("reference", ref_total / ours if ref_total else None, variant=side.get("fastest_agreeing"),
                 recording_s=longest["recording_s"])
        )  # fmt: skip
    default = default_target(result, floor_ms)  # its own row: met, missed with why, or not applicable
    if default is not None:
        rows.append(default)
    for r in side.get("rows", []):
        rows.append(_row("backbone_floor", r.get("x_floor"), variant=r["name"], backbone_ms=r["backbone_s"] * 1e3))
    runs = sorted(result.get("endtoend", []), key=lambda r: r["recording_s"])
    if runs:
        longest_s = runs[-1]["recording_s"]
        fp32 = [r for r in runs if r["recording_s"] == longest_s and r["precision"] == "fp32"] or [runs[-1]]
        run = fp32[0]
        ica_s = run.get("eeg_timings", {}).get("ica")
        rows.append(
            _row("ica", ica_s / run["n_windows"] * 1e3 if ica_s is not None and run["n_windows"] else None,
                 recording_s=longest_s, ica_s=ica_s, **run.get("eeg_ica", {}))
        )  # fmt: skip
        # "The default settings" are milmer-infer's (bench's own default-settings runs) where they ran;
        # runs from before those existed: the fp32 run, the default then.
        default = [r for r in result.get("endtoend_default", []) if r["recording_s"] == longest_s]
        if default:
            rows.append(_row("rss", default[0]["peak_rss_mb"], recording_s=longest_s, variant=default[0]["variant"]))
        else:
            rows.append(_row("rss", run["peak_rss_mb"], recording_s=longest_s, precision=run["precision"]))
    return rows


def _short(reason: str, limit: int = 110) -> str:
    """A skip reason for one screen line: its first clause, cut at a word within ``limit`` characters."""
    text = reason.split(";")[0].rstrip(". ")
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def peer_lines(result: dict[str, Any]) -> list[str]:
    """The PyTorch peers of the backbone (:mod:`.peers`), one line each, skipped ones with why."""
    peers = result.get("peers")
    if not peers:
        return []
    lines = [f"PyTorch peers, backbone of one bag batched ({peers.get('torch_threads')} torch threads):"]
    for r in peers["rows"]:
        compiled = f", compiled in {r['compile_s']:.0f} s" if r.get("compile_s") else ""
        lines.append(
            f"  {r['name']:<22} {fmt(r['backbone_s'] * 1e3, '.0f')} ms, x floor {fmt(r.get('x_floor'), '.2f')}, "
            f"max |d token| vs eager {fmt(r.get('max_abs_tokens_vs_eager'), '.3g')}{compiled}"
        )
    lines += [f"  {name}: not measured ({_short(why)})" for name, why in peers.get("skipped", {}).items()]
    return lines


def eeg_memory_line(result: dict[str, Any]) -> str | None:
    """One line for bench.json's ``eeg_memory`` (:mod:`.memory`: EEG preprocessing of a long
    BioSemi-style BDF in a fresh process, its own peak RSS against the 2 GB target); None when the
    run has none."""
    m = result.get("eeg_memory")
    if not m:
        return None
    if m.get("skipped"):
        return f"EEG preprocessing memory: not measured ({_short(m['skipped'])})"
    verdict_text = "met" if m.get("met") else "NOT met"
    seconds = m["recording_s"]
    duration = f"{seconds / 3600:g} h" if seconds >= 3600 else length(seconds)
    # A file small enough to be read whole does not take the long-file path the target is about.
    whole = "" if m.get("notes") else "; read whole (short file): says nothing about long recordings"
    return (
        f"EEG preprocessing memory: peak RSS {fmt(m['peak_rss_mb'], '.0f')} MB for {duration} of a "
        f"{m['channels']}-channel {m['sfreq']} Hz BDF ({fmt(m['file_mb'], '.0f')} MB file, {m['n_windows']} windows, "
        f"{fmt(m['wall_s'], '.1f')} s), target <= {fmt(m['target_mb'], '.0f')} MB for any length and rate: "
        f"{verdict_text}{whole}"
    )


def summary_screen(result: dict[str, Any]) -> str:
    """About 40 lines: machine and load, GEMM peaks per precision, the side-by-side table, end to
    end per window, and the targets met or not."""
    m, load = result["machine"], result["load"]
    lines = [
        f"milmer bench{title_tag(result)}: {m.get('cpu_model', m.get('cpu_short_name', '?'))}, {m.get('usable_cores', '?')} cores, flags {' '.join(m.get('cpu_flags', []))}; "
        f"load average {load['before'].get('load_1min')} before, {load.get('after')} after "
        + (
            "(quiet at the start; the load after includes this run's own work)"
            if load["before"].get("quiet")
            else "(busy machine: compare rows within this run, not with other runs)"
        ),
    ]
    peaks = result["floor"].get("precision_peaks") or {}
    lines.append(
        "GEMM peaks: "
        + ", ".join(
            f"{p} {fmt(v['peak_gflops'], '.0f')} GFLOP/s ({v['engine']})" if v.get("peak_gflops") else f"{p} not here"
            for p, v in peaks.items()
        )
    )
    floor_ms = _fp32_floor_ms(result)
    lines.append(f"fp32 floor: {fmt(floor_ms)} ms per window")
    side = result.get("side_by_side")
    if side:
        lines.append("")
        widths = (-24, 12, 9, 8, 10, 12, 8, 8)  # negative: left-aligned
        header = ("variant", "backbone ms", "GFLOP/s", "x floor", "fusion ms", "vs ort fp32", "top-1", "sel.")
        for cells in (header, *(side_by_side_cells(r) for r in side["rows"])):
            lines.append("".join(f"{c:<{-w}}" if w < 0 else f"{c:>{w}}" for c, w in zip(cells, widths)))
        for name, why in side.get("skipped", {}).items():
            lines.append(f"  {name}: not measured ({_short(why)})")
        lines.append("x floor: the backbone against its own precision's GEMM floor")
        lines.append(f"fastest agreeing with fp32: {side.get('fastest_agreeing') or 'none'}")
    lines += peer_lines(result)
    lines.append("")
    for r in result.get("endtoend", []) + result.get("endtoend_best", []) + result.get("endtoend_default", []):
        name = f"{result['settings'].get('backend', 'ort')} {r['precision']}"
        if r.get("variant"):
            name = r["variant"] if r["variant"].startswith("default (") else f"{r['variant']} (fastest agreeing)"
        per_window = r["per_window_s"] * 1e3 if r.get("per_window_s") else None
        lines.append(
            f"end to end {name:<22} {r['recording_s']:>4} s: {fmt(per_window, '.0f')} ms/window, "
            f"ICA {fmt(r.get('eeg_timings', {}).get('ica'), '.2f')} s"
            + (f" ({r['eeg_ica']['ica_method']}, {r['eeg_ica']['ica_n_iter']} iterations)" if r.get("eeg_ica") else "")
            + f", peak RSS {fmt(r['peak_rss_mb'], '.0f')} MB"
        )
    memory = eeg_memory_line(result)
    if memory:
        lines.append(memory)
    lines.append("")
    skipped = targets_not_applied_line(result)
    if skipped:
        lines.append(skipped)
    for t in result.get("speed_targets", []):
        what = t.get("variant") or t.get("precision") or ""
        if t.get("variant") and t.get("recording_s"):
            what = f"{t['variant']}, {t['recording_s']} s"
        where = f" ({what})" if what else ""
        lines.append(f"[{verdict(t)}] {t['target']}{where}: {format_value(t['value'], t.get('unit'))}")
        if t["target"] == GOAL[0]:
            lines += [f"    {line}" for line in goal_lines(t)]
    return "\n".join(lines)
