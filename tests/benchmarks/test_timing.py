"""The timing harness: medians, p95 and call counts."""

from __future__ import annotations

import pytest

from milmer.benchmarks.timing import Timing, TimingConfig, summarize, time_call
from milmer.runtime.check import MilmerInputError


def test_summary_of_one_to_twenty_seconds():
    s = summarize([float(x) for x in range(20, 0, -1)])  # order must not matter
    assert s == {"median_s": 10.5, "p95_s": pytest.approx(19.05), "min_s": 1.0, "max_s": 20.0, "mean_s": 10.5, "n": 20}


def test_p95_interpolates_between_order_statistics():
    # 5 samples: p95 lies 80 % of the way from the 4th to the 5th smallest.
    assert summarize([0.1, 0.2, 0.3, 0.4, 1.4])["p95_s"] == pytest.approx(0.4 + 0.8 * 1.0)
    assert Timing((3.0, 1.0, 2.0), "bag").median_s == 2.0


def test_time_call_runs_warmup_untimed_then_repeats():
    calls = []
    timing = time_call(lambda: calls.append(1), TimingConfig(warmup=3, repeats=4), per="frame")
    assert len(calls) == 7
    assert len(timing.samples_s) == 4 and all(t >= 0 for t in timing.samples_s)
    assert timing.to_dict()["per"] == "frame" and timing.to_dict()["n"] == 4


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"repeats": 0}, "'repeats'.*>= 1, got 0"), ({"warmup": -1}, "'warmup'.*>= 0, got -1")]
)
def test_timing_config_rejects_bad_counts(kwargs, message):
    with pytest.raises(MilmerInputError, match=message):
        TimingConfig(**kwargs)


def test_summary_needs_samples():
    with pytest.raises(MilmerInputError, match="at least one sample"):
        summarize([])
