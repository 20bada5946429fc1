"""The time model: stream clocks, segments, alignment, fitting to timestamps."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from milmer.runtime.timebase import SOURCES, Alignment, AlignmentNote, Fact, Segment, StreamClock, fit_clock


def test_assumed_alignment_is_identity_offset_zero():
    a = Alignment.assumed(256.0, 30.0)
    t = np.array([0.0, 1.5, 60.0])
    np.testing.assert_array_equal(a.eeg_to_video(t), t)
    assert a.offset_s == 0.0 and a.offset_source == "assumed"
    assert a.eeg.rate.source == "assumed" and a.is_affine


def test_offset_and_drift_map_eeg_to_video():
    # The video started 2 s after the EEG; the amplifier runs 1 % slow (253.44 Hz under a 256 Hz header):
    # EEG local 100 s (25600 samples) is really 101.0101 s after its start.
    eeg = StreamClock("eeg", 256.0, rate=Fact(253.44, "option", "--eeg-rate"))
    video = StreamClock("video", 30.0, start=Fact(2.0, "header", "creation_time"))
    a = Alignment(eeg, video)
    assert a.offset_s == pytest.approx(-2.0)
    assert a.offset_source == "header"
    assert float(a.eeg_to_video(100.0)) == pytest.approx(100 * 256 / 253.44 - 2.0)
    assert eeg.drift_ppm == pytest.approx(-10000.0)
    np.testing.assert_allclose(a.video_to_eeg(a.eeg_to_video(np.arange(5.0))), np.arange(5.0))
    assert "-1.000 % off its nominal 256 Hz" in a.summary()


def test_segments_place_a_pause_at_its_true_time():
    # 10 s recorded, paused 5 s, 10 s more: local time counts samples only (20 s), common time has the pause.
    eeg = StreamClock("eeg", 100.0, segments=(Segment(10.0, 15.0, 10.0, "header", "New Segment"),))
    np.testing.assert_allclose(eeg.to_common([0.0, 9.99, 10.0, 19.0]), [0.0, 9.99, 15.0, 24.0])
    back = eeg.to_local([5.0, 12.0, 16.0])
    assert back[0] == 5.0 and math.isnan(back[1]) and back[2] == pytest.approx(11.0)
    assert eeg.pauses() == [(10.0, 10.0)]
    np.testing.assert_allclose(eeg.sample_times([0, 1000, 1500]), [0.0, 15.0, 20.0])


def test_json_round_trip():
    eeg = StreamClock("eeg", 256.0, start=Fact(0.0, "header", "EDF start"), rate=Fact(255.0, "clock", "XDF"),
                      segments=(Segment(60.0, 70.0, 30.0, "header"),))
    a = Alignment(eeg, StreamClock("video", 29.97, start=Fact(-1.25, "option", "--offset")), "xdf",
                  (AlignmentNote("durations-differ", "warning", "differ", "--eeg-rate"),))
    d = json.loads(json.dumps(a.to_dict()))
    assert Alignment.from_dict(d) == a
    assert d["offset_source"] == "option" and d["eeg"]["segments"][0]["start_s"] == 70.0
    assert a.warnings() == ["differ"]


def test_bad_facts_are_refused():
    with pytest.raises(ValueError, match="'source': expected one of 'option', 'clock'"):
        Fact(1.0, "guess")
    with pytest.raises(ValueError, match="'nominal_rate'"):
        StreamClock("eeg", 0.0)
    with pytest.raises(ValueError, match="'segments'"):
        StreamClock("eeg", 10.0, segments=(Segment(5.0, 5.0), Segment(4.0, 9.0)))


def test_fit_clock_recovers_rate_start_and_pause():
    rng = np.random.default_rng(0)
    true_rate, nominal = 498.0, 500.0
    idx = np.arange(5000)
    ts = 1000.0 + idx / true_rate
    ts[2500:] += 3.0  # a 3 s pause after 2500 samples
    jitter = rng.normal(0, 2e-4, ts.size)
    clock = fit_clock("EEG", ts + jitter, nominal, detail="XDF clock")
    assert clock.true_rate == pytest.approx(true_rate, rel=1e-5)
    assert clock.start.value == pytest.approx(1000.0, abs=1e-4)
    assert len(clock.segments) == 1
    assert clock.segments[0].start_s == pytest.approx(1000.0 + 2500 / true_rate + 3.0, abs=1e-4)
    np.testing.assert_allclose(clock.sample_times(idx), ts, atol=1e-4)
    with pytest.raises(ValueError, match="'timestamps': expected non-decreasing values"):
        fit_clock("x", np.array([1.0, 0.5]), 10.0)


def test_the_docs_name_the_sources_the_code_writes():
    """docs/synchronisation.md lists every fact's source: the same names, in the same order."""
    doc = (Path(__file__).parents[2] / "docs" / "synchronisation.md").read_text()
    listed = doc.split("carries its **source**:")[1].split("(no evidence).")[0]
    assert re.findall(r"`([a-z]+)`", listed) == list(SOURCES)
