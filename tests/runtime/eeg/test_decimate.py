"""Early decimation of long high-rate recordings: read in chunks, same result as in one go."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from milmer.runtime.eeg import decimate
from milmer.runtime.eeg.preprocess import preprocess_raw
from milmer.runtime.spec import DEAP_CHANNELS, EEGSpec, ICASpec

NO_ICA = dataclasses.replace(EEGSpec(), ica=ICASpec(enabled=False))
SF = 2048.0


def _raw(data, names=(*DEAP_CHANNELS, "Status")):
    import mne

    types = ["eeg"] * 32 + ["stim"] * (len(names) - 32)
    return mne.io.RawArray(data, mne.create_info(list(names), SF, types), verbose="error")


def _data(seconds, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((33, int(seconds * SF))) * 2e-5 + 0.03  # 30 mV offset, like BioSemi's
    x[32] = 0
    return x


@pytest.mark.parametrize("chunk_s", [0.3, 1.0, 7.0])
def test_chunked_decimation_equals_one_shot(chunk_s):
    from scipy.signal import resample_poly

    x = _data(10.0)[:, :-3]  # a length that is not a multiple of the factor
    got = decimate.decimate_early(_raw(x), 8, chunk_s=chunk_s)
    assert got.info["sfreq"] == 256.0 and got.ch_names == list(DEAP_CHANNELS)  # Status left out
    mean = x[:32].mean(axis=1, keepdims=True)
    np.testing.assert_allclose(got.get_data(), resample_poly(x[:32] - mean, 1, 8, axis=1) + mean, rtol=0, atol=1e-15)


def test_factor_follows_the_size_and_rate():
    hour = int(3600 * SF)
    assert decimate.decimation_factor(hour, 41, SF) == 8  # 2048 -> 256 Hz
    assert decimate.decimation_factor(hour, 41, 512.0) == 2
    assert decimate.decimation_factor(int(60 * SF), 41, SF) == 1  # a minute fits as it is


def test_preprocessing_a_long_file_early_decimated_matches_the_full_rate_path(monkeypatch):
    x = _data(40.0)
    x[3, int(20.0 * SF) : int(23.5 * SF)] = x[3].max() + 1e-4  # clipped at the rail for 3.5 s
    full = preprocess_raw(_raw(x), NO_ICA)
    monkeypatch.setattr(decimate, "MAX_FULL_RATE_BYTES", 1)
    early = preprocess_raw(_raw(x), NO_ICA)
    (note,) = [n for n in early.info["notes"] if n.startswith("decimated early by 8 (2048 -> 256 Hz")]
    assert "1 clipping span(s)" in note
    assert early.info["resampled_from"] == 2048.0
    np.testing.assert_array_equal(early.starts, full.starts)
    assert early.flags == full.flags and ("bad-span:BAD_clipped",) in early.flags
    # Another anti-alias filter chain (and the clipped span bridged from 43 ms further out): the
    # same windows to 1 % of their RMS away from the span and the recording's ends.
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
