"""What machine a benchmark ran on, and whether it was quiet enough to measure.

:func:`machine_info` records the CPU model, cores, memory, flags that matter for GEMM speed and
the versions of every library on the inference path. :func:`wait_until_quiet` polls the 1-minute
load average: other jobs on the machine inflate every figure, so the full benchmark waits for a
quiet window (and says so in ``bench.json`` when it had to run without one).
"""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = [
    "ProgressLog",
    "LIBRARIES",
    "cpu_model",
    "cpu_short_name",
    "load_average",
    "machine_info",
    "peak_rss_mb",
    "current_rss_mb",
    "own_peak_rss_mb",
    "reset_peak_rss",
    "wait_until_quiet",
]

#: Distributions whose versions go into bench.json (absent ones are recorded as None).
LIBRARIES: tuple[str, ...] = (
    "milmer",
    "numpy",
    "onnxruntime",
    "onnxruntime-gpu",
    "openvino",
    "onnx",
    "torch",
    "transformers",
    "opencv-python-headless",
    "opencv-contrib-python",
    "mne",
    "scikit-learn",
    "tensorrt",
)
#: CPU flags that decide which GEMM kernels run (AVX-512 VNNI speeds up int8).
_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni")
_NOISE = re.compile(r"\((r|tm)\)|\b(processor|cpu|with|radeon|graphics)\b|@.*$|\d+-core", re.IGNORECASE)


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty off Linux)."""
    path = Path("/proc/cpuinfo")
    if not path.is_file():
        return {}
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_model() -> str:
    """The CPU's marketing name, e.g. 'AMD EPYC 9R14 96-Core Processor'."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine() or "unknown"


def cpu_short_name(model: str | None = None) -> str:
    """A file-name-safe short CPU name: 'AMD EPYC 9R14 96-Core Processor' -> 'amd-epyc-9r14'."""
    name = _NOISE.sub(" ", model if model is not None else cpu_model())
    words = re.findall(r"[a-z0-9]+", name.lower())
    return "-".join(words) or "unknown-cpu"


def _mem_total_gb() -> float | None:
    path = Path("/proc/meminfo")
    if not path.is_file():
        return None
    match = re.search(r"^MemTotal:\s+(\d+) kB", path.read_text(), re.MULTILINE)
    return round(int(match.group(1)) / 2**20, 2) if match else None


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def peak_rss_mb(ru_maxrss: int) -> float:
    """``ru_maxrss`` (KiB on Linux, bytes on macOS) in MiB."""
    scale = 1.0 if sys.platform == "darwin" else 1024.0
    return round(ru_maxrss * scale / 2**20, 1)


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, GEMM-relevant flags, OS, Python and library versions."""
    flags = set(_cpuinfo().get("flags", "").split())
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "cpu_short_name": cpu_short_name(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gb": _mem_total_gb(),
        "cpu_flags": [f for f in _FLAGS if f in flags],
        "os": platform.platform(),
        "python": platform.python_version(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "thread_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
    }


def wait_until_quiet(max_load: float, timeout_s: float, *, poll_s: float = 30.0, log: Any = None) -> dict[str, Any]:
    """Poll the 1-minute load average until it is below ``max_load`` or ``timeout_s`` passes.

    Returns ``{'quiet': bool, 'waited_s': float, 'load_1min': float | None, 'max_load': float}``;
    ``log`` (a callable taking a message) hears about each wait.
    """
    started = time.monotonic()
    load = load_average()
    while load is not None and load >= max_load and time.monotonic() - started < timeout_s:
        if log is not None:
            log(f"load average {load} >= {max_load}: waiting for a quiet machine")
        time.sleep(min(poll_s, max(0.0, timeout_s - (time.monotonic() - started))))
        load = load_average()
    return {
        "quiet": load is None or load < max_load,
        "waited_s": round(time.monotonic() - started, 1),
        "load_1min": load,
        "max_load": max_load,
    }


def _proc_status_mb(field: str) -> float | None:
    """A kB field of /proc/self/status in MiB (None where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def current_rss_mb() -> float | None:
    """This process's resident memory now (MiB)."""
    return _proc_status_mb("VmRSS")


def own_peak_rss_mb() -> float:
    """This process's peak resident memory (MiB): /proc's VmHWM, else ``ru_maxrss``.

    VmHWM first because on Linux a child's ``ru_maxrss`` starts at its parent's peak (``exec``
    keeps it), so a benchmark's worker processes would all report the benchmark's own peak.
    """
    import resource

    peak = _proc_status_mb("VmHWM")
    return peak if peak is not None else peak_rss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def reset_peak_rss() -> bool:
    """Lower this process's peak (VmHWM) to its current RSS, so the next peak belongs to what runs
    next (Linux >= 4.0: write '5' to /proc/self/clear_refs). False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class ProgressLog:
    """Progress lines on stderr with the time since the run started; each line's 1-minute load
    average is kept (``phases``), so a busy spell in the middle of a run shows in bench.json."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.perf_counter()
        self.phases: list[dict[str, Any]] = []

    def __call__(self, message: str) -> None:
        elapsed = time.perf_counter() - self.started
        self.phases.append({"t_s": round(elapsed, 1), "load_1min": load_average(), "phase": message})
        if self.enabled:
            print(f"[bench {elapsed:6.0f} s] {message}", file=sys.stderr, flush=True)
