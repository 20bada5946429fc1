"""Line noise and per-window quality flags.

Line noise: DEAP's training data has none (low-passed at 45 Hz), so mains hum left in a user's
recording is a signal the model never saw; it is notched at the frequency the spec names, the
file states or the recording shows (:func:`detect_line_freq`), and its share of the power is
reported before and after preprocessing (:func:`line_share`).

Flags: windows that overlap a ``BAD_*`` annotation are flagged (``bad-span``) and windows that
cross a gap (``BAD_ACQ_SKIP``) are dropped (:func:`window_spans`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import mne

__all__ = ["LINE_FREQS", "detect_line_freq", "line_peak", "mean_psd_of", "line_share", "line_share_of", "window_spans"]

LINE_FREQS: tuple[float, ...] = (50.0, 60.0)
#: A peak this many times the neighbouring spectrum's median counts as mains hum.
PEAK_RATIO = 5.0
GAP = "BAD_ACQ_SKIP"
#: Welch segments averaged at a time by :func:`mean_psd_of` (about 17 min at 128 Hz).
PSD_BLOCK_SEGMENTS = 512


def _psd(data: np.ndarray, sfreq: float) -> tuple[np.ndarray, np.ndarray]:
    """data (C, T) -> frequencies (F,), mean PSD over channels (F,) (Welch, 4 s segments)."""
    from scipy.signal import welch

    nper = int(min(data.shape[1], 4 * sfreq))
    # One channel at a time: Welch's segments of all channels at once are twice the recording.
    total = None
    for row in data:
        freqs, psd = welch(row, fs=sfreq, nperseg=nper)
        total = psd if total is None else total + psd
    assert total is not None
    return freqs, total / data.shape[0]


def mean_psd_of(work: mne.io.BaseRaw, channels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`_psd` of ``channels`` of a recording (``BAD_*`` spans left out), read one channel
    at a time: frequencies (F,), mean PSD (F,) and the rate, without a (C, T) copy. A recording
    of more than :data:`PSD_BLOCK_SEGMENTS` Welch segments is read that many segments at a time
    (each block holds whole segments of the one-pass grid, so the mean over all segments is
    Welch's own, to rounding): Welch's temporaries stay a block long (they were ~5 copies of a
    channel, 0.4 GB for 24 h)."""
    from scipy.signal import welch

    from ..scratch import release
    from .artefacts import good_data, kept_samples

    sfreq = float(work.info["sfreq"])
    keep = kept_samples(work)
    nper = int(min(keep.size, 4 * sfreq))
    step = nper - nper // 2  # Welch's default overlap: half a segment
    n_segments = (keep.size - nper) // step + 1
    total = None
    for channel in channels:
        if n_segments <= PSD_BLOCK_SEGMENTS:
            freqs, psd = _psd(good_data(work, [channel]), sfreq)
        else:
            psd = 0.0
            for s0 in range(0, n_segments, PSD_BLOCK_SEGMENTS):
                s1 = min(s0 + PSD_BLOCK_SEGMENTS, n_segments)
                idx = keep[s0 * step : (s1 - 1) * step + nper]  # whole segments of the one-pass grid
                row = work.get_data(picks=[channel], start=int(idx[0]), stop=int(idx[-1]) + 1)[0, idx - idx[0]]
                release(getattr(work, "_data", None))
                freqs, part = welch(row, fs=sfreq, nperseg=nper)
                psd = psd + part * (s1 - s0)
            psd = psd / n_segments
        total = psd if total is None else total + psd
    assert total is not None
    return freqs, total / len(channels), sfreq


def detect_line_freq(data: np.ndarray, sfreq: float) -> float | None:
    """50 or 60 when the spectrum of ``data`` (C, T) has a clear peak there, else None."""
    return line_peak(*_psd(data, sfreq), sfreq)


def line_peak(freqs: np.ndarray, psd: np.ndarray, sfreq: float) -> float | None:
    """50 or 60 when the mean PSD (F,) over ``freqs`` (F,) has a clear peak there, else None."""
    best, best_ratio = None, PEAK_RATIO
    for f0 in LINE_FREQS:
        if f0 + 5 >= sfreq / 2:
            continue
        peak = psd[np.abs(freqs - f0) <= 0.5].mean()
        around = psd[(np.abs(freqs - f0) >= 2) & (np.abs(freqs - f0) <= 5)]
        ratio = peak / max(np.median(around), 1e-300)
        if ratio > best_ratio:
            best, best_ratio = f0, ratio
    return best


def line_share(data: np.ndarray, sfreq: float, f0: float, band: tuple[float, float]) -> float | None:
    """Share of the power in ``band`` (Hz) that lies within ``f0`` +- 1 Hz; data (C, T).

    None when ``f0`` lies outside the band or above Nyquist.
    """
    hi = min(band[1], sfreq / 2)
    if not band[0] < f0 < hi:
        return None
    freqs, psd = _psd(data, sfreq)
    inside = (freqs >= band[0]) & (freqs <= hi)
    total = psd[inside].sum()
    return float(psd[inside & (np.abs(freqs - f0) <= 1.0)].sum() / total) if total > 0 else None


def line_share_of(work: mne.io.BaseRaw, channels: Sequence[str], f0: float, band: tuple[float, float]) -> float | None:
    """:func:`line_share` of ``channels`` of a recording (``BAD_*`` spans left out), read one
    channel at a time: the same number without a (C, T) copy."""
    hi = min(band[1], float(work.info["sfreq"]) / 2)
    if not band[0] < f0 < hi:
        return None
    freqs, psd, _ = mean_psd_of(work, channels)
    inside = (freqs >= band[0]) & (freqs <= hi)
    power = psd[inside].sum()
    return float(psd[inside & (np.abs(freqs - f0) <= 1.0)].sum() / power) if power > 0 else None


def window_spans(
    starts: np.ndarray, window_s: float, onsets: Sequence[float], durations: Sequence[float], descriptions: Sequence[str]
) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """For each window [start, start + window_s): whether it crosses a gap, and its BAD_* spans.

    Returns keep (W,) bool (False: overlaps ``BAD_ACQ_SKIP``) and, per window, the descriptions
    of the other ``BAD_*`` annotations it overlaps.
    """
    starts = np.asarray(starts, dtype=np.float64)
    ends = starts + window_s
    keep = np.ones(starts.size, bool)
    flags: list[list[str]] = [[] for _ in range(starts.size)]
    for onset, duration, desc in zip(onsets, durations, descriptions):
        if not desc.upper().startswith("BAD"):
            continue
        overlap = (starts < onset + max(duration, 1e-9)) & (ends > onset)
        if desc.upper() == GAP:
            keep &= ~overlap
        else:
            for i in np.flatnonzero(overlap):
                if desc not in flags[i]:
                    flags[i].append(desc)
    return keep, [tuple(f) for f in flags]
