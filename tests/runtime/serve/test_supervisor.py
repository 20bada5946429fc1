"""The supervisor's decisions without a server: restart with a doubling backoff after crashes, a
stop during the backoff, an unclean drain reported (``milmer serve`` exiting 1 for it:
tests/app/test_serve.py)."""

from __future__ import annotations

import threading

import pytest

import milmer.runtime.serve.supervisor as supervisor
from milmer.runtime.serve.binding import Gate
from milmer.runtime.serve.supervisor import StopReport, StopSignals, Supervisor, describe_exit


class FakeTriton:
    """Alive for ``polls`` checks, then dead with ``code`` (None: alive until stopped)."""

    def __init__(self, polls: int | None, code: int = -11) -> None:
        self.polls, self.stopped = polls, False

        class Cmd:
            exit_code = code

            def is_alive(cmd) -> bool:
                return not self.stopped and (self.polls is None or self.polls > 0)

        self._triton_server = type("S", (), {"_tritonserver_running_cmd": Cmd(), "logs": lambda s: ""})()

    def is_alive(self) -> bool:
        if self.polls is not None:
            self.polls -= 1
            return self.polls > 0
        return not self.stopped

    def stop(self) -> None:
        self.stopped = True
        if self.polls is None:  # stopped while serving: a clean exit
            self._triton_server._tritonserver_running_cmd.exit_code = 0


class FakeLeftovers:
    def __init__(self, ended: list[str] | None = None) -> None:
        self.ended, self.cleaned = ended or [], 0

    def clean(self) -> list[str]:
        self.cleaned += 1
        ended, self.ended = self.ended, []
        return ended


def test_crashes_are_restarted_with_a_doubling_backoff(monkeypatch):
    monkeypatch.setattr(supervisor, "_POLL_S", 0.001)
    waits: list[float] = []
    signals = StopSignals()
    real_wait = signals.stop.wait

    def wait(timeout: float) -> bool:
        if timeout > 0.01:
            waits.append(timeout)
            return len(waits) >= 4  # the stop comes during the fourth backoff
        return real_wait(0)

    monkeypatch.setattr(signals.stop, "wait", wait)
    runs, lines = [], []

    def start_run(run: int):
        runs.append(run)
        return FakeTriton(polls=3), Gate(), FakeLeftovers(["pid 7: triton_python_backend_stub"] if run == 0 else None)

    report = Supervisor(signals, drain_timeout_s=1.0, log=lines.append).run(start_run, on_ready=lambda: lines.append("ready"))
    assert runs == [0, 1, 2, 3]
    assert waits == [1.0, 2.0, 4.0, 8.0]
    assert report.restarts == 3 and len(report.outages_s) == 3
    assert lines[0] == "ready"
    assert lines[1].startswith(
        "Warning: tritonserver stopped unexpectedly (killed by SIGSEGV) after serving 0 s; "
        "ended its orphaned processes (pid 7: triton_python_backend_stub); restarting it in 1 s"
    )
    assert lines[2].startswith("Serving again after restart 1: the server was unavailable for ")


def test_an_undrained_stop_is_not_clean():
    signals = StopSignals()
    signals.stop.set()
    gate = Gate()
    assert gate.enter()  # a batch that never finishes
    leftovers = FakeLeftovers(["pid 9: triton_python_backend_stub"])
    report = Supervisor(signals, drain_timeout_s=0.05, log=lambda line: None).run(
        lambda run: (FakeTriton(polls=None), gate, leftovers), on_ready=lambda: None
    )
    assert not report.clean
    assert report.problems[0] == "requests were still in progress after 0.05 s"
    assert report.problems[-1] == "processes outlived tritonserver and were ended: pid 9: triton_python_backend_stub"
    assert not gate.enter() and gate.refused == 1  # closed: new batches are refused


def test_gate_waits_for_running_batches():
    gate = Gate()
    assert gate.enter()
    threading.Timer(0.1, gate.leave).start()
    assert gate.close(timeout_s=10)


@pytest.mark.parametrize(("code", "text"), [(-11, "killed by SIGSEGV"), (1, "exit code 1"), (None, "exit status unknown")])
def test_describe_exit(code, text):
    assert describe_exit(code) == text
