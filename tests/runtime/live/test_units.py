"""Live building blocks on generated data: buffers, the calibrated EEG path against offline, units,
config checks, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.live.buffers import EEGBuffer, FrameBuffer
from milmer.runtime.live.engine import LiveConfig, scale_to_volts


def test_eeg_buffer_keeps_the_last_seconds_and_finds_gaps():
    buf = EEGBuffer(2, 100.0, keep_s=1.0)  # 101 samples kept
    stamps = 10.0 + np.arange(250) / 100.0
    stamps[150:] += 0.5  # 50 samples' worth lost after sample 149
    data = np.stack([np.arange(250), -np.arange(250)], axis=1).astype(float)  # (n, C)
    for a in range(0, 250, 32):
        buf.append(data[a : a + 32], stamps[a : a + 32])
    assert buf.n_total == 250 and buf.first_kept == 149
    assert buf.read(100, 10) is None  # fell out of the buffer
    sl = buf.read(149, 5)
    np.testing.assert_array_equal(sl.data[0], [149, 150, 151, 152, 153])
    np.testing.assert_array_equal(buf.gaps_between(sl), [1])
    assert buf.index_at(11.995) == 150  # the first sample stamped at/after the time (12.0 after the gap)
    assert buf.index_at(99.0) is None
    assert buf.last_stamp() == pytest.approx(stamps[-1]) and buf.oldest_stamp() == pytest.approx(stamps[149])


def test_frame_buffer_gives_the_nearest_frame_and_forgets_old_ones():
    fb = FrameBuffer(keep_s=1.0)
    for k in range(40):
        fb.append(np.full((2, 2, 3), k, np.uint8), 5.0 + k / 16)  # exact binary times
    assert fb.first_stamp == 5.0 and fb.interval_s() == 1 / 16
    frames, stamps = fb.nearest(np.array([6.5, 6.55, 6.53125, 1.0]))
    assert [int(f[0, 0, 0]) for f in frames] == [24, 25, 24, 23]  # a tie (6.53125) -> the earlier frame
    np.testing.assert_array_equal(stamps, [6.5, 6.5625, 6.5, 6.4375])  # frames before 6.4375 forgotten
    assert fb.oldest_stamp() == 6.4375 and fb.last_stamp() == 5.0 + 39 / 16


def _eeg(seconds: float, sfreq: float = 256.0, seed: int = 0):
    """32 spec channels + a blinking EOG channel (volts), non-Gaussian sources, 50 Hz mains."""
    from milmer.runtime.spec import DEAP_CHANNELS

    rng = np.random.default_rng(seed)
    n = int(seconds * sfreq)
    t = np.arange(n) / sfreq
    sources = rng.uniform(-1, 1, (32, n))
    blinks = np.zeros(n)
    for c in rng.uniform(0.5, seconds - 0.5, int(seconds / 2)):
        blinks += np.exp(-(((t - c) / 0.08) ** 2))
    mix = rng.standard_normal((32, 32)) @ sources + np.outer(np.linspace(8, 0, 32), blinks)
    eeg = 20e-6 * mix / mix.std(axis=1, keepdims=True) + 5e-6 * np.sin(2 * np.pi * 50 * t)
    return np.vstack([eeg, 100e-6 * blinks]), list(DEAP_CHANNELS) + ["EOG"], ["eeg"] * 32 + ["eog"], sfreq


def test_live_windows_equal_offline_when_calibration_and_lookahead_cover_it():
    """The same preprocess_raw: with ICA calibrated on the whole recording, 5 s of context and 2 s of
    lookahead the live window is the offline one within 0.01 uV (the FFT resampler's wrap-around
    still sees the buffer's ends); ICA's map is recovered exactly."""
    from milmer.runtime.eeg.preprocess import array_to_raw, preprocess_raw
    from milmer.runtime.live.eeg import LiveEEG
    from milmer.runtime.spec import ModelSpec

    data, names, types, sfreq = _eeg(15.0)
    spec = ModelSpec().eeg
    offline = preprocess_raw(array_to_raw(data, names, sfreq, ch_types=types), spec)
    live = LiveEEG(spec, names, types, sfreq)
    ica = live.calibrate(data)
    assert ica.info["ica_excluded"] == offline.info["ica_excluded"] != []
    assert ica.residual_uv < 1e-4
    n = live.window_n
    for k in (2, 3):
        w, flags = live.window(data[:, k * n - 1280 : (k + 1) * n + 512], 1280)
        np.testing.assert_allclose(w, offline.data[k], atol=0.01)  # uV, on a ~20 uV signal
        assert flags == ()
    # Without lookahead the window's end sits at the filter's edge: a visible difference there.
    w, _ = live.window(data[:, 2 * n - 1280 : 3 * n], 1280)
    edge = np.abs(w - offline.data[2])
    assert edge[:, -64:].max() > 10 * edge[:, :128].max()


def test_calibration_needs_a_window_of_eeg():
    from milmer.runtime.live.eeg import LiveEEG
    from milmer.runtime.spec import ModelSpec

    data, names, types, sfreq = _eeg(2.0)
    with pytest.raises(MilmerInputError, match=r"^Invalid value for '--calibration': expected at least the samples of one window \(3 s\) = \d+, got \d+; 2\.00 s of EEG came; ICA is fitted on at least one window\.$"):
        LiveEEG(ModelSpec().eeg, names, types, sfreq).calibrate(data)


@pytest.mark.parametrize(("units", "factor"), [(["microvolts"] * 3, 1e-6), (["", "", ""], 1e-6), (["V", "volts", "v"], 1.0), (["mV"] * 3, 1e-3)])
def test_stream_units(units, factor):
    assert scale_to_volts(units) == factor


def test_mixed_or_unknown_units_are_refused():
    with pytest.raises(MilmerInputError, match=r"channel units \['furlongs', 'microvolts'\] are not one of"):
        scale_to_volts(["microvolts", "furlongs"])
    with pytest.raises(MilmerInputError, match="are not one of"):
        scale_to_volts(["microvolts", "V"])


def test_config_is_checked():
    with pytest.raises(MilmerInputError, match="hop_s"):
        LiveConfig(hop_s=0)
    with pytest.raises(MilmerInputError, match="lookahead_s"):
        LiveConfig(lookahead_s=-1)


def test_live_modules_import_no_heavy_library():
    mods = ["session", "engine", "eeg", "faces", "lsl", "video", "record", "output", "buffers"]
    code = "import sys, json\n" + "".join(f"import milmer.runtime.live.{m}\n" for m in mods) + "print(json.dumps(sorted(sys.modules)))"
    loaded = {m.split(".")[0] for m in json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)}
    heavy = {"torch", "mne", "cv2", "onnxruntime", "sklearn", "pylsl", "av"}
    assert not heavy & loaded, heavy & loaded


def _engine_run(tiny_model, config, clock, stop_after_s=None):
    """A LiveEngine on 12 s of generated EEG (stamps 100 + i / 256) and 12.5 s of face-less frames,
    all already in the buffers; ``clock(engine)`` is the LSL clock. Returns the decisions and counts."""
    from milmer.runtime.face.detect import make_detector
    from milmer.runtime.live.buffers import EEGBuffer, FrameBuffer
    from milmer.runtime.live.eeg import LiveEEG
    from milmer.runtime.live.engine import LiveEngine
    from milmer.runtime.live.faces import LiveFaces
    from milmer.runtime.scoring import BagScorer

    data, names, types, sfreq = _eeg(12.0)
    eeg = EEGBuffer(len(names), sfreq, keep_s=30.0)
    eeg.append(data.T * 1e6, 100.0 + np.arange(data.shape[1]) / sfreq)  # microvolts, as LSL sends
    frames = FrameBuffer(keep_s=30.0)
    for k in range(int(12.5 * 25)):
        frames.append(np.full((120, 160, 3), 60, np.uint8), 99.8 + k / 25)
    decided = []
    with BagScorer(tiny_model, backend="ort", device="cpu") as scorer:
        spec = scorer.spec
        detector = make_detector(spec.face.detector, spec.face.min_confidence)
        engine = LiveEngine(
            scorer, config, LiveEEG(spec.eeg, names, types, sfreq), LiveFaces(spec.face, spec.eeg.window_s, detector),
            eeg, frames, decided.append, clock=lambda: clock(engine),
        )
        engine.video_ended = lambda: True
        if stop_after_s is not None:  # Ctrl-C
            import threading

            threading.Timer(stop_after_s, engine.stop.set).start()
        stats = engine.run()
        detector.close()
    return decided, stats


def test_engine_hop_overlapping_windows_on_a_simulated_clock(tiny_model):
    """--hop 1: 3 s windows every second on the stream's time axis, decided from the buffers alone
    (no LSL: a fixed clock after all data arrived); frames without a face give 'no-face' windows."""
    decided, stats = _engine_run(tiny_model, LiveConfig(hop_s=1.0, calibration_s=6.0), lambda engine: 1000.0)
    assert [w.index for w in decided] == list(range(10))  # starts 0..9 s: the last ends at 12 s
    np.testing.assert_allclose([w.start - 100.0 for w in decided], np.arange(10.0))
    assert all(w.skipped is None and w.prediction.label is None and "no-face" in w.prediction.flags for w in decided)
    assert all(w.calibration for w in decided)  # the data was all in before the calibration ended
    assert stats.windows == 10 and stats.scored == 10 and stats.no_face == 10


def test_engine_that_falls_behind_skips_instead_of_drifting_later(tiny_model):
    """The clock jumps 16 s once the calibration (ending at 104 s) is done: every later window is
    then more than max_latency_s = 5 s late and is skipped as 'behind', the calibration ones not."""

    def clock(engine):
        return 104.0 if engine.calibrated_at is None else 120.0

    decided, stats = _engine_run(tiny_model, LiveConfig(hop_s=1.0, calibration_s=3.0, max_latency_s=5.0), clock)
    got = [w.skipped or ("calibration" if w.calibration else "scored") for w in decided]
    assert got == ["calibration", "calibration"] + ["behind"] * 8, got
    assert stats.skipped == {"behind": 8}


def test_a_stop_during_the_calibration_accounts_for_every_window_that_was_in(tiny_model):
    """Stopped while the ICA waits for 30 s of EEG (12 s arrived): the 10 windows whose EEG and
    frames were in are emitted as skipped 'calibrating', none silently dropped."""
    decided, stats = _engine_run(tiny_model, LiveConfig(hop_s=1.0, calibration_s=30.0), lambda engine: 1000.0,
                                 stop_after_s=1.0)
    assert [(w.index, w.skipped) for w in decided] == [(k, "calibrating") for k in range(10)]
    assert stats.windows == 10 and stats.skipped == {"calibrating": 10} and stats.scored == 0


def test_view_and_json_line_of_scored_and_skipped_windows(capsys):
    from milmer.runtime.live.engine import LiveStats, LiveWindow
    from milmer.runtime.live.output import LiveView, summary_record, window_record
    from milmer.runtime.results import WindowPrediction

    names = ("HAHV", "HALV", "LAHV", "LALV")
    f = np.zeros(10, bool)
    f[:7] = True
    pred = WindowPrediction(
        index=3, start=10.0, end=13.0, label="HALV", class_index=1, probabilities=np.array([0.1, 0.6, 0.2, 0.1], np.float32),
        logits=np.zeros(4, np.float32), mil_weights=np.full(10, 0.1, np.float32), selected=np.array([4, 2]),
        found=f, frame_times=10.15 + 0.3 * np.arange(10), flags=("some-frames-without-face",),
    )
    scored = LiveWindow(3, 10.0, 13.0, pred, None, 0.25)
    skipped = LiveWindow(4, 13.0, 16.0, None, "video-stall", 2.1)
    stats = LiveStats(windows=2, scored=1, skipped={"video-stall": 1}, latencies=[0.25])
    view = LiveView(names, stats)  # stderr is not a terminal here: one line per window
    view.emit(scored)
    view.emit(skipped)
    view.close()
    err = capsys.readouterr().err
    assert "HALV" in err and "HAHV 0.10 HALV 0.60" in err and "skipped: video-stall" in err
    rec = window_record(scored, names)
    assert rec["status"] == "scored" and rec["probabilities"]["HALV"] == pytest.approx(0.6)
    assert rec["selected_frame_times"] == pytest.approx([11.35, 10.75]) and rec["faces_found"] == 7
    assert window_record(skipped, names) | {} == {
        "type": "window", "index": 4, "start": 13.0, "end": 16.0, "status": "skipped", "skipped": "video-stall",
        "label": None, "probabilities": None, "selected_frame_times": [], "frame_times": [], "flags": [],
        "latency_s": 2.1, "calibration": False,
    }
    summary = summary_record(stats)
    assert summary["latency_p50_s"] == 0.25 and summary["skipped"] == {"video-stall": 1}
    json.dumps(summary)
