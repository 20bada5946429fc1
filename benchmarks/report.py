"""Derived figures of a benchmark: FLOPs, ratios to the compute floor and to the reference, int8
against fp32, the targets (met or not) and notes (``bench.md`` is :mod:`.markdown`'s).

Everything here reads the raw measurements :func:`~.command.bench_command` gathered; nothing is
measured. Figures per recording length are keyed by the length as a string ('60', '600'), so a
summary reads the same before and after a JSON round trip. Ratios are ``measured time / floor time`` (>= 1; 1 would be GEMM peak throughout) and
``reference time / our time`` (speed-ups).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .floor import fusion_flops, graph_flops, swin_flops
from .formatting import bags_per_call
from .formatting import ratio as _ratio
from .stages import PREPROCESSING_STAGES
from .summary import tiny_reason

__all__ = ["TARGETS", "REFERENCE_LABEL", "count_flops", "fp32_peak", "summarize", "notes"]

#: The CPU targets (reported, never asserted).
TARGETS = {
    "floor": ("end to end per 3 s window within 1.2x of the compute floor", 1.2),
    "reference": (">= 3x faster end to end than the official-style PyTorch reference", 3.0),
    "int8_speedup": ("int8 >= 1.8x faster than fp32 end to end", 1.8),
    "int8_agreement": ("int8 predicts the fp32 class on >= 98 % of windows", 0.98),
}
# How each target's value is compared with its threshold: the floor ratio must stay under it.
_AT_MOST = {"floor"}
#: The unit of each target's value: 'x' a ratio, 'fraction' a share printed as a percentage.
_UNITS = {"floor": "x", "reference": "x", "int8_speedup": "x", "int8_agreement": "fraction"}


def _target(name: str, value: float | None, precision: str, **context: Any) -> dict[str, Any]:
    """One row of ``targets``: :data:`TARGETS`' text and threshold, the measured value (``unit``:
    'x' or 'fraction'), met or not; ``context`` says what it was measured on (``recording_s``,
    ``windows``, ...)."""
    text, limit = TARGETS[name]
    met = value is not None and (value <= limit if name in _AT_MOST else value >= limit)
    return {"target": text, "precision": precision, **context, "value": value, "unit": _UNITS[name],
            "threshold": limit, "met": met}  # fmt: skip


# Checkpoint files read for the analytic FLOP count (training/checkpoint.py's names; importing
# that module would import torch).
_CKPT_CONFIG, _CKPT_BACKBONE = "config.json", "backbone_config.json"
REFERENCE_LABEL = "reference (PyTorch)"


def count_flops(bundle: Any, checkpoint: str | Path | None) -> dict[str, Any] | None:
    """FLOPs per frame (backbone), per bag (fusion) and per window from the fp32 graphs of
    ``bundle``'s folder (:func:`.floor.graph_flops`), cross-checked against the formulas when the
    checkpoint's configs are at hand. None when the folder has no fp32 graphs."""
    from ..runtime.model_dir import graph_filename

    spec, g = bundle.spec, bundle.spec.graph
    swin_path, fusion_path = (bundle.dir / graph_filename(stem, "fp32") for stem in ("swin", "fusion"))
    if not (swin_path.is_file() and fusion_path.is_file()):
        return None
    f, s = spec.face.frames_per_window, spec.face.frame_size
    rng = np.random.default_rng(0)
    swin = graph_flops(swin_path, {g.backbone_input: np.zeros((1, 3, s, s), np.float32)})
    tokens = rng.standard_normal((1, f, g.tokens_per_frame, g.token_dim)).astype(np.float32)
    eeg = np.zeros((1, spec.eeg.n_channels, spec.eeg.window_samples), np.float32)
    fusion = graph_flops(fusion_path, dict(zip(g.fusion_inputs, (eeg, tokens))))
    result: dict[str, Any] = {
        "method": (
            "MatMul/Gemm/Conv shapes of the fp32 ONNX graphs profiled by ONNX Runtime (optimisation "
            "off), 2 FLOPs per multiply-add; element-wise ops not counted"
        ),
        "swin_per_frame": swin["total"],
        "fusion_per_bag": fusion["total"],
        "per_window": f * swin["total"] + fusion["total"],
        "by_op": {"swin": swin["by_op"], "fusion": fusion["by_op"]},
        "analytic": None,
    }
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and (ckpt / _CKPT_CONFIG).is_file() and (ckpt / _CKPT_BACKBONE).is_file():
        from ..training.model_config import ModelConfig

        swin_a = swin_flops(json.loads((ckpt / _CKPT_BACKBONE).read_text()), s)
        fusion_a = fusion_flops(ModelConfig.load(ckpt / _CKPT_CONFIG), g.token_dim)
        result["analytic"] = {
            "swin_per_frame": swin_a,
            "fusion_per_bag": fusion_a,
            "matches_graph": swin_a == swin["total"] and fusion_a == fusion["total"],
        }
    return result


def _agreement(a: dict[str, Any], b: dict[str, Any]) -> tuple[int, int, float]:
    """(windows compared, same class, max |probability difference|) over windows both predicted."""
    rows_b = {i: k for k, i in enumerate(b["index"])}
    pairs = [(k, rows_b[i]) for k, i in enumerate(a["index"]) if i in rows_b]
    same = sum(a["class_index"][i] == b["class_index"][j] for i, j in pairs)
    diff = max(
        (float(np.max(np.abs(np.subtract(a["probabilities"][i], b["probabilities"][j])))) for i, j in pairs),
        default=float("nan"),
    )
    return len(pairs), same, diff


def _median_margin(predictions: list[dict[str, Any]]) -> float | None:
    """Median gap between the top two class probabilities over all windows of ``predictions``:
    how far a window is from flipping class (tiny for random weights)."""
    margins = [float(np.diff(np.sort(p)[-2:])[0]) for pred in predictions for p in pred["probabilities"] if len(p) > 1]
    return float(np.median(margins)) if margins else None


def fp32_peak(floor: dict[str, Any]) -> tuple[float, str]:
    """(GFLOP/s, engine) of the fp32 floor: the best fp32 GEMM rate measured by any engine
    (``floor['precision_peaks']['fp32']``); results written before that existed: ONNX Runtime's."""
    best = (floor.get("precision_peaks") or {}).get("fp32") or {}
    if best.get("peak_gflops"):
        return best["peak_gflops"], best["engine"]
    return floor["peaks"]["ort-fp32"]["peak_gflops"], "ort-fp32"


def _endtoend_row(run: dict[str, Any], floor_s: float | None) -> dict[str, Any]:
    """One end-to-end run's figures for the report: per window, model share, floor ratio, start-up, memory."""
    per_window_s = run["per_window_s"]
    return {
        "precision": run["precision"],
        "recording_s": run["recording_s"],
        "n_windows": run["n_windows"],
        "wall_s": run["wall_s"],
        "real_time_factor": run["real_time_factor"],
        "per_window_ms": per_window_s * 1e3 if per_window_s else None,
        "model_ms_per_window": (
            1e3 * sum(run["timings"][k] for k in ("normalise", "backbone", "fusion")) / run["n_windows"]
            if run["n_windows"]
            else None
        ),
        "ratio_to_floor": _ratio(per_window_s, floor_s),
        "startup_s": run["startup_s"],
        "import_s": run["import_s"],
        "session_s": run["session_s"],
        "total_s": run["startup_s"] + run["wall_s"],
        "peak_rss_mb": run["peak_rss_mb"],
    }


def summarize(
    result: dict[str, Any], predictions: dict[tuple[str, int], dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary, targets) from the raw measurements and every run's predictions."""
    f = result["model"]["frames_per_window"]
    peak_gflops, peak_engine = fp32_peak(result["floor"])
    peak = peak_gflops * 1e9  # FLOP/s
    flops = result["floor"]["flops"]
    floor_s = flops["per_window"] / peak if flops else None
    pre = result["stages"]["preprocessing"]["stages"]
    model_stages = result["stages"]["model"]
    precisions = list(model_stages)
    base = "fp32" if "fp32" in precisions else precisions[0]

    per_window: dict[str, dict[str, float]] = {}
    model_rows: dict[str, dict[str, Any]] = {}
    for p, measured in model_stages.items():
        st = measured["stages"]
        per_window[p] = {k: pre[k]["per_window_s"] * 1e3 for k in PREPROCESSING_STAGES}
        per_window[p].update({k: st[k]["per_window_s"] * 1e3 for k in ("backbone", "fusion")})
        row: dict[str, Any] = {"session_s": measured["session_s"]}
        for stage, count in (
            ("backbone", f * flops["swin_per_frame"] if flops else None),
            ("fusion", flops["fusion_per_bag"] if flops else None),
        ):
            median = st[stage]["median_s"]
            row[stage] = {
                "median_ms": median * 1e3,
                "p95_ms": st[stage]["p95_s"] * 1e3,
                "gflops": count / median / 1e9 if count else None,
                "ratio_to_floor": median / (count / peak) if count else None,
            }
        row["model_ms_per_window"] = sum(per_window[p][k] for k in ("normalise", "backbone", "fusion"))
        model_rows[p] = row

    runs = result["endtoend"]
    lengths = sorted({r["recording_s"] for r in runs})
    e2e = [_endtoend_row(r, floor_s) for r in runs]
    memory = {}
    for p in precisions:
        rows = sorted((r for r in e2e if r["precision"] == p), key=lambda r: r["recording_s"])
        if rows:
            memory[p] = {
                "recording_s": [r["recording_s"] for r in rows],
                "peak_rss_mb": [r["peak_rss_mb"] for r in rows],
                "growth_mb": rows[-1]["peak_rss_mb"] - rows[0]["peak_rss_mb"],
            }

    summary: dict[str, Any] = {
        "floor_ms_per_window": floor_s * 1e3 if floor_s else None,
        "gemm_peak_gflops": peak_gflops,
        "gemm_peak_engine": peak_engine,
        "per_window_stages_ms": per_window,
        "model_stages": model_rows,
        "endtoend": e2e,
        # The fastest agreeing variant's own runs (the speed targets'), when it is not a plain precision.
        "endtoend_best": [{"variant": r["variant"], **_endtoend_row(r, floor_s)} for r in result.get("endtoend_best", [])],
        # milmer-infer with no options (auto backend and precision), named after what auto ran.
        "endtoend_default": [
            {"variant": r["variant"], **_endtoend_row(r, floor_s)} for r in result.get("endtoend_default", [])
        ],
        "memory": memory,
        "throughput": {
            p: max((r for r in sweep["rows"] if "skipped" not in r), key=lambda r: r["bags_per_s"], default=None)
            for p, sweep in result["throughput"].items()
        },
    }

    # ------------------------------------------------------------------ versus fp32
    versus: dict[str, Any] = {}
    for p in precisions:
        if p == base:
            continue
        pooled = [0, 0]
        max_diff = 0.0
        speedups = {}
        for length in lengths:
            if (p, length) in predictions and (base, length) in predictions:
                n, same, diff = _agreement(predictions[(p, length)], predictions[(base, length)])
                pooled[0] += n
                pooled[1] += same
                max_diff = max(max_diff, diff) if not math.isnan(diff) else max_diff
            ours = next((r for r in e2e if r["precision"] == p and r["recording_s"] == length), None)
            theirs = next((r for r in e2e if r["precision"] == base and r["recording_s"] == length), None)
            if ours and theirs:
                speedups[str(length)] = _ratio(theirs["wall_s"], ours["wall_s"])
        model_speedup = _ratio(
            model_rows[base]["backbone"]["median_ms"] + model_rows[base]["fusion"]["median_ms"],
            model_rows[p]["backbone"]["median_ms"] + model_rows[p]["fusion"]["median_ms"],
        )
        versus[p] = {
            "against": base,
            "model_speedup": model_speedup,
            "endtoend_speedup": speedups,
            "windows_compared": pooled[0],
            "agreement": pooled[1] / pooled[0] if pooled[0] else None,
            "max_probability_diff": max_diff if pooled[0] else None,
            "median_top2_margin": _median_margin([predictions[(base, n)] for n in lengths if (base, n) in predictions]),
        }
    summary["versus_fp32"] = versus

    # ------------------------------------------------------------------ versus the reference
    ref = result.get("reference")
    if ref is not None:
        smp = ref["samples_s"]
        model_s = np.add(np.add(smp["processor"], smp["backbone"]), smp["fusion"])  # per timed window
        ref_model = float(np.median(model_s))
        per_window[REFERENCE_LABEL] = {
            k: pre[k]["per_window_s"] * 1e3 for k in PREPROCESSING_STAGES if k != "normalise"
        }
        per_window[REFERENCE_LABEL].update(
            {
                "hf_processor": float(np.median(smp["processor"])) * 1e3,
                "backbone": float(np.median(smp["backbone"])) * 1e3,
                "fusion": float(np.median(smp["fusion"])) * 1e3,
            }
        )
        extrapolated = {}
        for length in lengths:
            run = next((r for r in runs if r["precision"] == base and r["recording_s"] == length), None)
            if run is None:
                continue
            shared = run["timings"]["eeg_read"] + run["timings"]["eeg_preprocess"] + run["timings"]["faces"]
            extrapolated[str(length)] = ref["startup_s"] + shared + run["n_windows"] * ref_model
        parity = None
        if ("reference", ref["recording_s"]) in predictions and (base, ref["recording_s"]) in predictions:
            n, same, diff = _agreement(
                predictions[("reference", ref["recording_s"])], predictions[(base, ref["recording_s"])]
            )
            parity = {"against": base, "windows": n, "agreement": same / n if n else None, "max_probability_diff": diff}
        summary["reference"] = {
            "model_ms_per_window": {
                "median": ref_model * 1e3,
                "p95": float(np.percentile(model_s, 95)) * 1e3,
                "timed_windows": ref["timed_windows"],
            },
            "startup_s": ref["startup_s"],
            "peak_rss_mb": ref["peak_rss_mb"],
            "extrapolated_total_s": extrapolated,
            "model_speedup": {p: _ratio(ref_model * 1e3, model_rows[p]["model_ms_per_window"]) for p in precisions},
            "endtoend_speedup": {
                p: {
                    str(r["recording_s"]): _ratio(extrapolated.get(str(r["recording_s"])), r["total_s"])
                    for r in e2e
                    if r["precision"] == p
                }
                for p in precisions
            },
            "startup_speedup": {
                p: _ratio(ref["startup_s"], float(np.median([r["startup_s"] for r in e2e if r["precision"] == p])))
                for p in precisions
                if any(r["precision"] == p for r in e2e)
            },
            "parity": parity,
        }

    # ------------------------------------------------------------------ targets
    longest = lengths[-1] if lengths else None
    targets: list[dict[str, Any]] = []
    for p in precisions:
        row = next((r for r in e2e if r["precision"] == p and r["recording_s"] == longest), None)
        targets.append(_target("floor", row["ratio_to_floor"] if row else None, p, recording_s=longest))
        if "reference" in summary:
            value = summary["reference"]["endtoend_speedup"][p].get(str(longest))
            targets.append(_target("reference", value, p, recording_s=longest))
    if "int8" in versus:
        v = versus["int8"]
        targets.append(
            _target("int8_speedup", v["endtoend_speedup"].get(str(longest)), "int8", recording_s=longest,
                    model_only_speedup=v["model_speedup"])  # fmt: skip
        )
        targets.append(_target("int8_agreement", v["agreement"], "int8", windows=v["windows_compared"]))
    if (result.get("model") or {}).get("tiny"):  # speed targets are the paper-size model's
        targets = [t for t in targets if t["target"] == TARGETS["int8_agreement"][0]]
    return summary, targets


def _benchmark_model(result: dict[str, Any]) -> bool:
    """Whether the run measured a random-weight benchmark model (built by this run or an earlier one)."""
    model = result["model"]
    return bool(model.get("benchmark_model", model["built_here"]))


def notes(result: dict[str, Any], quiet: dict[str, Any], settings: Any) -> list[str]:
    """How the figures were obtained, in words, including anything that weakens them."""
    out = []
    if quiet["quiet"]:
        out.append(
            f"Machine quiet at the start (1-min load {quiet['load_1min']} < {quiet['max_load']}); load at the end "
            f"{result['load']['after']} (this run's own work included)."
        )
    else:
        out.append(
            f"Machine NOT quiet: 1-min load {quiet['load_1min']} >= {quiet['max_load']} after waiting "
            f"{quiet['waited_s']} s (other jobs were running); load at the end {result['load']['after']}. "
            "Figures are slower and noisier than on an idle machine."
        )
    if _benchmark_model(result):
        out.append(
            "The model has the paper's sizes (Swin-T backbone, d_model 768) with RANDOM weights: latency "
            "and memory depend on sizes, not weights; its predictions mean nothing, only the agreement between precisions."
            if not result["model"]["tiny"]
            else "TINY smoke-test model with RANDOM weights: figures say nothing about the real model's speed."
        )
    elif result["model"].get("tiny"):
        out.append(f"{tiny_reason(result)}: figures say nothing about the paper-size model's speed.")
    if result["floor"]["flops"]:
        out.append(
            "FLOPs: " + result["floor"]["flops"]["method"] + ". Floor time = FLOPs / the best fp32 GEMM rate "
            "measured here (square GEMMs in ONNX Runtime, OpenVINO and numpy; the engine is named with the peaks); "
            "ratio to floor = measured / floor time."
        )
    out.append(
        "Per-stage figures: median (and p95) of repeated calls after warm-up; recording-level stages "
        "(EEG read/resample/filter/ICA/windowing, video decoding) on the shortest recording, divided by its windows."
    )
    out.append(
        "End to end: one fresh process per run (cold start); wall = Pipeline.predict; start-up = imports + "
        "session creation; peak RSS = that process's own high-water mark (VmHWM); "
        f"{bags_per_call(result['settings']['pipeline_batch'])}."
    )
    resolved = result.get("default_settings") or {}
    if resolved.get("skipped"):
        out.append(f"Default settings (milmer-infer with no options) not run: {resolved['skipped']}")
    if resolved.get("check_s") is not None and result.get("endtoend_default"):
        out.append(
            f"Default settings (milmer-infer with no options: backend, device and precision auto, the runtime's own batch "
            f"and threads) ran as {result['endtoend_default'][0]['variant']} here"
            + (f' (its note: "{resolved["note"]}")' if resolved.get("note") else "")
            + f". Resolving auto took {resolved['check_s']:.1f} s once before the runs (the first-use bf16 check, "
            "cached), so each run's start-up is what every run after a user's first pays."
        )
    if result.get("reference"):
        ref = result["reference"]
        out.append(
            f"Reference: PyTorch eager, HF ViTImageProcessor (PIL backend) per frame, Swin once per frame, fusion "
            f"in PyTorch, same checkpoint; {ref['timed_windows']} windows of the {ref['recording_s']} s recording "
            f"timed after {ref['warmup_windows']} warm-up window(s). Its end-to-end time per recording is "
            "EXTRAPOLATED: its start-up + the pipeline's own EEG and face-crop time for that recording (same code) "
            "+ windows x its median model time per window."
        )
    for p, v in result["summary"]["versus_fp32"].items():
        if (
            v["agreement"] is not None
            and v["agreement"] < TARGETS["int8_agreement"][1]
            and v["median_top2_margin"] is not None
        ):
            out.append(
                f"{p} agreed with {v['against']} on {v['agreement']:.1%} of {v['windows_compared']} windows; the "
                f"{v['against']} median gap between the top two class probabilities is {v['median_top2_margin']:.2g} "
                f"and the largest {p} probability change {v['max_probability_diff']:.2g}: "
                + (
                    "with random weights most windows sit next to a class boundary, so flips say little about a trained model."
                    if _benchmark_model(result)
                    else "windows this close to a class boundary flip."
                )
            )
    skipped = [
        f"{p} batch {r['batch']}: {r['skipped']}"
        for p, s in result["throughput"].items()
        for r in s["rows"]
        if "skipped" in r
    ]
    if skipped:
        out.append("Throughput sizes skipped: " + "; ".join(skipped) + ".")
    if "fp16" in result["stages"]["model"] and result["settings"]["device"] == "cpu":
        out.append("fp16 on CPU: ONNX Runtime has no fast fp16 kernels on x86; the fp16 graphs are meant for GPUs.")
    if result["settings"]["device"] != "cpu":
        out.append(
            "GPU run: ratios to the floor use this machine's CPU GEMM peak and are not meaningful; compare with trtexec."
        )
    return out

