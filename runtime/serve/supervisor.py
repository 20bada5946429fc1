"""Keep ``tritonserver`` serving and stop it cleanly: restart after a crash, drain on SIGTERM.

The model is loaded once in this process; ``tritonserver`` is a child that PyTriton starts from a
workspace. One malformed request can crash it (PyTriton 0.7 bundles a Triton whose JSON parser
recurses: ~240 KB of ``[`` overflows its stack), so a crash of a server that was serving is
followed by a restart, with a backoff of 1 s doubling to 30 s (back to 1 s after a minute of
serving), each announced on stderr with its cause and, once serving again, the outage. A server
that never became ready is not restarted: that is a setup error.

Stop (SIGINT or SIGTERM, :class:`StopSignals`): the model stops taking new batches (each
refused request gets an error naming the shutdown), the batches in progress finish, waiting at
most ``drain_timeout_s``, then tritonserver is stopped, its surviving processes are ended and its
workspace and shared memory removed (:class:`~.hygiene.Leftovers`). The
:class:`StopReport` says whether all of that went as planned.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StopReport", "StopSignals", "Supervisor", "BACKOFF_S"]

#: First and largest wait before a restart (s); the wait doubles per crash and resets after
#: STABLE_S of serving.
BACKOFF_S = (1.0, 30.0)
STABLE_S = 60.0
_POLL_S = 0.1


@dataclass
class StopReport:
    """How the server ended.

    clean:     drained within the bound, tritonserver exited 0, nothing had to be killed
    drain_s:   seconds from the stop signal until no batch was in progress
    stop_s:    seconds from the stop signal until everything was gone
    refused:   requests refused while draining
    restarts:  tritonserver restarts after crashes
    outages_s: seconds without a ready server after each crash
    problems:  why the stop was not clean, one line each
    """

    clean: bool = True
    drain_s: float = 0.0
    stop_s: float = 0.0
    refused: int = 0
    restarts: int = 0
    outages_s: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class StopSignals:
    """SIGINT/SIGTERM handling for the server's whole life.

    Before :meth:`serving` both raise KeyboardInterrupt, so a start-up interrupted anywhere unwinds
    through the cleanup of every ``with``/``finally``; afterwards they only set :attr:`stop`, which
    the supervisor turns into a drain.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._serving = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self._serving:
            self.stop.set()
            return
        raise KeyboardInterrupt(signal.Signals(signum).name)

    def serving(self, on: bool = True) -> None:
        self._serving = on

    def __enter__(self) -> StopSignals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _exit_code(triton: Any) -> int | None:
    """tritonserver's exit status (negative: killed by that signal), None while it runs or unknown.
    PyTriton keeps the process in ``_triton_server._tritonserver_running_cmd`` (an ``sh`` command)."""
    cmd = getattr(getattr(triton, "_triton_server", None), "_tritonserver_running_cmd", None)
    if cmd is None:
        return None
    try:
        return None if cmd.is_alive() else cmd.exit_code
    except Exception:  # noqa: BLE001 - sh raises for a failed command; the code is what we want
        return getattr(cmd, "exit_code", None)


def _last_in_flight(triton: Any) -> int | None:
    """In-flight inferences in tritonserver's last shutdown count-down line, None if it logged none."""
    import re

    logs = getattr(getattr(triton, "_triton_server", None), "logs", lambda: "")()
    found = re.findall(r"Found (\d+) model versions that have in-flight inferences", logs or "")
    return int(found[-1]) if found else None


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """Runs ``start_run(run) -> (triton, gate, leftovers)`` until a stop signal, restarting crashes.

    start_run must return once the run's models are ready; the supervisor owns stopping it.
    """

    def __init__(self, signals: StopSignals, *, drain_timeout_s: float, log: Callable[[str], None]) -> None:
        self.signals = signals
        self.drain_timeout_s = drain_timeout_s
        self.log = log
        self.report = StopReport()

    def run(self, start_run: Callable[[int], tuple[Any, Any, Any]], on_ready: Callable[[], None]) -> StopReport:
        backoff = BACKOFF_S[0]
        crashed_at: float | None = None
        run = 0
        while True:
            triton, gate, leftovers = start_run(run)
            try:
                if crashed_at is None:
                    on_ready()
                else:
                    outage = time.monotonic() - crashed_at
                    self.report.outages_s.append(outage)
                    self.log(f"Serving again after restart {run}: the server was unavailable for {outage:.1f} s.")
                self.signals.serving(True)
                served_from = time.monotonic()
                while not self.signals.stop.wait(_POLL_S) and triton.is_alive():
                    pass
                if self.signals.stop.is_set():
                    self._drain_and_stop(triton, gate, leftovers)
                    return self.report
                crashed_at = time.monotonic()
                self.signals.serving(False)
                served_s = crashed_at - served_from
                cause = describe_exit(_exit_code(triton))
            finally:
                triton.stop()
                ended = leftovers.clean()
            if served_s >= STABLE_S:
                backoff = BACKOFF_S[0]
            extra = f"; ended its orphaned processes ({', '.join(ended)})" if ended else ""
            self.log(
                f"Warning: tritonserver stopped unexpectedly ({cause}) after serving {served_s:.0f} s{extra}; "
                f"restarting it in {backoff:.0f} s (the model stays loaded)."
            )
            self.signals.serving(True)
            if self.signals.stop.wait(backoff):
                return self.report
            self.signals.serving(False)
            backoff = min(backoff * 2, BACKOFF_S[1])
            run += 1
            self.report.restarts = run

    def _drain_and_stop(self, triton: Any, gate: Any, leftovers: Any) -> None:
        report = self.report
        tick = time.monotonic()
        self.log(f"Stopping: finishing the requests in progress (at most {self.drain_timeout_s:g} s), refusing new ones.")
        drained = gate.close(self.drain_timeout_s)
        report.drain_s = time.monotonic() - tick
        if not drained:
            report.problems.append(f"requests were still in progress after {self.drain_timeout_s:g} s")
        triton.stop()
        code = _exit_code(triton)
        in_flight = _last_in_flight(triton)
        # Triton exits 1 when clients still hold open (idle) connections at its exit timeout; that
        # is clean as long as no inference was in flight.
        if code is None or code < 0 or (code != 0 and in_flight != 0):
            report.problems.append(f"tritonserver did not exit cleanly ({describe_exit(code)}, in-flight inferences: {in_flight})")
        ended = leftovers.clean()
        if ended:
            report.problems.append(f"processes outlived tritonserver and were ended: {', '.join(ended)}")
        report.refused = gate.refused
        report.stop_s = time.monotonic() - tick
        report.clean = not report.problems
