"""The continuous recording: EDF readable by MNE, truth.json consistent, states visible in the EEG."""

from __future__ import annotations

import json

import numpy as np
import pytest

from milmer.synthetic.recording_writer import draw_segments
from milmer.runtime.spec import CLASS_SCHEMES, DEAP_CHANNELS


@pytest.fixture(scope="module")
def raw(demo):
    import mne

    return mne.io.read_raw_edf(demo.recording_eeg, eog=["EOG"], preload=True, verbose="error")


@pytest.fixture(scope="module")
def truth(demo):
    return json.loads(demo.recording_truth.read_text())


def test_edf_has_32_eeg_plus_eog_at_256_hz(raw):
    assert raw.ch_names == [*DEAP_CHANNELS, "EOG"]
    assert raw.get_channel_types() == ["eeg"] * 32 + ["eog"]
    assert raw.info["sfreq"] == 256.0
    assert raw.n_times == 20 * 256
    std_uv = raw.get_data(picks="eeg").std(axis=1) * 1e6
    assert 5 < np.median(std_uv) < 30  # volts in MNE, tens of microvolts


def test_edf_has_line_noise_and_blinks(raw, truth):
    from scipy.signal import find_peaks, welch

    freqs, psd = welch(raw.get_data(picks="Cz")[0], 256.0, nperseg=512)
    assert psd[freqs == 50.0][0] > 20 * np.median(psd[(freqs > 46) & (freqs < 54) & (freqs != 50.0)])
    eog_uv = raw.get_data(picks="EOG")[0] * 1e6
    peaks, _ = find_peaks(eog_uv, height=100.0, distance=128)
    np.testing.assert_allclose(peaks / 256.0, np.array(truth["blink_onsets_s"]) + 0.1, atol=0.1)


def test_truth_json(demo, truth):
    import cv2

    assert truth["synthetic"] is True and truth["class_scheme"] == "deap4"
    segments = truth["segments"]
    assert segments == [
        {"start_s": 0.0, "end_s": 14.4, "label": "LAHV", "valence": 9.0, "arousal": 2.81},
        {"start_s": 14.4, "end_s": 20.0, "label": "HALV", "valence": 3.8, "arousal": 8.0},
    ]
    assert [s.label for s in demo.segments] == ["LAHV", "HALV"]
    cap = cv2.VideoCapture(str(demo.recording_video))
    assert (cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)) == (truth["video"]["frames"], 25.0) == (500, 25.0)
    cap.release()


def test_recording_eeg_follows_the_segments(raw):
    """Segment 1 (LAHV) vs segment 2 (HALV), leaving 1 s around the change."""
    from scipy.signal import welch

    eeg = raw.copy().pick("eeg").set_eeg_reference("average", verbose="error").get_data() * 1e6
    idx = {name: i for i, name in enumerate(DEAP_CHANNELS)}

    def features(x: np.ndarray) -> tuple[float, float]:
        freqs, psd = welch(x, 256.0, nperseg=256)
        alpha = psd[:, (freqs >= 8) & (freqs <= 12)].mean(axis=1)
        beta = psd[:, (freqs >= 13) & (freqs <= 30)].mean(axis=1)
        pairs = [("Fp1", "Fp2"), ("AF3", "AF4"), ("F3", "F4"), ("F7", "F8")]
        faa = np.mean([np.log(alpha[idx[r]] / alpha[idx[l]]) for l, r in pairs])
        fc = [idx[c] for c in ("F3", "F4", "Fz", "FC1", "FC2", "C3", "C4", "Cz")]
        return float(faa), float(np.log(beta[fc].mean() / alpha[fc].mean()))

    faa1, ratio1 = features(eeg[:, : int(13.4 * 256)])
    faa2, ratio2 = features(eeg[:, int(15.4 * 256) :])
    assert faa1 > faa2 and ratio2 > ratio1
    assert [round(x, 3) for x in (faa1, faa2, ratio1, ratio2)] == [0.377, -0.038, -1.557, -1.183]


@pytest.mark.parametrize("duration", [20.0, 60.0, 125.0])
def test_segments_cover_the_recording(duration):
    segments = draw_segments(np.random.default_rng(0), duration)
    assert segments[0].start_s == 0.0 and segments[-1].end_s == duration
    assert all(a.end_s == b.start_s for a, b in zip(segments, segments[1:]))
    lengths = [s.end_s - s.start_s for s in segments]
    assert all(12.0 <= x <= 18.0 for x in lengths[:-1]) and 5.0 <= lengths[-1] < 23.0
    assert all(a.label != b.label for a, b in zip(segments, segments[1:]))
    assert {s.label for s in segments} <= set(CLASS_SCHEMES["deap4"])
    if duration >= 60:
        assert {s.label for s in segments[:4]} == set(CLASS_SCHEMES["deap4"])
