"""Early resampling of long recordings: read in chunks, the same result as in one go."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from milmer.runtime.eeg import decimate
from milmer.runtime.eeg.preprocess import preprocess_raw
from milmer.runtime.eeg.working import move_rows
from milmer.runtime.spec import DEAP_CHANNELS, EEGSpec, ICASpec

NO_ICA = dataclasses.replace(EEGSpec(), ica=ICASpec(enabled=False))
SF = 2048.0


def _raw(data, names=(*DEAP_CHANNELS, "Status"), sfreq=SF):
    import mne

    types = ["eeg"] * 32 + ["eog" if n.endswith("EOG") else "stim" for n in names[32:]]
    return mne.io.RawArray(data, mne.create_info(list(names), sfreq, types), verbose="error")


def _data(seconds, seed=0, sfreq=SF, rows=33):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, int(seconds * sfreq))) * 2e-5 + 0.03  # 30 mV offset, like BioSemi's
    x[rows - 1] = 0
    return x


@pytest.mark.parametrize(("sfreq", "ratio"), [(2048.0, (1, 16)), (1000.0, (16, 125)), (100.0, (32, 25))])
@pytest.mark.parametrize("chunk_s", [0.3, 1.0, 7.0])
def test_chunked_resampling_equals_one_shot(chunk_s, sfreq, ratio):
    from scipy.signal import resample_poly

    x = _data(10.0, sfreq=sfreq)[:, :-3]  # a length that is not a multiple of `down`
    got = decimate.resample_early(_raw(x, sfreq=sfreq), *ratio, chunk_s=chunk_s)
    assert got.info["sfreq"] == 128.0 and got.ch_names == list(DEAP_CHANNELS)  # Status left out
    mean = x[:32].mean(axis=1, keepdims=True)
    np.testing.assert_allclose(got.get_data(), resample_poly(x[:32] - mean, *ratio, axis=1) + mean, rtol=0, atol=1e-15)


def test_resampling_writes_into_the_given_buffer_in_the_given_order():
    x = _data(4.0)
    buffer = np.zeros((3, 512))
    got = decimate.resample_early(_raw(x), 1, 16, keep=["O2", "Fp1", "Cz"], out=buffer)
    assert got.ch_names == ["O2", "Fp1", "Cz"] and np.shares_memory(got._data, buffer)  # no copy
    np.testing.assert_array_equal(got.get_data(), buffer)
    np.testing.assert_allclose(buffer[1].mean(), x[0].mean(), rtol=1e-6)  # Fp1 is the file's first channel


def test_ratio_follows_the_size_and_rate():
    hour = int(3600 * SF)
    assert decimate.early_ratio(hour, 41, SF, 128.0) == (1, 16)  # 2048 -> 128 Hz
    assert decimate.early_ratio(hour, 41, 512.0, 128.0) == (1, 4)
    assert decimate.early_ratio(hour, 41, 1000.0, 128.0) == (16, 125)
    assert decimate.early_ratio(hour, 41, 128.0, 128.0) == (1, 1)  # read in chunks all the same
    assert decimate.early_ratio(int(60 * SF), 41, SF, 128.0) is None  # a minute fits as it is
    # An odd rate: the nearest ratio with small terms (preprocessing resamples the rest of the way).
    up, down = decimate.early_ratio(hour, 41, 2048.3, 128.0)
    assert max(up, down) <= decimate.MAX_RATIO_TERM and abs(2048.3 * up / down / 128.0 - 1) < 1e-3


def test_move_rows_rearranges_in_place():
    a = np.arange(12.0).reshape(6, 2)
    move_rows(a, {0: 3, 3: 5, 5: 0, 1: 1, 2: 4, 4: 2})
    np.testing.assert_array_equal(a[:, 0], [10.0, 2.0, 8.0, 0.0, 4.0, 6.0])


def test_preprocessing_a_long_file_early_resampled_matches_the_full_rate_path(monkeypatch):
    x = _data(40.0)
    x[3, int(20.0 * SF) : int(23.5 * SF)] = x[3].max() + 1e-4  # clipped at the rail for 3.5 s
    full = preprocess_raw(_raw(x), NO_ICA)
    monkeypatch.setattr(decimate, "MAX_FULL_RATE_BYTES", 1)
    early = preprocess_raw(_raw(x), NO_ICA)
    (note,) = [n for n in early.info["notes"] if n.startswith("resampled early (2048 -> 128 Hz, polyphase 1/16")]
    assert "1 clipping span(s)" in note
    assert early.info["resampled_from"] == 2048.0 and early.info["decimated_by"] == 16
    np.testing.assert_array_equal(early.starts, full.starts)
    assert early.flags == full.flags and ("bad-span:BAD_clipped",) in early.flags
    # Another anti-alias filter chain (and the clipped span bridged from further out): the same
    # windows to 1 % of their RMS away from the span and the recording's ends.
    far = [i for i, t in enumerate(full.starts) if abs(t - 21.75) > 6 and 0 < t < 36]
    assert far == [1, 2, 3, 4, 5, 10, 11]
    diff = np.sqrt(np.mean((early.data[far] - full.data[far]) ** 2)) / np.sqrt(np.mean(full.data[far] ** 2))
    assert diff < 0.01


def test_nan_run_in_a_long_file_is_a_gap(monkeypatch):
    x = _data(40.0)
    x[:32, int(13.5 * SF) : int(14.0 * SF)] = np.nan
    monkeypatch.setattr(decimate, "MAX_FULL_RATE_BYTES", 1)
    out = preprocess_raw(_raw(x), NO_ICA)
    assert 12.0 in out.info["windows_dropped_gap"] and 12.0 not in out.starts
    assert np.isfinite(out.data).all()


def _busy_recording(seconds=60.0, sfreq=512.0):
    """(34, T) volts at ``sfreq``: alpha, 50 Hz mains, blinks in Fp1/Fp2 and two EOG channels,
    a clipped stretch in O1 and a NaN dropout, on a BioSemi-like offset."""
    rng = np.random.default_rng(7)
    n = int(seconds * sfreq)
    t = np.arange(n) / sfreq
    x = rng.standard_normal((34, n)) * 1e-5 + 20e-6 * np.sin(2 * np.pi * 10 * t) + 8e-6 * np.sin(2 * np.pi * 50 * t)
    blinks = np.zeros(n)
    for onset in rng.uniform(1, seconds - 1, int(seconds / 4)):
        blinks += 150e-6 * np.exp(-0.5 * ((t - onset) / 0.08) ** 2)
    x[[0, 16]] += blinks  # Fp1, Fp2
    x[32:] = blinks + rng.standard_normal((2, n)) * 5e-6
    x[:32] += rng.uniform(-0.03, 0.03, (32, 1))
    x[13, int(30.0 * sfreq) : int(31.5 * sfreq)] = x[13].max()  # O1 at its rail for 1.5 s
    x[:32, int(44.0 * sfreq) : int(44.2 * sfreq)] = np.nan
    return x


@pytest.mark.parametrize("ica", [False, True])
def test_chunk_size_does_not_change_the_windows(monkeypatch, ica):
    """The whole chain (early resampling, reference, notch, band-pass, ICA, windows) gives the
    same windows whether the file is read 1.3 s at a time (chunk edges inside every 3 s window)
    or in one chunk: in float64 the chunked resampling is exact to ~1e-16; the float32 windows
    then differ by at most one float32 step (2**-23 of the largest value) where a value rounds
    the other way."""
    names = (*DEAP_CHANNELS, "hEOG", "vEOG")
    spec = EEGSpec() if ica else NO_ICA
    x = _busy_recording()
    monkeypatch.setattr(decimate, "MAX_FULL_RATE_BYTES", 1)
    monkeypatch.setattr(decimate, "CHUNK_S", 1000.0)
    whole = preprocess_raw(_raw(x.copy(), names, 512.0), spec)
    monkeypatch.setattr(decimate, "CHUNK_S", 1.3)
    chunked = preprocess_raw(_raw(x.copy(), names, 512.0), spec)
    for out in (whole, chunked):
        assert out.info["line_noise"]["freq"] == 50.0 and out.info["decimated_by"] == 4
        assert any(f == ("bad-span:BAD_clipped",) for f in out.flags) and 42.0 in out.info["windows_dropped_gap"]
    assert chunked.info["ica_excluded"] == whole.info["ica_excluded"] and (len(whole.info["ica_excluded"]) > 0) == ica
    np.testing.assert_array_equal(chunked.starts, whole.starts)
    assert chunked.flags == whole.flags
    scale = np.abs(whole.data).max()
    assert np.abs(chunked.data - whole.data).max() <= 2.0**-23 * scale
