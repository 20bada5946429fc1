"""What happens when in one synthetic session: emotional state and blinks, as functions of time.

The EEG (at its sampling rate) and the face video (at its frame rate) evaluate the same
timeline on their own time grids, which is what keeps the two modalities aligned: video time 0
is EEG sample 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Blinks", "StateTimeline", "draw_blinks"]


@dataclass(frozen=True)
class StateTimeline:
    """Piecewise-constant emotional drive with smooth (raised-cosine) transitions.

    starts, ends:      (S,) float64 segment bounds in seconds; outside every segment the drive is 0
                       (neutral, e.g. DEAP's pre-trial baseline)
    valence, arousal:  (S,) float64 signed drives in [-1, 1] (see ``ratings.rating_drive``)
    ramp_s:            length of each transition, centred on the segment bound
    """

    starts: np.ndarray
    ends: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    ramp_s: float = 1.0

    def at(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(valence, arousal) drives at ``times`` (s): two (n,) float64 arrays."""
        times = np.asarray(times, dtype=np.float64)
        valence = np.zeros_like(times)
        arousal = np.zeros_like(times)
        for start, end, v, a in zip(self.starts, self.ends, self.valence, self.arousal):
            inside = (times >= start) & (times < end)
            valence = np.where(inside, v, valence)
            arousal = np.where(inside, a, arousal)
        # Convolving with a raised cosine turns each step into a smooth ramp of length ramp_s.
        if self.ramp_s > 0 and times.size > 1:
            dt = float(np.median(np.diff(times)))
            half = max(1, int(round(self.ramp_s / dt / 2)))
            kernel = np.hanning(2 * half + 1)
            kernel /= kernel.sum()
            valence = _smooth(valence, kernel)
            arousal = _smooth(arousal, kernel)
        return valence, arousal


def _smooth(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    half = kernel.size // 2
    padded = np.pad(x, half, mode="edge")
    return np.convolve(padded, kernel, mode="valid")


@dataclass(frozen=True)
class Blinks:
    """Eye blinks of one session.

    onsets, durations: (k,) float64 seconds
    amplitudes:        (k,) float64 peak vertical-EOG deflection in microvolts
    """

    onsets: np.ndarray
    durations: np.ndarray
    amplitudes: np.ndarray

    def closure(self, times: np.ndarray) -> np.ndarray:
        """(n,) float64 eyelid closure in [0, 1] at ``times`` (s): fast close, slower reopening."""
        times = np.asarray(times, dtype=np.float64)
        out = np.zeros_like(times)
        for onset, duration in zip(self.onsets, self.durations):
            phase = (times - onset) / duration
            inside = (phase >= 0) & (phase < 1)
            if not inside.any():
                continue
            p = phase[inside]
            # 40 % closing, 60 % opening, each a half cosine.
            closing = 0.5 - 0.5 * np.cos(np.pi * p / 0.4)
            opening = 0.5 + 0.5 * np.cos(np.pi * (p - 0.4) / 0.6)
            out[inside] = np.maximum(out[inside], np.where(p < 0.4, closing, opening))
        return out

    def veog(self, times: np.ndarray) -> np.ndarray:
        """(n,) float64 blink potential on the vertical EOG in microvolts at ``times`` (s)."""
        times = np.asarray(times, dtype=np.float64)
        out = np.zeros_like(times)
        for i, amplitude in enumerate(self.amplitudes):
            single = Blinks(self.onsets[i : i + 1], self.durations[i : i + 1], self.amplitudes[i : i + 1])
            out += amplitude * single.closure(times)
        return out


def draw_blinks(rng: np.random.Generator, duration_s: float) -> Blinks:
    """Blinks every 3-6 s (uniform), 200-400 ms long, 150-400 uV on the vertical EOG."""
    onsets: list[float] = []
    t = rng.uniform(0.3, 3.0)
    while t < duration_s - 0.4:
        onsets.append(t)
        t += rng.uniform(3.0, 6.0)
    k = len(onsets)
    return Blinks(
        onsets=np.asarray(onsets, dtype=np.float64),
        durations=rng.uniform(0.2, 0.4, k),
        amplitudes=rng.uniform(150.0, 400.0, k),
    )
