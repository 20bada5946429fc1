"""Fourier-transform surrogates keep every channel's amplitude spectrum (band power) exactly and
change the waveform; the training config validates the option."""

from __future__ import annotations

import pytest
import torch

from milmer.runtime.check import MilmerInputError
from milmer.training.augment import augment_eeg, ft_surrogate
from milmer.training.train_config import TrainConfig


@pytest.mark.parametrize("n_samples", [384, 383])
def test_surrogate_keeps_the_amplitude_spectrum_and_changes_the_waveform(n_samples):
    g = torch.Generator().manual_seed(0)
    t = torch.arange(n_samples) / 128.0
    # A 10 Hz alpha rhythm on channel 0, 20 Hz beta on channel 1, plus noise: (2, 2, T).
    eeg = torch.stack([torch.sin(2 * torch.pi * 10 * t), torch.sin(2 * torch.pi * 20 * t)])[None].repeat(2, 1, 1)
    eeg = eeg + 0.1 * torch.randn(eeg.shape, generator=g)
    out = ft_surrogate(eeg, generator=torch.Generator().manual_seed(1))
    assert out.shape == eeg.shape and out.dtype == eeg.dtype
    torch.testing.assert_close(torch.fft.rfft(out).abs(), torch.fft.rfft(eeg).abs(), atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(out.mean(-1), eeg.mean(-1), atol=1e-6, rtol=0)  # DC kept
    # The waveform is new: for a rhythm the correlation is |cos| of the drawn phase shift (seeded:
    # 0.63 for T = 384, 0.61 for T = 383), not 1.
    corr = torch.corrcoef(torch.stack([out[0, 0], eeg[0, 0]]))[0, 1].abs().item()
    assert corr == pytest.approx({384: 0.628, 383: 0.605}[n_samples], abs=0.01)
    # The same phases for every channel of a window: channel 0 and 1 keep their relative phase
    # at each frequency (their cross-spectrum keeps its angle).
    cross = torch.fft.rfft(eeg[0, 0]) * torch.fft.rfft(eeg[0, 1]).conj()
    cross_out = torch.fft.rfft(out[0, 0]) * torch.fft.rfft(out[0, 1]).conj()
    big = cross.abs() > 1.0
    torch.testing.assert_close(torch.angle(cross_out[big]), torch.angle(cross[big]), atol=1e-3, rtol=0)


def test_augment_is_seeded_by_torchs_global_rng_and_none_is_identity():
    eeg = torch.randn(3, 4, 384, generator=torch.Generator().manual_seed(2))
    assert augment_eeg(eeg, "none") is eeg
    torch.manual_seed(5)
    a = augment_eeg(eeg, "ft-surrogate")
    torch.manual_seed(5)
    b = augment_eeg(eeg, "ft-surrogate")
    assert torch.equal(a, b) and not torch.allclose(a, eeg)


def test_train_config_validates_eeg_augment():
    assert TrainConfig(data_root="d", out_dir="o").eeg_augment == "none"
    with pytest.raises(MilmerInputError, match=r"Invalid value for 'eeg_augment'.*'none', 'ft-surrogate'.*'phase'"):
        TrainConfig(data_root="d", out_dir="o", eeg_augment="phase")
