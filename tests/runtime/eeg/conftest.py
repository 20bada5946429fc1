"""Synthetic EEG for the EEG tests: 1/f background, blinks with a known waveform and topography."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

from milmer.runtime.spec import DEAP_CHANNELS, EEGSpec, ICASpec

SFREQ = 128.0
BLINK_UV = 300.0

# Share of the Fp1/Fp2 blink amplitude seen at each electrode row: eye artefacts fall off from
# the forehead to the back of the head.
_ROW_WEIGHT = {"Fp": 1.0, "AF": 0.6, "F": 0.35, "FC": 0.15, "C": 0.07, "T": 0.07, "CP": 0.04,
               "P": 0.02, "PO": 0.01, "O": 0.01}  # fmt: skip


def blink_weight(channel: str) -> float:
    row = "".join(ch for ch in channel if ch.isalpha()).removesuffix("z")
    return _ROW_WEIGHT[row]


@dataclass
class SyntheticEEG:
    """brain: (32, T) volts; blink: (T,) volts at Fp1; eeg = brain + outer(weights, blink)."""

    brain: np.ndarray
    blink: np.ndarray
    weights: np.ndarray
    eog: np.ndarray  # (T,) volts: the blinks as a vertical EOG channel sees them, plus noise
    onsets: np.ndarray  # (B,) sample index of each blink

    @property
    def eeg(self) -> np.ndarray:
        return self.brain + np.outer(self.weights, self.blink)


def make_eeg(seed: int, duration_s: float = 60.0, *, blinks: bool = True) -> SyntheticEEG:
    """32 channels of 1/f ("pink") noise mixed by a random matrix, ~20 uV per channel, and
    blinks of 300 uV, 200-400 ms long (Hann bumps), every 4 +- 0.8 s."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * SFREQ)
    white = rng.standard_normal((32, n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    sources = np.fft.irfft(np.fft.rfft(white, axis=1) / np.sqrt(freqs), n=n, axis=1)  # 1/f power
    brain = rng.standard_normal((32, 32)) @ (sources / sources.std(axis=1, keepdims=True))
    brain *= 20e-6 / brain.std(axis=1, keepdims=True)

    blink = np.zeros(n)
    onsets = []
    t = 1.5
    while t < duration_s - 1:
        length = int(rng.uniform(0.2, 0.4) * SFREQ)
        start = int(t * SFREQ)
        blink[start : start + length] += BLINK_UV * 1e-6 * np.hanning(length)
        onsets.append(start)
        t += 4 + rng.uniform(-0.8, 0.8)
    eog_noise = 5e-6 * rng.standard_normal(n)
    if not blinks:
        blink[:] = 0
    weights = np.array([blink_weight(c) for c in DEAP_CHANNELS])
    return SyntheticEEG(brain, blink, weights, 1.5 * blink + eog_noise, np.array(onsets))


@pytest.fixture(scope="session")
def eeg_spec() -> EEGSpec:
    return EEGSpec()


@pytest.fixture(scope="session")
def no_ica_spec() -> EEGSpec:
    return dataclasses.replace(EEGSpec(), ica=ICASpec(enabled=False))


@pytest.fixture(scope="session")
def blinky() -> SyntheticEEG:
    return make_eeg(seed=0)


@pytest.fixture(scope="session")
def blink_free() -> SyntheticEEG:
    return make_eeg(seed=0, blinks=False)


@pytest.fixture(scope="session")
def synth():
    """The generator itself, for tests that need their own seed or length."""
    return make_eeg


@pytest.fixture(scope="session")
def filter_only_spec() -> EEGSpec:
    """Channel picking, resampling, band-pass and windows only: no reference, notch or ICA."""
    return dataclasses.replace(EEGSpec(), ica=ICASpec(enabled=False), reference="as-recorded", line_noise="off")
