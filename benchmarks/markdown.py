"""``bench.md``: the README-ready summary of a benchmark run (stage latencies, floor and reference
ratios, int8, memory, the side-by-side table, the PyTorch peers, targets). Reads ``bench.json``'s
figures only; measures nothing."""

from __future__ import annotations

from typing import Any

from .default_settings import GOAL, goal_lines
from .formatting import bags_per_call as _bags_per_call
from .formatting import fmt, format_value, side_by_side_cells, verdict
from .formatting import ratio as _ratio
from .formatting import length as _length
from .summary import eeg_memory_line, peer_lines, run_caveats, targets_not_applied_line

__all__ = ["markdown"]


def markdown(result: dict[str, Any]) -> str:
    """A README-ready summary: stage latencies, floor and reference ratios, int8, memory, targets."""
    s = result["summary"]
    m = result["machine"]
    caveats = run_caveats(result)
    lines = [
        *([f"**{', '.join(caveats)}**", ""] if caveats else []),
        f"Machine: {m['cpu_model']}, {m['usable_cores']} cores, {m['ram_gb']} GB; onnxruntime "
        f"{m['libraries']['onnxruntime']}; backend {result['settings']['backend']}/{result['settings']['device']}.",
        "",
        *(f"- {note}" for note in result.get("notes", [])),
        "",
        "Per-stage latency, ms per 3 s window (median):",
        "",
    ]
    cols = list(s["per_window_stages_ms"])
    stages = list(dict.fromkeys(k for row in s["per_window_stages_ms"].values() for k in row))
    lines += ["| stage | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for stage in stages:
        lines.append(
            f"| {stage} | " + " | ".join(fmt(s["per_window_stages_ms"][c].get(stage), ".2f") for c in cols) + " |"
        )
    lines.append(
        "| **total** | " + " | ".join(fmt(sum(s["per_window_stages_ms"][c].values()), ".1f") for c in cols) + " |"
    )
    lines += [
        "",
        f"Compute floor: {fmt(s['floor_ms_per_window'])} ms per window (FLOPs / {s['gemm_peak_gflops']:.0f} GFLOP/s, "
        f"the best fp32 GEMM rate measured here: {s.get('gemm_peak_engine', 'ort-fp32')}).",
        "",
        "Model stages, one bag (10 frames) per call:",
        "",
    ]
    lines += [
        "| precision | backbone ms/bag | GFLOP/s | x fp32 floor | fusion ms/bag | x fp32 floor | vs fp32 | top-1 agreement, end-to-end windows |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p, row in s["model_stages"].items():
        v = s["versus_fp32"].get(p, {})
        lines.append(
            f"| {p} | {fmt(row['backbone']['median_ms'])} | {fmt(row['backbone']['gflops'], '.0f')} | "
            f"{fmt(row['backbone']['ratio_to_floor'], '.2f')} | {fmt(row['fusion']['median_ms'])} | "
            f"{fmt(row['fusion']['ratio_to_floor'], '.2f')} | {fmt(v.get('model_speedup'), '.2f', 'x')} | "
            f"{fmt(v.get('agreement') * 100 if v.get('agreement') is not None else None, '.1f', ' %')} |"
        )
    lines += ["", "Throughput of batched bag scoring (bags/s; peak RSS MB):", ""]
    sizes = sorted({r["batch"] for sweep in result["throughput"].values() for r in sweep["rows"]})
    lines += ["| precision | " + " | ".join(f"batch {b}" for b in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    for p, sweep in result["throughput"].items():
        by_batch = {r["batch"]: r for r in sweep["rows"]}
        cells = [
            (
                "skipped"
                if "skipped" in by_batch.get(b, {"skipped": 1})
                else f"{by_batch[b]['bags_per_s']:.2f}; {by_batch[b]['peak_rss_mb']:.0f}"
            )
            for b in sizes
        ]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    ref = s.get("reference")
    lines += [
        "",
        f"End to end, {_bags_per_call(result['settings']['pipeline_batch'])} (model = normalise + backbone + fusion):",
        "",
        "| precision | recording | wall s | RTF | ms/window | of which model | x fp32 floor | x faster than reference (start-up included) | peak RSS MB | start-up s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    backend = result["settings"]["backend"]
    extrapolated = (ref or {}).get("extrapolated_total_s") or {}
    rows = [
        (f"{backend} {r['precision']}", r, ref["endtoend_speedup"][r["precision"]].get(str(r["recording_s"])) if ref else None)
        for r in s["endtoend"]
    ] + [
        (f"{r['variant']} (fastest agreeing)", r, _ratio(extrapolated.get(str(r["recording_s"])), r["total_s"]))
        for r in s.get("endtoend_best", [])
    ] + [
        (r["variant"], r, _ratio(extrapolated.get(str(r["recording_s"])), r["total_s"]))
        for r in s.get("endtoend_default", [])
    ]
    for label, r, speed in rows:
        lines.append(
            f"| {label} | {_length(r['recording_s'])} | {fmt(r['wall_s'])} | {fmt(r['real_time_factor'], '.3f')} | "
            f"{fmt(r['per_window_ms'], '.0f')} | {fmt(r['model_ms_per_window'], '.0f')} | {fmt(r['ratio_to_floor'], '.2f')} | {fmt(speed, '.1f', 'x')} | "
            f"{fmt(r['peak_rss_mb'], '.0f')} | {fmt(r['startup_s'], '.1f')} |"
        )
    if ref:
        lines += [
            "",
            f"Reference (PyTorch eager, per-frame processor + Swin): {fmt(ref['model_ms_per_window']['median'], '.0f')} ms "
            f"model time per window (p95 {fmt(ref['model_ms_per_window']['p95'], '.0f')}), start-up {fmt(ref['startup_s'])} s, "
            f"peak RSS {fmt(ref['peak_rss_mb'], '.0f')} MB; model-only speed-up: "
            + ", ".join(f"{p} {fmt(v, '.1f', 'x')}" for p, v in ref["model_speedup"].items())
            + (
                f"; parity with {ref['parity']['against']}: {ref['parity']['windows']} windows, max |dp| "
                f"{ref['parity']['max_probability_diff']:.1e}"
                if ref.get("parity")
                else ""
            )
            + ".",
        ]
    lines += _side_by_side_lines(result)

    peers = peer_lines(result)
    lines += ["", *(f"- {line.strip()}" if line.startswith("  ") else line for line in peers)] if peers else []
    memory = eeg_memory_line(result)
    lines += ["", memory + "."] if memory else []
    skipped = targets_not_applied_line(result)
    lines += ["", skipped] if skipped else []
    if result.get("speed_targets"):
        lines += ["", "Speed targets (reported, not enforced):", ""]
        for t in result["speed_targets"]:
            what = t.get("variant") or t.get("precision")
            if t.get("variant") and t.get("recording_s"):
                what = f"{t['variant']}, {_length(t['recording_s'])}"
            if t.get("ica_method"):
                what = f"{t['ica_method']}, {t.get('ica_n_iter')} iterations, {_length(t['recording_s'])}"
            where = f" [{what}]" if what else ""
            lines.append(_target_line(t, where))
            if t["target"] == GOAL[0]:
                lines += [f"  - {line}" for line in goal_lines(t)]
    lines += [
        "",
        "Per-precision checks of the plain ONNX Runtime/TensorRT graphs (earlier, looser targets: within 1.2x of "
        "the floor, >= 3x the reference; the speed targets above supersede them):",
        "",
    ]
    for t in result["targets"]:
        where = f" [{t['precision']}" + (f", {_length(t['recording_s'])}]" if t.get("recording_s") else "]")
        lines.append(_target_line(t, where))
    return "\n".join(lines)


def _target_line(target: dict[str, Any], where: str) -> str:
    if target.get("value") is None and target.get("applies") is not False:
        return f"- {target['target']}{where}: not measured"
    return f"- {target['target']}{where}: {format_value(target['value'], target.get('unit'))} -> {verdict(target)}"


def _side_by_side_lines(result: dict[str, Any]) -> list[str]:
    """GEMM peaks per precision and the backends/precisions side by side (empty when not measured)."""
    side = result.get("side_by_side")
    peaks = result["floor"].get("precision_peaks") or {}
    lines: list[str] = []
    if peaks:
        lines += [
            "",
            "GEMM peaks per precision (best engine): "
            + ", ".join(
                f"{p} {fmt(v['peak_gflops'], '.0f')} GFLOP/s ({v['engine']})" if v.get("peak_gflops") else f"{p} not here"
                for p, v in peaks.items()
            )
            + ".",
        ]
    if not side:
        return lines
    lines += [
        "",
        "Side by side, one bag per call on the same bags (x own floor: the backbone against its own precision's "
        "GEMM floor, fp16 against the fp32 one; top-1 and selected frames: agreement with ONNX Runtime fp32 on "
        f"these {side['rows'][0].get('n_bags', '?')} bags, where the stage table compares the end-to-end windows):",
        "",
        "| variant | backbone ms | GFLOP/s | x own floor | fusion ms | vs ort fp32 | top-1 | selected frames |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(side_by_side_cells(r)) + " |" for r in side["rows"]]
    for name, why in side.get("skipped", {}).items():
        lines.append(f"| {name} | not measured: {why} | | | | | | |")
    lines += ["", f"Fastest variant that agrees with fp32: {side.get('fastest_agreeing') or 'none'}."]
    return lines
