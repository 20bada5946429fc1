"""Band-pass and notch on plain arrays (for stream buffers) agree with the recording path."""

from __future__ import annotations

import numpy as np
import pytest

from milmer.runtime.eeg.filters import average_reference, bandpass, bandpass_array, line_harmonics, notch, notch_array
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


def _recording(bads=(), gap=False):
    import mne

    rng = np.random.default_rng(3)
    data = brain(20.0) + 5e-6 * np.sin(2 * np.pi * 50 * np.arange(int(20 * SFREQ)) / SFREQ)
    eog = rng.standard_normal((1, data.shape[1])) * 5e-5
    info = mne.create_info([*DEAP_CHANNELS, "vEOG"], SFREQ, ["eeg"] * 32 + ["eog"])
    raw = mne.io.RawArray(np.vstack([data, eog]), info, verbose="error")
    raw.info["bads"] = list(bads)
    if gap:
        raw.set_annotations(mne.Annotations([8.0], [1.0], ["BAD_ACQ_SKIP"]))
    return raw


def test_average_reference_in_chunks_equals_mne():
    ours, theirs = _recording(bads=["Cz"]), _recording(bads=["Cz"])
    average_reference(ours, chunk_s=0.7)  # chunk edges off the sample grid of the others
    theirs.set_eeg_reference("average", projection=False, verbose="error")
    np.testing.assert_allclose(ours.get_data(), theirs.get_data(), rtol=0, atol=1e-20)
    assert ours.info["custom_ref_applied"] == theirs.info["custom_ref_applied"] == 1
    np.testing.assert_array_equal(ours.get_data(picks=["Cz"]), _recording().get_data(picks=["Cz"]))  # bad: untouched


def _notch_and_bandpass_against_mne(atol: float):
    """Our notch then band-pass against MNE's calls on the same gapped recording, each step's
    data within ``atol`` V; returns (ours, theirs)."""
    ours, theirs = _recording(gap=True), _recording(gap=True)
    notch(ours, [50.0], ["eeg", "eog"])
    theirs.notch_filter([50.0], picks=["eeg", "eog"], verbose="error")
    np.testing.assert_allclose(ours.get_data(), theirs.get_data(), rtol=0, atol=atol)
    bandpass(ours, EEGSpec())
    theirs.filter(EEGSpec().l_freq, EEGSpec().h_freq, method="fir", verbose="error")
    np.testing.assert_allclose(ours.get_data(), theirs.get_data(), rtol=0, atol=atol)
    return ours, theirs


def test_notch_and_bandpass_a_channel_at_a_time_equal_one_mne_call():
    ours, theirs = _notch_and_bandpass_against_mne(atol=1e-20)
    assert (ours.info["highpass"], ours.info["lowpass"]) == (theirs.info["highpass"], theirs.info["lowpass"])


@pytest.mark.parametrize("block_s", [3.8, 4.0])
def test_long_stretches_filtered_in_blocks_equal_one_mne_call(monkeypatch, block_s):
    """Blocks with 3.4 s of real samples on either side (the notch's 6.6 s FIR reaches 3.3 s): MNE's
    numbers to rounding (1e-18 V: FFT lengths differ); the 8 s stretch before the gap is
    filtered whole, the 11 s one after it in blocks."""
    from milmer.runtime.eeg import filters

    monkeypatch.setattr(filters, "FILTER_BLOCK_S", block_s)
    monkeypatch.setattr(filters, "FILTER_MARGIN_S", 3.4)
    ours, _ = _notch_and_bandpass_against_mne(atol=1e-18)
    assert np.abs(ours.get_data() - _recording(gap=True).get_data()).max() > 1e-6  # it did filter
