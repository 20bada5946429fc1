"""Band-pass and notch on plain arrays (for stream buffers) agree with the recording path."""

from __future__ import annotations

import numpy as np

from milmer.runtime.eeg.filters import bandpass, bandpass_array, line_harmonics, notch_array
from milmer.runtime.spec import DEAP_CHANNELS, EEGSpec

from .conftest import SFREQ, brain


def test_bandpass_array_equals_bandpass_on_a_recording():
    import mne

    data = brain(20.0)
    raw = mne.io.RawArray(data.copy(), mne.create_info(list(DEAP_CHANNELS), SFREQ, "eeg"), verbose="error")
    bandpass(raw, EEGSpec())
    np.testing.assert_allclose(bandpass_array(data, SFREQ, EEGSpec()), raw.get_data(), rtol=0, atol=1e-15)


def test_notch_array_removes_the_mains_and_its_harmonics():
    t = np.arange(int(20 * 512)) / 512.0
    hum = 50e-6 * (np.sin(2 * np.pi * 50 * t) + np.sin(2 * np.pi * 100 * t))
    alpha = 20e-6 * np.sin(2 * np.pi * 10 * t)
    freqs = line_harmonics(50.0, 512.0, 256.0)
    np.testing.assert_array_equal(freqs, [50.0, 100.0])  # below both Nyquist frequencies
    out = notch_array(np.vstack([hum + alpha]), 512.0, freqs)[0]
    middle = slice(2048, -2048)
    assert np.sqrt(np.mean((out[middle] - alpha[middle]) ** 2)) < 0.02 * np.sqrt(np.mean(hum[middle] ** 2))
    assert line_harmonics(None, 512.0, 128.0).size == 0
