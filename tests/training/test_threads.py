"""torch's thread count is chosen on purpose: OMP_NUM_THREADS, else one per free core."""

from __future__ import annotations

from pathlib import Path

import pytest

from milmer.training import threads
from milmer.training.threads import ThreadChoice, choose_threads, running_elsewhere


@pytest.mark.parametrize(
    "cores, busy, expected",
    [(2, 0.0, 2), (2, 1.0, 1), (2, 7.0, 1), (16, 3.0, 13), (4, None, 4), (2, 0.4, 2), (2, 0.6, 1)],
)
def test_one_thread_per_free_core(cores, busy, expected):
    choice = choose_threads(cores=cores, busy=lambda: busy, environ={})
    assert choice == ThreadChoice(expected, cores, busy, "free cores")


def test_omp_num_threads_wins_and_the_note_says_why():
    choice = choose_threads(cores=2, busy=lambda: 5.0, environ={"OMP_NUM_THREADS": "2"})
    assert (choice.threads, choice.source) == (2, "OMP_NUM_THREADS")
    assert choice.note() == "torch threads: 2 of 2 cores (OMP_NUM_THREADS)"
    auto = choose_threads(cores=2, busy=lambda: 1.0, environ={"OMP_NUM_THREADS": "x"})
    assert auto.note() == "torch threads: 1 of 2 cores (1 other task(s) running; OMP_NUM_THREADS=N to choose)"


def test_running_elsewhere_reads_the_runnable_count(tmp_path: Path):
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("8.06 7.85 5.72 3/177 23625\n")
    assert running_elsewhere(samples=3, interval_s=0.0, loadavg=loadavg) == 2.0
    assert running_elsewhere(loadavg=tmp_path / "missing") is None


def test_set_torch_threads_applies_the_choice(monkeypatch):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    lines: list[str] = []
    try:
        assert threads.set_torch_threads(log=lines.append).threads == 1
        assert torch.get_num_threads() == 1 and lines == ["torch threads: 1 of " + str(threads.usable_cores()) + " cores (OMP_NUM_THREADS)"]
    finally:
        torch.set_num_threads(before)
