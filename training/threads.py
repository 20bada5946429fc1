"""How many CPU threads torch uses in training, the demo and the PyTorch reference: on purpose.

torch's default is one OpenMP thread per core. Its threads meet at the end of every parallel
region, so when another process holds one of the cores each region waits for the preempted
thread: on a 2-core machine with one busy process beside it a demo fold took 74-78 s with two
threads and 4.5 s with one.

The rule (:func:`choose_threads`):

- ``OMP_NUM_THREADS`` when it is set: OpenMP's standard knob, the user's explicit choice;
- else one thread per core that is free now: the cores this process may use
  (``os.sched_getaffinity``) minus the other processes that are running, at least 1. "Running"
  is the median over a few samples of the kernel's count of runnable tasks
  (``/proc/loadavg``'s fourth field, less this process), an instantaneous figure, unlike the
  load average, which also counts this process's own recent work.

:func:`set_torch_threads` applies the choice and returns it; its :meth:`ThreadChoice.note` is
the line the callers print.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ThreadChoice", "usable_cores", "running_elsewhere", "choose_threads", "set_torch_threads"]


@dataclass(frozen=True)
class ThreadChoice:
    """threads: what torch gets; cores: usable cores; busy: other running tasks seen (None when
    not measured); source: 'OMP_NUM_THREADS' or 'free cores'."""

    threads: int
    cores: int
    busy: float | None
    source: str

    def __post_init__(self) -> None:
        assert self.threads >= 1 and self.cores >= 1, self

    def note(self) -> str:
        """``torch threads: 1 of 2 cores (2 other tasks running; OMP_NUM_THREADS=N to choose)``."""
        if self.source == "OMP_NUM_THREADS":
            return f"torch threads: {self.threads} of {self.cores} cores (OMP_NUM_THREADS)"
        busy = "" if self.busy is None else f"{self.busy:g} other task(s) running; "
        return f"torch threads: {self.threads} of {self.cores} cores ({busy}OMP_NUM_THREADS=N to choose)"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def running_elsewhere(samples: int = 5, interval_s: float = 0.04, loadavg: Path = Path("/proc/loadavg")) -> float | None:
    """Median runnable tasks other than the reader over ``samples`` reads of ``/proc/loadavg``
    (``None`` where it does not exist, e.g. macOS)."""
    counts = []
    for i in range(samples):
        try:
            running = int(loadavg.read_text().split()[3].split("/")[0])
        except (OSError, IndexError, ValueError):
            return None
        counts.append(max(0, running - 1))  # the reader itself is running
        if i + 1 < samples:
            time.sleep(interval_s)
    return float(statistics.median(counts))


def choose_threads(
    *,
    cores: int | None = None,
    busy: Callable[[], float | None] = running_elsewhere,
    environ: dict[str, str] | None = None,
) -> ThreadChoice:
    """The thread count of the module docstring's rule (``cores``/``busy``/``environ``: for tests)."""
    env = os.environ if environ is None else environ
    n_cores = cores or usable_cores()
    given = env.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) >= 1:
        return ThreadChoice(int(given), n_cores, None, "OMP_NUM_THREADS")
    others = busy()
    free = n_cores if others is None else n_cores - int(round(others))
    return ThreadChoice(max(1, min(n_cores, free)), n_cores, others, "free cores")


def set_torch_threads(log: Callable[[str], None] | None = None) -> ThreadChoice:
    """Choose (:func:`choose_threads`), apply with ``torch.set_num_threads`` and say it via ``log``."""
    import torch

    choice = choose_threads()
    torch.set_num_threads(choice.threads)
    if log is not None:
        log(choice.note())
    return choice
