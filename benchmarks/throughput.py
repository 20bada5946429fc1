"""Throughput of batched bag scoring (:meth:`Pipeline.score_bags`) against the batch size.

One call scores B bags: normalisation of the B*F crops, one backbone call on all B*F frames, one
fusion call on the B bags. Each batch size is timed after a warm-up call (which also lets ONNX
Runtime grow its memory arena to the new size). Large batches cost seconds per call and gigabytes
of activations, so a batch size is skipped, with the reason recorded, when the call time or the
peak memory projected from the largest batch measured so far exceeds ``max_call_s`` or
``max_rss_mb``, or when the backend refuses it (a TensorRT engine's profile ends below it);
``budget_s`` caps the repeats of each size (at least one timed call).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import Any

from ..runtime.check import MilmerInputError, check_int, check_sequence
from .machine import current_rss_mb, own_peak_rss_mb, reset_peak_rss
from .stages import random_bags
from .timing import Timing, TimingConfig

__all__ = ["measure_throughput", "check_batch_sizes"]


def check_batch_sizes(batch_sizes: Sequence[int]) -> tuple[int, ...]:
    """Sorted unique batch sizes, each an integer >= 1."""
    sizes = tuple(batch_sizes)
    check_sequence("batch_sizes", sizes, nonempty=True, item=lambda name, b: check_int(name, b, low=1))
    return tuple(sorted(set(sizes)))


def measure_throughput(
    model_dir: str | os.PathLike[str],
    precision: str,
    batch_sizes: Sequence[int],
    timing: TimingConfig,
    *,
    backend: str = "ort",
    device: str = "cpu",
    threads: int | None = None,
    max_call_s: float = 30.0,
    max_rss_mb: float | None = None,
    budget_s: float = 30.0,
) -> dict[str, Any]:
    """Bags per second of :meth:`Pipeline.score_bags` for each batch size (module docstring).

    Returns ``{'precision', 'settings', 'base_rss_mb', 'rows': [{'batch', 'median_s', 'p95_s', ...,
    'bags_per_s', 'frames_per_s', 'ms_per_bag', 'peak_rss_mb'} | {'batch', 'skipped'}]}``;
    ``base_rss_mb`` is the resident memory with the sessions loaded, ``peak_rss_mb`` the process's
    peak while that batch size ran (the peak is reset before each size where Linux allows it,
    else it is the peak so far).
    """
    from ..runtime.pipeline import Pipeline

    sizes = check_batch_sizes(batch_sizes)
    rows: list[dict[str, Any]] = []
    with Pipeline(
        model_dir, backend=backend, device=device, precision=precision, batch=max(sizes), intra_op_threads=threads  # type: ignore[arg-type]
    ) as pipe:
        f = pipe.spec.face.frames_per_window
        reset_peak_rss()
        base_rss = current_rss_mb() or own_peak_rss_mb()
        per_bag_s: float | None = None  # seconds per bag of the largest batch measured
        per_bag_mb: float | None = None  # peak-RSS growth per bag of the largest batch measured
        for batch in sizes:
            if per_bag_s is not None and per_bag_s * batch > max_call_s:
                rows.append(
                    {
                        "batch": batch,
                        "skipped": f"projected {per_bag_s * batch:.1f} s per call > max_call_s {max_call_s:g}",
                    }
                )
                continue
            if max_rss_mb is not None and per_bag_mb is not None and base_rss + per_bag_mb * batch > max_rss_mb:
                projected = base_rss + per_bag_mb * batch
                rows.append(
                    {"batch": batch, "skipped": f"projected peak RSS {projected:.0f} MB > max_rss_mb {max_rss_mb:.0f}"}
                )
                continue
            crops, eeg = random_bags(pipe.spec, batch, seed=batch)
            reset_peak_rss()
            try:
                for _ in range(max(1, timing.warmup)):  # a new size needs its arena grown first
                    tick = time.perf_counter()
                    pipe.score_bags(eeg, crops)
                    first = time.perf_counter() - tick
            except MilmerInputError as err:  # e.g. beyond a TensorRT engine's optimisation profile
                rows.append({"batch": batch, "skipped": str(err)})
                continue
            repeats = max(1, min(timing.repeats, math.floor(budget_s / max(first, 1e-9))))
            samples = []
            for _ in range(repeats):
                tick = time.perf_counter()
                pipe.score_bags(eeg, crops)
                samples.append(time.perf_counter() - tick)
            measured = Timing(tuple(samples), "call").to_dict()
            rss = own_peak_rss_mb()
            per_bag_s = measured["median_s"] / batch
            per_bag_mb = max(rss - base_rss, 0.0) / batch
            rows.append(
                {
                    "batch": batch,
                    **measured,
                    "bags_per_s": batch / measured["median_s"],
                    "frames_per_s": batch * f / measured["median_s"],
                    "ms_per_bag": 1e3 * measured["median_s"] / batch,
                    "peak_rss_mb": rss,
                }
            )
            del crops, eeg
        return {"precision": precision, "settings": pipe.settings, "base_rss_mb": base_rss, "rows": rows}
