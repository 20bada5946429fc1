"""EEG data augmentation for training (never at inference).

``'ft-surrogate'`` (Schwabedal et al. 2019, "Addressing Class Imbalance in Classification Problems
of Noisy Signals by using Fourier Transform Surrogates", arXiv:1806.08675; braindecode's
``FTSurrogate`` transform): each training window is replaced by a Fourier-transform surrogate,
a signal with the same amplitude spectrum on every channel but new random phases. Band power
(the usual carrier of emotion in EEG: DEAP's spectral features, frontal alpha asymmetry) is kept
exactly; the particular waveform of a window is not, so a network cannot memorise windows by
their raw samples. One random phase per frequency is shared by all channels of a window (as
braindecode's default ``channel_indep=False``), which keeps the phase relations between channels.

Written here (a few lines of ``torch.fft``) rather than imported from braindecode, whose
dependencies (skorch, h5py, ...) the training extra does not otherwise need.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .train_config import EEG_AUGMENTS

__all__ = ["EEG_AUGMENTS", "ft_surrogate", "augment_eeg"]


def ft_surrogate(eeg: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """eeg (B, C, T) float -> (B, C, T): the same per-channel amplitude spectrum, random phases.

    A phase offset uniform in [0, 2 pi) per window and frequency (shared across channels) is
    added to every rfft bin except DC and, for even T, the Nyquist bin (both must stay real).
    """
    b, _, t = eeg.shape
    spectrum = torch.fft.rfft(eeg, dim=-1)  # (B, C, T // 2 + 1)
    n = spectrum.shape[-1]
    phase = 2 * math.pi * torch.rand(b, 1, n, generator=generator, device=eeg.device, dtype=eeg.dtype)
    phase[..., 0] = 0.0
    if t % 2 == 0:
        phase[..., -1] = 0.0
    return torch.fft.irfft(spectrum * torch.polar(torch.ones_like(phase), phase), n=t, dim=-1)


def augment_eeg(eeg: Tensor, mode: str) -> Tensor:
    """Apply ``mode`` (one of :data:`EEG_AUGMENTS`) to a training batch (B, C, T); torch's
    global RNG draws the randomness, so a seeded run repeats exactly."""
    if mode == "none":
        return eeg
    if mode == "ft-surrogate":
        return ft_surrogate(eeg)
    raise ValueError(f"unknown EEG augmentation {mode!r}")  # TrainConfig validates: not reached
