"""The timing harness every benchmark uses: warm-up calls, then median and p95 over repeats.

A measurement is a list of wall-clock samples (``time.perf_counter``); its summary holds the
median, the 95th percentile (numpy's default linear interpolation between order statistics),
min, max, mean and the sample count. Nothing here asserts a target: benchmarks report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..runtime.check import check_int, check_nonempty

__all__ = ["TimingConfig", "Timing", "summarize", "time_call"]


def _check_count(name: str, value: int, minimum: int) -> int:
    return check_int(name, value, low=minimum)


@dataclass(frozen=True)
class TimingConfig:
    """How often to call a timed function: ``warmup`` untimed calls, then ``repeats`` timed ones."""

    warmup: int = 2
    repeats: int = 10

    def __post_init__(self) -> None:
        _check_count("warmup", self.warmup, 0)
        _check_count("repeats", self.repeats, 1)


def summarize(samples_s: Sequence[float]) -> dict[str, float | int]:
    """median, p95, min, max, mean (seconds) and n of ``samples_s``.

    p95 is ``numpy.percentile(samples, 95)`` (linear interpolation): for 1..20 s it is 19.05 s.
    """
    check_nonempty("samples_s", samples_s, "sample")
    x = np.asarray(samples_s, dtype=np.float64)
    return {
        "median_s": float(np.median(x)),
        "p95_s": float(np.percentile(x, 95)),
        "min_s": float(x.min()),
        "max_s": float(x.max()),
        "mean_s": float(x.mean()),
        "n": int(x.size),
    }


@dataclass(frozen=True)
class Timing:
    """Timed samples of one operation (seconds per call) and what one call processes.

    per: the unit of one call ('frame', 'bag', 'window', 'recording', ...)
    """

    samples_s: tuple[float, ...]
    per: str

    @property
    def median_s(self) -> float:
        return float(np.median(self.samples_s))

    @property
    def p95_s(self) -> float:
        return float(np.percentile(self.samples_s, 95))

    def to_dict(self) -> dict[str, Any]:
        return {"per": self.per, **summarize(self.samples_s)}


def time_call(fn: Callable[[], object], config: TimingConfig, *, per: str) -> Timing:
    """Call ``fn`` ``config.warmup`` times untimed, then ``config.repeats`` times timed."""
    for _ in range(config.warmup):
        fn()
    samples = []
    for _ in range(config.repeats):
        tick = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - tick)
    return Timing(tuple(samples), per)
