"""Synthetic EEG with learnable, literature-directed emotion effects, blinks and saccades.

Signal model per channel (microvolts, before referencing):

- background: pink noise (power ~ 1/f, 1-45 Hz), spatially correlated through a mixing matrix
  ``exp(-distance / 5 cm)`` over standard 10-05 electrode positions (volume conduction);
- alpha (individual peak 9-11 Hz): strongest posteriorly. **Valence** sets frontal alpha
  asymmetry in the direction of Davidson's approach/withdrawal model: alpha is inversely related
  to cortical activity and positive affect goes with relatively more *left* frontal activity, so
  positive valence gives more alpha on the *right* frontal sites (Fp2, AF4, F4, F8, FC6) than on
  the left ones (Fp1, AF3, F3, F7, FC5); the asymmetry index ``ln(alpha_R) - ln(alpha_L)`` rises
  with valence. **Arousal** lowers alpha everywhere;
- beta (13-30 Hz): over frontal and central sites, raised by **arousal**;
- blinks: the vertical-EOG blink potential, strongest at Fp1/Fp2 (0.8 of vEOG) and decaying with
  distance from the eyes (AF3/AF4 ~0.57, F3/F4 ~0.26, Cz ~0.05, occipital ~0.01);
- saccades: steps on the horizontal EOG that leak with opposite signs into F7 and F8.

Effect sizes are chosen so that per-3-s-window band power separates the classes well but not
perfectly: a median split on the asymmetry index or on the beta/alpha ratio classifies ~80-88 %
of windows, a logistic regression on log band powers ~86 % (valence) and ~92 % (arousal)
(see the tests for pinned figures). The ``.dat`` rows are average-referenced like DEAP's, which
spreads the blink with opposite sign and ~0.15 of its size onto posterior sites.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from milmer.runtime.spec import DEAP_CHANNELS
from .timeline import Blinks, StateTimeline

__all__ = [
    "ALPHA_BAND",
    "BETA_BAND",
    "FRONTAL_LEFT",
    "FRONTAL_RIGHT",
    "PERIPHERAL_CHANNELS",
    "SubjectEEG",
    "SynthEEG",
    "synth_eeg",
    "synth_peripheral",
]

ALPHA_BAND = (8.0, 12.0)
BETA_BAND = (13.0, 30.0)
FRONTAL_LEFT = ("Fp1", "AF3", "F3", "F7")
FRONTAL_RIGHT = ("Fp2", "AF4", "F4", "F8")
#: The 8 non-EEG channels of a DEAP ``.dat`` trial, after the 32 EEG channels.
PERIPHERAL_CHANNELS = ("hEOG", "vEOG", "zEMG", "tEMG", "GSR", "Respiration", "Plethysmograph", "Temperature")

# Effect sizes (natural-log amplitude gains per unit drive).
_VALENCE_ASYM = 0.45  # ln(alpha_R / alpha_L) = _VALENCE_ASYM * valence drive
_AROUSAL_ALPHA = 0.07  # alpha amplitude *= exp(-_AROUSAL_ALPHA * arousal drive)
_AROUSAL_BETA = 0.10  # beta amplitude  *= exp(+_AROUSAL_BETA * arousal drive)
_STATE_JITTER = 0.3  # RMS of slow (< 0.2 Hz) within-session fluctuation added to each drive
# RMS amplitudes (uV) of each component at a weight of 1.
_PINK_RMS = 9.0
_ALPHA_RMS = 7.0
_BETA_RMS = 3.0
_EOG_NOISE_RMS = 4.0


def _positions() -> np.ndarray:
    """(32, 3) float64 head positions (m) of ``DEAP_CHANNELS`` from MNE's 10-05 montage."""
    import mne

    from milmer.runtime.eeg.channels import standard_1005_montage_name
    pos = mne.channels.make_standard_montage(standard_1005_montage_name()).get_positions()["ch_pos"]
    return np.array([pos[name] for name in DEAP_CHANNELS], dtype=np.float64)


@dataclass(frozen=True)
class SubjectEEG:
    """Per-subject constants of the EEG model.

    mixing:         (32, 32) spatial mixing (Cholesky factor of the channel correlation)
    alpha_topo:     (32,) alpha amplitude weight (posterior 1.0 -> frontal 0.4)
    beta_topo:      (32,) beta amplitude weight (frontal/central 1.0 -> occipital 0.5)
    asym_pattern:   (32,) +1 right frontal, -1 left frontal, +-0.5 FC6/FC5, 0 elsewhere
    blink_weights:  (32,) fraction of the vEOG blink potential seen by each channel
    """

    alpha_freq: float
    scale: float
    asym_offset: float
    mixing: np.ndarray
    alpha_topo: np.ndarray
    beta_topo: np.ndarray
    asym_pattern: np.ndarray
    blink_weights: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator) -> SubjectEEG:
        """A subject with its own alpha peak, overall amplitude and resting asymmetry."""
        pos = _positions()
        dist = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
        mixing = np.linalg.cholesky(np.exp(-dist / 0.05))
        y = pos[:, 1]  # anterior (+) / posterior (-)
        alpha_topo = 0.4 + 0.6 * (y.max() - y) / (y.max() - y.min())
        beta_topo = 0.5 + 0.5 * np.clip((y + 0.06) / 0.06, 0.0, 1.0)
        index = {name: i for i, name in enumerate(DEAP_CHANNELS)}
        asym = np.zeros(len(DEAP_CHANNELS))
        for left, right in zip(FRONTAL_LEFT, FRONTAL_RIGHT):
            asym[index[left]], asym[index[right]] = -1.0, 1.0
        asym[index["FC5"]], asym[index["FC6"]] = -0.5, 0.5
        fpz = np.array([0.0, 0.088, -0.002])  # the eyes sit just below Fpz
        eye_dist = np.linalg.norm(pos - fpz, axis=1)
        blink = np.exp(-eye_dist / 0.04)
        blink *= 0.8 / blink[index["Fp1"]]
        return cls(
            alpha_freq=float(rng.uniform(9.0, 11.0)),
            scale=float(rng.uniform(0.85, 1.15)),
            asym_offset=float(rng.normal(0.0, 0.05)),
            mixing=mixing,
            alpha_topo=alpha_topo,
            beta_topo=beta_topo,
            asym_pattern=asym,
            blink_weights=np.minimum(blink, 0.8),
        )


@dataclass(frozen=True)
class SynthEEG:
    """One session's synthetic EEG and EOG (microvolts, no reference applied).

    eeg:  (32, n) float64 in ``DEAP_CHANNELS`` order
    heog: (n,) float64 horizontal EOG (saccades)
    veog: (n,) float64 vertical EOG (blinks)
    """

    eeg: np.ndarray
    heog: np.ndarray
    veog: np.ndarray


def _shaped_noise(rng: np.random.Generator, shape: tuple[int, int], amp: np.ndarray) -> np.ndarray:
    """(rows, n) Gaussian noise whose amplitude spectrum is ``amp`` ((n // 2 + 1,)), RMS ~1."""
    n = shape[1]
    spectrum = np.fft.rfft(rng.standard_normal(shape), axis=1) * amp
    return np.fft.irfft(spectrum, n=n, axis=1) / np.sqrt(np.mean(amp**2))


def _band(freqs: np.ndarray, low: float, high: float, edge: float = 1.0) -> np.ndarray:
    """Amplitude response 1 inside [low, high] with raised-cosine edges ``edge`` Hz wide."""
    rise = np.clip((freqs - (low - edge)) / edge, 0.0, 1.0)
    fall = np.clip(((high + edge) - freqs) / edge, 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * rise)) * (0.5 - 0.5 * np.cos(np.pi * fall))


def synth_eeg(
    subject: SubjectEEG,
    timeline: StateTimeline,
    blinks: Blinks,
    n_samples: int,
    sfreq: float,
    rng: np.random.Generator,
) -> SynthEEG:
    """Synthesize ``n_samples`` of EEG + EOG at ``sfreq`` for one session (sample 0 = time 0)."""
    n_ch = len(DEAP_CHANNELS)
    times = np.arange(n_samples) / sfreq
    freqs = np.fft.rfftfreq(n_samples, 1.0 / sfreq)
    pink_amp = _band(freqs, 1.0, 45.0, edge=1.0) / np.sqrt(np.maximum(freqs, 0.5))
    alpha_amp = np.exp(-0.5 * ((freqs - subject.alpha_freq) / 1.0) ** 2)
    beta_amp = _band(freqs, *BETA_BAND, edge=2.0)

    pink = subject.mixing @ _shaped_noise(rng, (n_ch, n_samples), pink_amp)
    alpha = subject.mixing @ _shaped_noise(rng, (n_ch, n_samples), alpha_amp)
    beta = subject.mixing @ _shaped_noise(rng, (n_ch, n_samples), beta_amp)

    valence, arousal = timeline.at(times)  # (n,), (n,)
    # The felt state wanders a little within a trial; only where a state is set (not baseline).
    wander = _STATE_JITTER * _shaped_noise(rng, (2, n_samples), _band(freqs, 0.0, 0.2, edge=0.1) + 1e-9)
    valence = valence + np.abs(valence) * wander[0]
    arousal = arousal + np.abs(arousal) * wander[1]
    asym = subject.asym_offset + _VALENCE_ASYM * valence
    # (32, n) gains: half the log-asymmetry on each side, arousal scales all alpha.
    alpha_gain = subject.alpha_topo[:, None] * np.exp(
        0.5 * subject.asym_pattern[:, None] * asym[None, :] - _AROUSAL_ALPHA * arousal[None, :]
    )
    beta_gain = subject.beta_topo[:, None] * np.exp(_AROUSAL_BETA * arousal[None, :])

    blink_wave = blinks.veog(times)
    saccades = _saccades(rng, n_samples, sfreq)
    eeg = subject.scale * (_PINK_RMS * pink + _ALPHA_RMS * alpha_gain * alpha + _BETA_RMS * beta_gain * beta)
    eeg += subject.blink_weights[:, None] * blink_wave[None, :]
    index = {name: i for i, name in enumerate(DEAP_CHANNELS)}
    eeg[index["F7"]] -= 0.3 * saccades
    eeg[index["F8"]] += 0.3 * saccades

    eog_noise = _EOG_NOISE_RMS * _shaped_noise(rng, (2, n_samples), pink_amp)
    return SynthEEG(eeg=eeg, heog=saccades + 0.05 * blink_wave + eog_noise[0], veog=blink_wave + eog_noise[1])


def _saccades(rng: np.random.Generator, n_samples: int, sfreq: float) -> np.ndarray:
    """(n,) horizontal-EOG saccade steps (+-20-60 uV every 0.5-3 s), AC-coupled (tau 2 s)."""
    from scipy.signal import lfilter

    steps = np.zeros(n_samples)
    t = rng.uniform(0.5, 3.0)
    while t * sfreq < n_samples:
        steps[int(t * sfreq)] = rng.choice([-1.0, 1.0]) * rng.uniform(20.0, 60.0)
        t += rng.uniform(0.5, 3.0)
    level = np.cumsum(steps)
    decay = np.exp(-1.0 / (2.0 * sfreq))
    # First-order high-pass: y[n] = decay * (y[n-1] + x[n] - x[n-1]).
    return lfilter([decay, -decay], [1.0, -decay], level)


def synth_peripheral(
    timeline: StateTimeline, n_samples: int, sfreq: float, rng: np.random.Generator
) -> np.ndarray:
    """(6, n) float64 zEMG, tEMG, GSR, Respiration, Plethysmograph, Temperature.

    Plausible shapes, not calibrated units: EMG is 20-60 Hz noise (tEMG grows with arousal),
    GSR a slow level with arousal-driven responses, respiration ~0.3 Hz and a pulse ~1.1 Hz that
    both speed up with arousal, temperature a slow drift around 32 degrees.
    """
    times = np.arange(n_samples) / sfreq
    freqs = np.fft.rfftfreq(n_samples, 1.0 / sfreq)
    _, arousal = timeline.at(times)
    emg_amp = _band(freqs, 20.0, min(60.0, 0.45 * sfreq), edge=3.0)
    emg = _shaped_noise(rng, (2, n_samples), emg_amp)
    z_emg = 4.0 * emg[0]
    t_emg = 5.0 * np.exp(0.3 * arousal) * emg[1]
    slow = _shaped_noise(rng, (3, n_samples), _band(freqs, 0.0, 0.05, edge=0.05) + 1e-9)
    gsr = 2000.0 + 150.0 * slow[0] + 60.0 * np.cumsum(np.maximum(arousal, 0.0)) / sfreq
    resp_phase = 2 * np.pi * np.cumsum(0.3 * (1.0 + 0.15 * arousal)) / sfreq
    respiration = 800.0 * np.sin(resp_phase + rng.uniform(0, 2 * np.pi)) + 50.0 * slow[1]
    pulse_phase = 2 * np.pi * np.cumsum(1.1 * (1.0 + 0.1 * arousal)) / sfreq
    pleth = 1500.0 * np.maximum(np.sin(pulse_phase), 0.0) ** 2 + 100.0 * np.sin(pulse_phase / 2)
    temperature = 32.0 + 0.2 * slow[2] + 0.001 * times
    return np.stack([z_emg, t_emg, gsr, respiration, pleth, temperature])
