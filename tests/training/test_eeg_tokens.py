"""EEG tokens: the paper's per-channel MLP (default) and the spectral (log band power) ablation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from milmer.runtime.check import MilmerInputError
from milmer.training.model import EEG_BANDS, EEGTokenizer, SpectralEEGTokenizer, band_power_matrices


def test_default_tokenizer_is_the_papers_mlp():
    tok = EEGTokenizer(384, 32)
    assert [type(m).__name__ for m in tok.mlp] == ["Linear", "GELU", "Linear"]
    assert tok(torch.randn(2, 32, 384)).shape == (2, 32, 32)


def test_band_power_matches_a_periodogram():
    # A 10 Hz sine of amplitude 2 plus a 20 Hz one of amplitude 1 on channel 0, silence elsewhere.
    t = np.arange(384) / 128.0
    x = np.zeros((1, 3, 384))
    x[0, 0] = 2 * np.sin(2 * np.pi * 10 * t) + np.sin(2 * np.pi * 20 * t)
    x[0, 1] = np.random.default_rng(0).normal(size=384)
    tok = SpectralEEGTokenizer(3, 384, 128.0, 16)
    got = tok.band_power(torch.tensor(x, dtype=torch.float32)).numpy()
    # Reference: numpy rfft of the Hann-windowed signal, mean bin power per band.
    window = np.hanning(385)[:-1]  # periodic Hann
    power = np.abs(np.fft.rfft((x[0] - x[0].mean(-1, keepdims=True)) * window, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(384, 1 / 128.0)
    ref = np.stack([power[:, (freqs >= lo) & (freqs < hi)].mean(-1) for lo, hi in EEG_BANDS], axis=-1)
    np.testing.assert_allclose(got[0], np.log(ref + 1e-6), rtol=1e-4, atol=1e-4)
    # The sines' power lands in alpha (8-13) and beta (13-30), 4:1.
    alpha, beta = EEG_BANDS.index((8.0, 13.0)), EEG_BANDS.index((13.0, 30.0))
    bins_alpha = ((freqs >= 8) & (freqs < 13)).sum()
    bins_beta = ((freqs >= 13) & (freqs < 30)).sum()
    ratio = np.exp(got[0, 0, alpha] - got[0, 0, beta]) * bins_alpha / bins_beta
    assert ratio == pytest.approx(4.0, rel=1e-3)
    assert got[0, 2].max() == pytest.approx(np.log(1e-6))  # silence


def test_spectral_tokens_shape_and_gain_invariance():
    tok = SpectralEEGTokenizer(32, 384, 128.0, 32).eval()
    x = torch.randn(2, 32, 384)
    out = tok(x)
    assert out.shape == (2, 32, 32)
    # The window's overall gain is normalised away (log power shifts by a constant).
    torch.testing.assert_close(tok(10 * x), out, atol=1e-4, rtol=1e-4)


def test_band_without_bins_is_refused():
    with pytest.raises(MilmerInputError, match=r"band 1-4 Hz holds no DFT bin at 16 samples"):
        band_power_matrices(16, 128.0)
