"""What a benchmark run is told: :class:`BenchSettings` (validated once) and its full and quick defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..runtime.backends.base import PRECISIONS
from ..runtime.backends.registry import BACKENDS, DEVICES
from ..runtime.check import check_int, check_nonempty, check_number, check_option
from .timing import TimingConfig

__all__ = ["BenchSettings", "FULL_BATCH_SIZES", "QUICK_BATCH_SIZES", "FULL_LENGTHS_S", "QUICK_LENGTHS_S", "DEMO_FPS", "DEMO_SEED"]

FULL_BATCH_SIZES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
QUICK_BATCH_SIZES: tuple[int, ...] = (1, 2, 4)
FULL_LENGTHS_S: tuple[int, ...] = (60, 600)
QUICK_LENGTHS_S: tuple[int, ...] = (12, 24)
#: The demo recordings' video frame rate and seed.
DEMO_FPS, DEMO_SEED = 25.0, 0


@dataclass(frozen=True)
class BenchSettings:
    """Everything a benchmark run is told; ``None`` fields were left to :meth:`defaults`.

    precisions:          the model's graphs to measure (default: all present in the model folder)
    batch_sizes:         bags per call for the throughput sweep
    lengths_s:           demo recording lengths (whole seconds) for the end-to-end runs
    warmup, repeats:     untimed / timed calls of each millisecond-scale stage
    recording_repeats:   timed calls of each recording-scale stage (EEG steps, decoding), after
                         one warm-up call
    reference_windows:   windows the PyTorch reference scores (after one warm-up window)
    pipeline_batch:      bags per call in the end-to-end runs (``Pipeline(batch=...)``); ``None``:
                         the pipeline's default for the device, as ``milmer-infer`` uses (the batch
                         actually used is written into the results' settings)
    throughput_precisions: precisions swept for throughput (default: all but fp16, which has no
                         fast kernels on CPU)
    max_call_s, throughput_budget_s, max_rss_mb: throughput caps (see :mod:`.throughput`;
                         ``max_rss_mb`` None: half the memory available at the start)
    peak_sizes:          square GEMM sizes for the machine's peak
    max_load, wait_quiet_s: wait up to ``wait_quiet_s`` for a 1-minute load average below
                         ``max_load`` before measuring (0: do not wait; the load is recorded)
    static_int8:         build static int8 (QDQ) graphs next to the model (``<out>/model-int8-static``)
                         and measure them side by side with the others
    """

    backend: str = "ort"
    device: str = "cpu"
    precisions: tuple[str, ...] | None = None
    batch_sizes: tuple[int, ...] = FULL_BATCH_SIZES
    lengths_s: tuple[int, ...] = FULL_LENGTHS_S
    warmup: int = 2
    repeats: int = 10
    recording_repeats: int = 3
    reference_windows: int = 8
    pipeline_batch: int | None = None
    threads: int | None = None
    throughput_precisions: tuple[str, ...] | None = None
    max_call_s: float = 30.0
    throughput_budget_s: float = 10.0
    max_rss_mb: float | None = None
    peak_sizes: tuple[int, ...] = (512, 1024, 2048)
    max_load: float = 0.7
    wait_quiet_s: float = 0.0
    static_int8: bool = True
    peer_compile_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        check_option("backend", self.backend, ("auto", *BACKENDS))
        check_option("device", self.device, DEVICES)
        for name in ("precisions", "throughput_precisions"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))
                check_nonempty(name, value, "precision")
                for p in value:
                    check_option(name, p, PRECISIONS)
        for name in ("batch_sizes", "lengths_s", "peak_sizes"):
            values = tuple(getattr(self, name))
            object.__setattr__(self, name, values)
            check_nonempty(name, values, "value")
            for v in values:
                check_int(name, v, low=1)
        check_int("warmup", self.warmup, low=0)
        for name in ("repeats", "recording_repeats", "reference_windows"):
            check_int(name, getattr(self, name), low=1)
        for name in ("pipeline_batch", "threads"):
            check_int(name, getattr(self, name), low=1, allow_none=True)
        for name in ("max_call_s", "throughput_budget_s", "max_load", "peer_compile_timeout_s"):
            check_number(name, getattr(self, name), low=0, low_open=True)
        check_number("max_rss_mb", self.max_rss_mb, low=0, low_open=True, allow_none=True)
        check_number("wait_quiet_s", self.wait_quiet_s, low=0)

    @classmethod
    def defaults(cls, *, quick: bool, **given: Any) -> BenchSettings:
        """Settings for a full run, or with ``quick`` a run of a minute or two; ``given`` values
        that are not None win."""
        base: dict[str, Any] = {}
        if quick:
            base = {
                "batch_sizes": QUICK_BATCH_SIZES,
                "lengths_s": QUICK_LENGTHS_S,
                "warmup": 1,
                "repeats": 3,
                "recording_repeats": 1,
                "reference_windows": 2,
                "throughput_budget_s": 3.0,
                "peak_sizes": (256, 512),
                "peer_compile_timeout_s": 240.0,
            }
        base.update({k: v for k, v in given.items() if v is not None})
        return cls(**base)

    def timing(self) -> TimingConfig:
        return TimingConfig(self.warmup, self.repeats)

    def recording_timing(self) -> TimingConfig:
        return TimingConfig(min(self.warmup, 1), self.recording_repeats)
