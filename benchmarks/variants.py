"""Backends and precisions side by side: the same bags through every variant this machine runs.

A *variant* is a backend (ONNX Runtime, OpenVINO) with a graph precision (fp32, fp16, dynamic or
static int8) and, for OpenVINO, an inference precision (fp32, bf16 where the CPU has it). Each is
timed in this one process, one after the other, so a busy machine slows them alike and their
ratios stay comparable even when absolute times do not. For each variant:

- ``backbone_s`` (one bag of F frames per call) and ``fusion_s`` (one bag), medians;
- ``gflops`` and ``x_floor``: the backbone's FLOP rate and its time over its own precision's
  floor (FLOPs / that precision's measured GEMM peak, :func:`.floor.precision_peaks`);
- agreement with ONNX Runtime fp32 on the same demo bags (real face crops of the astronaut
  photo, synthetic EEG): top-1 class and selected frames, and max |d probability|.

:func:`fastest_agreeing` picks the fastest variant that agrees on >= 98 % of top-1 and >= 95 % of
the selected frames (:data:`AGREEMENT_GATE`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.model_dir import graph_filename
from ..runtime.spec import ModelSpec
from .timing import TimingConfig, time_call

__all__ = [
    "BenchVariant", "AGREEMENT_GATE", "list_variants", "measure_variants", "fastest_agreeing", "static_int8_dir",
    "best_side_by_side",
]  # fmt: skip

#: (top-1, selected frames) agreement with fp32 a variant needs to count as "agreeing".
AGREEMENT_GATE: tuple[float, float] = (0.98, 0.95)


@dataclass(frozen=True)
class BenchVariant:
    """name: e.g. 'openvino int8-static'; model_dir: the folder its graphs are in; precision: the
    graph precision; compute: the precision its products run in (the floor it is held to)."""

    name: str
    backend: str
    model_dir: str
    precision: str
    compute: str
    options: dict[str, Any] = field(default_factory=dict)


def list_variants(
    model_dir: str | os.PathLike[str],
    precisions: tuple[str, ...],
    *,
    static_dir: str | os.PathLike[str] | None = None,
    threads: int | None = None,
) -> tuple[list[BenchVariant], dict[str, str]]:
    """The variants this machine can run (and, by name, why the others cannot)."""
    from ..runtime.backends.openvino import OpenVinoRunner

    model_dir = Path(model_dir)
    ort_opts = {"intra_op_num_threads": threads} if threads else {}
    ov_opts: dict[str, Any] = {"num_threads": threads} if threads else {}
    ov_reason = OpenVinoRunner.unavailable_reason(model_dir / "swin.onnx", device="cpu", precision="fp32")
    bf16_reason = OpenVinoRunner.unavailable_reason(
        model_dir / "swin.onnx", device="cpu", precision="fp32", inference_precision="bf16"
    )
    dynamic = "int8" in precisions
    candidates: list[tuple[BenchVariant, str | None]] = []
    for p in precisions:
        label = "int8-dynamic" if p == "int8" else p
        candidates.append((BenchVariant(f"ort {label}", "ort", str(model_dir), p, "int8" if p == "int8" else "fp32", ort_opts), None))
    if "fp32" in precisions:
        candidates.append((BenchVariant("openvino fp32", "openvino", str(model_dir), "fp32", "fp32", ov_opts), ov_reason))
        candidates.append(
            (
                BenchVariant("openvino bf16", "openvino", str(model_dir), "fp32", "bf16", {**ov_opts, "inference_precision": "bf16"}),
                ov_reason or bf16_reason,
            )
        )
    if dynamic:
        candidates.append((BenchVariant("openvino int8-dynamic", "openvino", str(model_dir), "int8", "int8", ov_opts), ov_reason))
    if static_dir is not None:
        candidates.append((BenchVariant("ort int8-static", "ort", str(static_dir), "int8", "int8", ort_opts), None))
        candidates.append((BenchVariant("openvino int8-static", "openvino", str(static_dir), "int8", "int8", ov_opts), ov_reason))
    runnable = [v for v, reason in candidates if reason is None]
    skipped = {v.name: reason for v, reason in candidates if reason is not None}
    return runnable, skipped


def _runner(variant: BenchVariant, stem: str) -> Any:
    from ..runtime.backends.registry import make_runner

    path = Path(variant.model_dir) / graph_filename(stem, variant.precision)
    return make_runner(
        variant.backend, path, device="cpu", precision=variant.precision,  # type: ignore[arg-type]
        options={variant.backend: variant.options},
    )  # fmt: skip


def _run_bags(swin: Any, fusion: Any, spec: ModelSpec, eeg: np.ndarray, frames: np.ndarray) -> dict[str, np.ndarray]:
    """frames (B, F, 3, S, S), eeg (B, C, T) -> the fusion outputs, one bag per call."""
    g = spec.graph
    outs: list[dict[str, np.ndarray]] = []
    for b in range(len(frames)):
        tokens = swin.infer({g.backbone_input: np.ascontiguousarray(frames[b])})[g.backbone_output]
        tokens = tokens.reshape(1, frames.shape[1], *tokens.shape[1:])  # (1, F, P, D)
        outs.append(fusion.infer(dict(zip(g.fusion_inputs, (eeg[b : b + 1], tokens)))))
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def measure_variants(
    variants: list[BenchVariant],
    spec: ModelSpec,
    timing: TimingConfig,
    *,
    flops: dict[str, Any] | None,
    peaks: dict[str, dict[str, Any]],
    n_bags: int = 8,
    log: Any = None,
) -> list[dict[str, Any]]:
    """Time and compare every variant (module docstring); the first must be ONNX Runtime fp32,
    the reference. ``flops``: :func:`.report.count_flops`; ``peaks``: :func:`.floor.precision_peaks`."""
    from ..export.inputs import synthetic_demo_inputs

    assert variants and variants[0].backend == "ort" and variants[0].precision == "fp32", variants[:1]
    g = spec.graph
    _, probs_name, _, selected_name = g.fusion_outputs
    bags = synthetic_demo_inputs(spec, n_bags, seed=7)
    frames = np.ascontiguousarray(bags.frames[0])  # (F, 3, S, S): the timed bag
    reference: dict[str, np.ndarray] | None = None
    rows = []
    for variant in variants:
        if log is not None:
            log(f"side by side: {variant.name}")
        with _runner(variant, "swin") as swin, _runner(variant, "fusion") as fusion:
            out = _run_bags(swin, fusion, spec, bags.eeg, bags.frames)
            tokens = swin.infer({g.backbone_input: frames})[g.backbone_output].reshape(1, len(frames), *_tail(g))
            feed = dict(zip(g.fusion_inputs, (bags.eeg[:1], tokens)))
            backbone = time_call(lambda: swin.infer({g.backbone_input: frames}), timing, per="bag")
            head = time_call(lambda: fusion.infer(feed), timing, per="bag")
        if reference is None:
            reference = out
        row: dict[str, Any] = {
            **asdict(variant),
            "backbone_s": backbone.median_s,
            "backbone_p95_s": backbone.p95_s,
            "fusion_s": head.median_s,
            "model_s": backbone.median_s + head.median_s,
            "top1_agreement": float(np.mean(out[probs_name].argmax(1) == reference[probs_name].argmax(1))),
            "selected_agreement": float(np.mean((out[selected_name] == reference[selected_name]).all(1))),
            "max_abs_probabilities": float(np.abs(out[probs_name] - reference[probs_name]).max()),
            "n_bags": n_bags,
        }
        row["options"] = {k: v for k, v in row["options"].items() if isinstance(v, (str, int, float))}
        peak = peaks.get(variant.compute, {}).get("peak_gflops")
        if flops is not None:
            backbone_flops = flops["swin_per_frame"] * len(frames)
            row["gflops"] = backbone_flops / backbone.median_s / 1e9
            row["peak_gflops"] = peak
            row["x_floor"] = backbone.median_s / (backbone_flops / (peak * 1e9)) if peak else None
        rows.append(row)
    fp32_s = rows[0]["model_s"]
    for row in rows:
        row["speedup_vs_ort_fp32"] = fp32_s / row["model_s"]
        row["agrees"] = row["top1_agreement"] >= AGREEMENT_GATE[0] and row["selected_agreement"] >= AGREEMENT_GATE[1]
    return rows


def _tail(g: Any) -> tuple[int, int]:
    return g.tokens_per_frame, g.token_dim


def fastest_agreeing(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The row with the smallest ``model_s`` among those that pass :data:`AGREEMENT_GATE`."""
    agreeing = [r for r in rows if r.get("agrees")]
    return min(agreeing, key=lambda r: r["model_s"]) if agreeing else None


def static_int8_dir(model: Path, spec: Any, target: Path) -> Path:
    """``target`` with links to the fp32 graphs and spec of ``model`` plus static int8 graphs
    (:func:`milmer.export.variants.make_int8_static`); reused when already there."""
    from ..export.variants import make_int8_static
    from ..runtime.model_dir import SPEC_FILE, graph_filename

    target.mkdir(parents=True, exist_ok=True)
    for name in (SPEC_FILE, graph_filename("swin", "fp32"), graph_filename("fusion", "fp32")):
        link = target / name
        if not link.exists():
            link.symlink_to(model / name)
    if not all((target / graph_filename(stem, "int8")).is_file() for stem in ("swin", "fusion")):
        make_int8_static(model, spec, out_dir=target)
    return target


def best_side_by_side(result: dict[str, Any]) -> dict[str, Any] | None:
    """The fastest agreeing side-by-side row, unless it is a plain ONNX Runtime precision (whose
    end-to-end runs the loop above already made)."""
    side = result.get("side_by_side")
    if not side or not side.get("fastest_agreeing"):
        return None
    row = next(r for r in side["rows"] if r["name"] == side["fastest_agreeing"])
    if row["backend"] == result["settings"]["backend"] and row["model_dir"] == str(result["model"]["dir"]):
        return None
    return row
