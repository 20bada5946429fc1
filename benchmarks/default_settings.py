"""The default settings -- what ``milmer-infer VIDEO EEG`` runs with no options -- end to end, and
their goal: at most 0.6x the fp32 floor per window, start-up included, on the 60 s recording, on
a CPU with native bfloat16 (``avx512_bf16`` or ``amx_bf16``).

There is no second reading here of what 'auto' means: the runs give the runtime backend, device
and precision 'auto' (:class:`~milmer.runtime.pipeline.Pipeline` resolves them with
:func:`~milmer.runtime.precision.choose_precision` and the backend registry, as ``milmer-infer``
does) and are named after what the runners report they ran (``settings``: backend, device,
compute precision), e.g. 'default (openvino bf16)'. The batch and thread counts are the
runtime's own defaults too.

When the goal is missed, :func:`default_target` says by how much (measured ms against the goal's
ms) and why, from the run's own figures: the compute precision's GEMM peak against the fp32 peak
(``R``), so the backbone's floor at that precision alone is ``B`` fp32 floors; the time outside
the backbone (start-up share, EEG, faces, normalise, fusion) is ``O`` ms = ``P`` fp32 floors; the
best this CPU could reach with the rest unchanged is ``B + P``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_OPTIONS", "GOAL", "GOAL_RECORDING_S", "BF16_FLAGS", "default_label", "resolve_default",
    "measure_default_runs", "default_target", "goal_lines",
]  # fmt: skip

#: What ``milmer-infer`` is given when the user gives no option.
DEFAULT_OPTIONS: dict[str, str] = {"backend": "auto", "device": "auto", "precision": "auto"}
#: (text, at most this many fp32 floors per window).
GOAL: tuple[str, float] = (
    "end to end per window at the default settings, start-up included, <= 0.6x the fp32 floor "
    "(on a CPU with native bf16)",
    0.6,
)
#: The recording the goal is judged on (the longest one run when there is no 60 s run).
GOAL_RECORDING_S = 60
#: CPU flags of native bfloat16 arithmetic (as the runtime's OpenVINO backend reads them).
BF16_FLAGS: tuple[str, ...] = ("avx512_bf16", "amx_bf16")
#: Stages outside the backbone, per window, in the pipeline's order (``RunStats.timings``).
_OUTSIDE = ("eeg_read", "eeg_preprocess", "faces", "normalise", "fusion")


def default_label(settings: dict[str, Any]) -> str:
    """'default (openvino bf16)' from a run's pipeline ``settings`` (' on cuda' off the CPU)."""
    device = settings["device"]["swin"]
    compute = settings.get("compute_precision", settings["precision"])
    return f"default ({settings['backend']['swin']} {compute}{'' if device == 'cpu' else ' on ' + device})"


def resolve_default(model: Path) -> dict[str, Any]:
    """The runtime's own resolution of precision 'auto' for ``model``, timed. Run once before the
    default runs: it fills the first-use bf16 check's cache, so each run measures what every run
    after a user's first pays (the check's cost is kept here, ``check_s``)."""
    from dataclasses import asdict

    from ..runtime.precision import choose_precision

    tick = time.perf_counter()
    plan = choose_precision(model, "auto", backend="auto", device="auto")
    return {
        "options": dict(DEFAULT_OPTIONS),
        "compute": plan.compute,
        "note": plan.note,
        "agreement": None if plan.agreement is None else asdict(plan.agreement),
        "check_s": time.perf_counter() - tick,
    }


def measure_default_runs(
    model: Path, recordings: dict[int, dict[str, Path]], out: Path, log: Any
) -> tuple[list[dict[str, Any]], dict[tuple[str, int], dict[str, Any]]]:
    """One cold end-to-end run per recording at the default settings, each in its own process
    (:func:`~.endtoend.endtoend_subprocess`). Returns (runs, predictions keyed ('default', length))."""
    from .endtoend import endtoend_subprocess

    runs, predictions = [], {}
    for length in sorted(recordings):
        log(f"end to end, {length} s recording, default settings (auto backend and precision; own process)")
        run = endtoend_subprocess(
            model, recordings[length]["video"], recordings[length]["eeg"], out / "endtoend" / f"default-{length}s.json",
            precision=DEFAULT_OPTIONS["precision"], backend=DEFAULT_OPTIONS["backend"],
            device=DEFAULT_OPTIONS["device"], batch=None, threads=None,
        )  # fmt: skip
        predictions[("default", length)] = run.pop("predictions")
        runs.append({"variant": default_label(run["settings"]), "recording_s": length, **run})
    return runs, predictions


def _goal_run(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The 60 s run, else the longest."""
    if not runs:
        return None
    return next((r for r in runs if r["recording_s"] == GOAL_RECORDING_S), max(runs, key=lambda r: r["recording_s"]))


def _not_applicable(machine: dict[str, Any], run: dict[str, Any]) -> str | None:
    """Why the goal does not apply to this run (``None``: it applies)."""
    if not set(machine.get("cpu_flags", [])) & set(BF16_FLAGS):
        return f"this CPU has no native bf16 (neither {' nor '.join(BF16_FLAGS)})"
    if run["settings"]["device"]["swin"] != "cpu":
        return f"the default runs on {run['settings']['device']['swin']} here, not on the CPU"
    return None


def default_target(result: dict[str, Any], floor_ms: float | None) -> dict[str, Any] | None:
    """The goal's row for bench.json's ``speed_targets`` (``None`` without default runs).

    ``floor_ms``: the fp32 floor per window (FLOPs / the best fp32 GEMM peak). Fields: ``value``
    (fp32 floors per window, start-up included), ``met`` (``None`` where the goal does not
    apply: ``applies`` False, ``not_applicable`` says why), ``per_window_ms``, ``goal_ms``,
    ``floor_ms``, ``over_goal`` (measured / goal), and ``why`` (see the module docstring).
    """
    run = _goal_run(result.get("endtoend_default") or [])
    if run is None:
        return None
    text, limit = GOAL
    n = run["n_windows"]
    per_window_ms = (run["startup_s"] + run["wall_s"]) / n * 1e3 if n else None
    value = per_window_ms / floor_ms if per_window_ms and floor_ms else None
    reason = _not_applicable(result.get("machine") or {}, run)
    row: dict[str, Any] = {
        "target": text, "variant": run["variant"], "recording_s": run["recording_s"], "value": value, "unit": "x",
        "threshold": limit, "applies": reason is None, "not_applicable": reason,
        "met": None if reason is not None or value is None else value <= limit,
        "per_window_ms": per_window_ms, "floor_ms": floor_ms, "goal_ms": limit * floor_ms if floor_ms else None,
        "over_goal": value / limit if value is not None else None,
        "why": _why(result, run, per_window_ms, floor_ms) if per_window_ms and floor_ms else None,
    }  # fmt: skip
    return row


def _why(result: dict[str, Any], run: dict[str, Any], per_window_ms: float, floor_ms: float) -> dict[str, Any]:
    """Where the default's time per window goes, in fp32 floors (module docstring)."""
    n = run["n_windows"]
    compute = run["settings"].get("compute_precision", run["settings"]["precision"])
    peaks = result["floor"].get("precision_peaks") or {}
    fp32_peak = (peaks.get("fp32") or {}).get("peak_gflops")
    own_peak = (peaks.get(compute) or {}).get("peak_gflops")
    peak_ratio = own_peak / fp32_peak if own_peak and fp32_peak else None
    flops = result["floor"]["flops"]
    backbone_share = (flops["per_window"] - flops["fusion_per_bag"]) / flops["per_window"]  # of the fp32 floor
    backbone_ms = run["timings"]["backbone"] / n * 1e3
    outside_ms = per_window_ms - backbone_ms
    parts = {"startup": run["startup_s"] / n * 1e3, **{k: run["timings"].get(k, 0.0) / n * 1e3 for k in _OUTSIDE}}
    parts["other"] = outside_ms - sum(parts.values())  # what the pipeline's stages do not time
    floor_x = backbone_share / peak_ratio if peak_ratio else None
    flags = result.get("machine", {}).get("cpu_flags", [])
    resolved = result.get("default_settings") or {}
    return {
        "compute_precision": compute,
        "peak_gflops": own_peak, "peak_engine": (peaks.get(compute) or {}).get("engine"),
        "fp32_peak_gflops": fp32_peak, "fp32_peak_engine": (peaks.get("fp32") or {}).get("engine"),
        "peak_ratio": peak_ratio, "cpu_bf16_flags": [f for f in BF16_FLAGS if f in flags], "amx": "amx_bf16" in flags,
        "bf16_agreement": resolved.get("agreement"),  # the check 'auto' used (None: it checked none)
        "backbone_floor_x": floor_x, "backbone_ms": backbone_ms, "backbone_x": backbone_ms / floor_ms,
        "outside_ms": outside_ms, "outside_x": outside_ms / floor_ms, "outside_parts_ms": parts,
        "best_reachable_x": floor_x + outside_ms / floor_ms if floor_x is not None else None,
    }  # fmt: skip


def goal_lines(row: dict[str, Any]) -> list[str]:
    """One or two lines for bench.md and the summary screen: met, not applicable, or by how much
    it is missed and why."""
    if row.get("applies") is False:
        return [f"not applicable: {row['not_applicable']}"]
    if row.get("value") is None:
        return []
    ms, goal, floor = row["per_window_ms"], row["goal_ms"], row["floor_ms"]
    if row["met"]:
        return [f"met: {ms:.0f} ms per window ({row['value']:.2f}x the fp32 floor) against the goal's {goal:.0f} ms"]
    first = (
        f"missed by {ms - goal:.0f} ms per window: {ms:.0f} ms measured against the goal's {goal:.0f} ms "
        f"({row['threshold']:g} x the {floor:.0f} ms fp32 floor), {row['over_goal']:.2f}x the goal ({row['value']:.2f}x the floor)"
    )
    w = row.get("why")
    if not w:
        return [first]
    p = w["compute_precision"]
    measured = f"(measured: {w['backbone_ms']:.0f} ms = {w['backbone_x']:.2f}x)"
    if w["peak_ratio"] is None:
        peak = f"no {p} GEMM peak was measured here, so the {p} backbone floor is unknown {measured}"
    elif p == "fp32":
        peak = (
            f"the default computes in fp32 here ({_why_fp32(w.get('bf16_agreement'))}), so its backbone floor alone "
            f"is {w['backbone_floor_x']:.2f}x the fp32 floor {measured}"
        )
    else:
        flags = ", ".join(w["cpu_bf16_flags"]) or "no bf16 flags"
        peak = (
            f"the {p} GEMM peak here is {w['peak_ratio']:.2f}x the fp32 peak ({flags}, {'AMX' if w['amx'] else 'no AMX'}), "
            f"so the {p} backbone floor alone is {w['backbone_floor_x']:.2f}x the fp32 floor {measured}"
        )
    parts = w["outside_parts_ms"]
    split = ", ".join(
        f"{name} {parts[key]:.0f}"
        for key, name in (("startup", "start-up"), ("eeg_read", "EEG read"), ("eeg_preprocess", "EEG"),
                          ("faces", "faces"), ("normalise", "normalise"), ("fusion", "fusion"), ("other", "other"))
    )  # fmt: skip
    best = ""
    if w["best_reachable_x"] is not None:
        best = f"; best reachable here {w['best_reachable_x']:.2f}x"
        if w["best_reachable_x"] > row["threshold"]:
            best += f", above the goal's {row['threshold']:g}x: out of reach on this CPU whatever is cut outside the backbone"
    return [
        first,
        f"why: {peak}; outside the backbone {w['outside_ms']:.0f} ms = {w['outside_x']:.2f}x ({split} ms){best}",
    ]


def _why_fp32(agreement: dict[str, Any] | None) -> str:
    """Why 'auto' kept fp32 on a bf16 CPU: bf16 disagreed with fp32 (its figures), or 'auto' did
    not pick OpenVINO on the CPU (no check ran)."""
    if agreement is None:
        return "auto did not pick OpenVINO on the CPU, so no bf16 check ran"
    from ..runtime.precision import AGREEMENT_GATE

    return (
        f"bf16 disagreed with fp32 on this model: top-1 {agreement['top1']:.0%}, selected frames "
        f"{agreement['selected']:.0%} on {agreement['n_bags']} check bags, needs {AGREEMENT_GATE[0]:.0%}/{AGREEMENT_GATE[1]:.0%}"
    )
