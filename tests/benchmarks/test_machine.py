"""Machine description and the quiet-machine wait."""

from __future__ import annotations

import pytest

from milmer.benchmarks import machine


@pytest.mark.parametrize(
    ("model", "short"),
    [
        ("AMD EPYC 9R14 96-Core Processor", "amd-epyc-9r14"),
        ("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "intel-xeon-platinum-8375c"),
        ("AMD Ryzen 7 7840U w/ Radeon  780M Graphics", "amd-ryzen-7-7840u-w-780m"),
        ("ARMv8 Processor rev 1 (v8l)", "armv8-rev-1-v8l"),
        ("", "unknown-cpu"),
    ],
)
def test_cpu_short_name(model, short):
    assert machine.cpu_short_name(model) == short


def test_machine_info_lists_libraries_and_cores():
    info = machine.machine_info()
    assert info["usable_cores"] >= 1 and info["logical_cores"] >= info["usable_cores"]
    assert info["libraries"]["numpy"] is not None and "onnxruntime" in info["libraries"]
    assert info["cpu_short_name"] == machine.cpu_short_name(info["cpu_model"])


def test_peak_rss_is_kib_on_linux(monkeypatch):
    monkeypatch.setattr(machine.sys, "platform", "linux")
    assert machine.peak_rss_mb(2048) == 2.0
    monkeypatch.setattr(machine.sys, "platform", "darwin")
    assert machine.peak_rss_mb(3 * 2**20) == 3.0


def test_wait_until_quiet_polls_until_the_load_drops(monkeypatch):
    loads = iter([2.0, 1.5, 0.4])
    monkeypatch.setattr(machine, "load_average", lambda: next(loads))
    monkeypatch.setattr(machine.time, "sleep", lambda s: None)
    heard = []
    result = machine.wait_until_quiet(0.7, 60.0, poll_s=1.0, log=heard.append)
    assert result["quiet"] is True and result["load_1min"] == 0.4 and len(heard) == 2


def test_wait_until_quiet_gives_up_after_the_timeout(monkeypatch):
    monkeypatch.setattr(machine, "load_average", lambda: 3.0)
    result = machine.wait_until_quiet(0.7, 0.0)
    assert result == {"quiet": False, "waited_s": 0.0, "load_1min": 3.0, "max_load": 0.7}


@pytest.mark.skipif(not machine.sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_reset_peak_rss_forgets_an_earlier_peak():
    import numpy as np

    ballast = np.ones(200 * 2**20 // 8)
    del ballast
    assert machine.own_peak_rss_mb() > machine.current_rss_mb() + 150
    if machine.reset_peak_rss():
        assert machine.own_peak_rss_mb() < machine.current_rss_mb() + 50
