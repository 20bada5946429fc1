"""Preprocessing without ICA: filter response, resampling, channel order, windows, input errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.eeg.ica import _strongest
from milmer.runtime.eeg.preprocess import cut_windows, preprocess_array, preprocess_raw
from milmer.runtime.spec import DEAP_CHANNELS

# Gain of the spec's band-pass (1-50 Hz, MNE default FIR, zero phase) at 128 Hz, measured on
# 50 uV sinusoids away from the recording's edges. MNE's default transition bands are 1 Hz wide
# below 1 Hz (-6 dB at 0.5 Hz) and 12.5 Hz wide above 50 Hz (-6 dB at 56.25 Hz).
FILTER_GAIN_DB = {0.1: -35.0, 0.3: -15.1, 2.0: 0.0, 10.0: 0.0, 40.0: 0.0, 60.0: -22.1}


def _sines(freqs, sfreq=128.0, seconds=60.0, amp_uv=50.0):
    t = np.arange(int(seconds * sfreq)) / sfreq
    return amp_uv * np.sin(2 * np.pi * np.asarray(freqs)[:, None] * t)  # (C, T) uV


def _gain_db(windows, channel, ref_rms):
    middle = windows[3:-3, channel]  # 9 s to 51 s: clear of the filter's edge effects
    return 20 * np.log10(np.sqrt(np.mean(middle.astype(np.float64) ** 2)) / ref_rms)


def test_bandpass_response(filter_only_spec):
    freqs = list(FILTER_GAIN_DB) + [10.0] * (32 - len(FILTER_GAIN_DB))
    out = preprocess_array(_sines(freqs), DEAP_CHANNELS, 128.0, filter_only_spec, unit="uV")
    gains = {f: _gain_db(out.data, i, 50 / np.sqrt(2)) for i, f in enumerate(FILTER_GAIN_DB)}
    for f, expected in FILTER_GAIN_DB.items():
        assert gains[f] == pytest.approx(expected, abs=0.3), (f, gains)
    assert max(abs(gains[f]) for f in (2.0, 10.0, 40.0)) < 0.1  # pass band flat within 0.1 dB
    assert gains[60.0] < -20 and gains[0.1] < -30  # stop bands


def test_output_is_microvolts_in_spec_order(filter_only_spec):
    # Channel k of the spec carries a (2 + k/2) Hz sine; the file lists them reversed, with aliases.
    freqs = 2 + np.arange(32) / 2
    names = [{"T7": "T3", "P8": "T6"}.get(c, f"EEG {c.upper()}-REF") for c in DEAP_CHANNELS]
    data = _sines(freqs)[::-1] * 1e-6
    out = preprocess_array(data, names[::-1], 128.0, filter_only_spec)
    spectrum = np.abs(np.fft.rfft(out.data[5], axis=-1))  # window 5: (32, 193)
    peak_hz = np.fft.rfftfreq(384, 1 / 128)[spectrum.argmax(axis=-1)]
    np.testing.assert_allclose(peak_hz, freqs, atol=0.34)  # 1/3 Hz bins
    assert out.data.dtype == np.float32 and 45 < np.abs(out.data[5]).max() < 51  # 50 uV sines
    assert out.info["channels_renamed"]["T3"] == "T7"
    assert out.info["channels_renamed"]["EEG FP1-REF"] == "Fp1"


def test_windows_starts_and_baseline(filter_only_spec):
    data = _sines([10.0] * 32, seconds=20.0)
    out = preprocess_array(data, DEAP_CHANNELS, 128.0, filter_only_spec, unit="uV", baseline_s=3.0)
    assert out.data.shape == (5, 32, 384)  # 17 s after the baseline: 5 windows, 2 s tail dropped
    np.testing.assert_array_equal(out.starts, [3.0, 6.0, 9.0, 12.0, 15.0])
    assert out.info["n_windows"] == 5 and out.info["duration_s"] == 20.0 and out.info["baseline_s"] == 3.0
    assert out.info["unit"] == "uV" and out.info["eog_source"] == "ICA disabled"
    full = preprocess_array(data, DEAP_CHANNELS, 128.0, filter_only_spec, unit="uV")
    assert full.data.shape == (6, 32, 384)
    # The baseline is cut after filtering: window k after baseline = samples 384 * (k + 1) ...
    np.testing.assert_array_equal(out.data[0], full.data[1])


def test_cut_windows_splits_time_only():
    data = np.arange(3)[:, None] * 10_000 + np.arange(1000)[None, :]  # value = channel * 1e4 + t
    windows, starts = cut_windows(data, 100.0, 300, skip_samples=50)
    assert windows.shape == (3, 3, 300)
    for w in range(3):
        for c in range(3):
            np.testing.assert_array_equal(windows[w, c], c * 10_000 + 50 + w * 300 + np.arange(300))
    np.testing.assert_allclose(starts, [0.5, 3.5, 6.5])


def test_resample_from_256_hz(filter_only_spec):
    seconds = 12.0
    t = np.arange(int(seconds * 256)) / 256
    tone = 40 * np.sin(2 * np.pi * 10 * t)
    alias = 40 * np.sin(2 * np.pi * 100 * t)  # above the new Nyquist: would fold to 28 Hz
    data = np.tile(tone + alias, (32, 1))
    out = preprocess_array(data, DEAP_CHANNELS, 256.0, filter_only_spec, unit="uV")
    assert out.data.shape == (4, 32, 384) and out.info["resampled_from"] == 256.0
    reference = preprocess_array(_sines([10.0] * 32, seconds=seconds, amp_uv=40), DEAP_CHANNELS, 128.0,
                                 filter_only_spec, unit="uV")  # fmt: skip
    assert reference.info["resampled_from"] is None
    # Same 10 Hz tone as sampling at 128 Hz directly (middle windows); a 28 Hz alias of the
    # 40 uV 100 Hz tone would break this by tens of uV.
    np.testing.assert_allclose(out.data[1:3], reference.data[1:3], atol=1e-3)


@pytest.mark.parametrize(
    ("channels", "value", "match"),
    [
        ([23], np.nan, r"cannot be used as EEG: Cz \(NaN or infinite throughout\)"),
        ([0, 16], np.inf, r"cannot be used as EEG: Fp1 \(NaN or infinite throughout\); Fp2 \(NaN"),
        ([31], 0.0, r"cannot be used as EEG: O2 \(flat \(a disconnected electrode\)\)"),
    ],
)
def test_bad_signal_errors(filter_only_spec, channels, value, match):
    data = _sines([10.0] * 32, seconds=4.0) * 1e-6
    data[channels] = value  # the whole channel
    with pytest.raises(MilmerInputError, match=match):
        preprocess_array(data, DEAP_CHANNELS, 128.0, filter_only_spec)


def test_too_short_errors(eeg_spec):
    with pytest.raises(MilmerInputError, match=r"recording is 2\.50 s long; at least one 3 s window is needed"):
        preprocess_array(_sines([10.0] * 32, seconds=2.5), DEAP_CHANNELS, 128.0, eeg_spec, unit="uV")
    with pytest.raises(MilmerInputError, match=r"5\.00 s long \(2\.00 s after the 3 s baseline\); at least one 3 s"):
        preprocess_array(_sines([10.0] * 32, seconds=5.0), DEAP_CHANNELS, 128.0, eeg_spec, unit="uV", baseline_s=3.0)


def test_argument_errors(eeg_spec):
    data = _sines([10.0] * 32, seconds=4.0)
    with pytest.raises(MilmerInputError, match=r"'unit': expected one of 'V', 'uV', got 'mV'"):
        preprocess_array(data, DEAP_CHANNELS, 128.0, eeg_spec, unit="mV")  # type: ignore[arg-type]
    with pytest.raises(MilmerInputError, match=r"'data': expected a \(31, samples\) array, got float64 \(32, 512\); one channel per name"):
        preprocess_array(data, DEAP_CHANNELS[:31], 128.0, eeg_spec)
    with pytest.raises(MilmerInputError, match=r"'baseline_s': expected a number >= 0, got -1"):
        preprocess_array(data, DEAP_CHANNELS, 128.0, eeg_spec, baseline_s=-1)


def test_missing_channel_error_reaches_the_user(eeg_spec):
    with pytest.raises(MilmerInputError, match=r"lacks 1 of the model's 32 EEG channels: O2\."):
        preprocess_array(_sines([10.0] * 31, seconds=4.0), DEAP_CHANNELS[:31], 128.0, eeg_spec, unit="uV")


def test_strongest_components_cap():
    strength = np.array([0.1, 0.9, 0.3, 0.95, 0.5])
    assert _strongest([1, 2, 3, 4], strength, 3) == [3, 1, 4]
    assert _strongest([1, 2, 3, 4], strength, 1) == [3]
    assert _strongest([2], strength, 0) == []


def test_raw_is_not_modified(filter_only_spec):
    import mne

    data = _sines([10.0] * 32, seconds=6.0, amp_uv=1.0) * 1e-6
    raw = mne.io.RawArray(data.copy(), mne.create_info(list(DEAP_CHANNELS), 128.0, "eeg"), verbose="error")
    preprocess_raw(raw, dataclasses.replace(filter_only_spec, sfreq=64.0, h_freq=30.0))
    np.testing.assert_array_equal(raw.get_data(), data)
    assert raw.info["sfreq"] == 128.0
