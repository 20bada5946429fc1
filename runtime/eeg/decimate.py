"""Early decimation: a long high-rate recording read in chunks and brought to a modest rate
before any full-length copy exists.

Preprocessing makes several full-length float64 copies of the picked channels (units, the
reference, filters, ICA): at 2048 Hz an hour of 32 channels is 1.9 GB a copy. The model needs
128 Hz, so a recording whose channels would take more than :data:`MAX_FULL_RATE_BYTES` at its own
rate is read :data:`CHUNK_S` seconds at a time (MNE reads only that part of the file) and
decimated by an integer factor to the lowest rate at or above :data:`INTERMEDIATE_SFREQ`
(anti-aliased, polyphase FIR: ``scipy.signal.resample_poly``). Peak memory then follows the
intermediate rate, whatever the file's rate and length.

What needs the raw samples is done on them, chunk by chunk, before the decimation:

- clipping: runs at a channel's extreme codes (:func:`~.artefacts.clipped_spans`) are found on
  the raw samples and become ``BAD_clipped`` annotations (a filter would hide the flat tops);
- NaN runs: set to 0 before filtering and annotated ``BAD_ACQ_SKIP`` over the filter's reach
  (so the windows over them are dropped, as with any gap); channels NaN throughout stay NaN.

Chunks overlap by a whole number of output samples beyond the filter's half-length and each
channel's mean is taken out before the (zero-padded) filter, so the result equals a one-shot
``resample_poly`` of the whole recording (mean removed, zero padding) to rounding (a test pins it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .artefacts import CLIP_DESCRIPTION, CLIP_MERGE_S, CLIP_MIN_SAMPLES, CLIP_MIN_S, runs

if TYPE_CHECKING:
    import mne

__all__ = ["CHUNK_S", "INTERMEDIATE_SFREQ", "MAX_FULL_RATE_BYTES", "decimation_factor", "decimate_early"]

#: Recordings whose channels take more than this at their own rate (float64) are decimated early.
MAX_FULL_RATE_BYTES = 256 * 2**20
#: The lowest intermediate rate (Hz): mains hum (50/60 Hz) stays below its Nyquist frequency, so it
#: can still be detected and notched.
INTERMEDIATE_SFREQ = 256.0
#: Seconds read at a time.
CHUNK_S = 60.0
# resample_poly's default filter: half-length 10 * factor input samples.
_HALF_TAPS = 10


def decimation_factor(n_times: int, n_channels: int, sfreq: float) -> int:
    """The integer factor that brings ``sfreq`` to at least :data:`INTERMEDIATE_SFREQ`; 1 when
    the recording is small enough to keep at its own rate (or the rate already low)."""
    if n_times * n_channels * 8 <= MAX_FULL_RATE_BYTES:
        return 1
    return max(1, int(sfreq // INTERMEDIATE_SFREQ))


def decimate_early(
    raw: mne.io.BaseRaw,
    factor: int,
    *,
    keep: Sequence[str] | None = None,
    clip_channels: Sequence[str] = (),
    chunk_s: float = CHUNK_S,
    notes: list[str] | None = None,
) -> mne.io.RawArray:
    """``raw`` (preloaded or not) at ``sfreq / factor``: the channels named in ``keep`` (default:
    every channel but stim channels), read
    ``chunk_s`` seconds at a time. Channel names, types, unit fields, bad channels, line
    frequency and annotations are kept; clipping found on the raw samples of ``clip_channels``
    (the EEG channels in use; constant ones are bad channels, not clipping) and NaN runs are
    added as annotations (see the module docstring)."""
    import mne
    from scipy.signal import resample_poly

    sfreq = float(raw.info["sfreq"])
    picks = [
        i for i, (name, kind) in enumerate(zip(raw.ch_names, raw.get_channel_types()))
        if (name in keep if keep is not None else kind != "stim")
    ]  # fmt: skip
    n_in = raw.n_times
    n_out = -(-n_in // factor)
    pad = (_HALF_TAPS + 1) * factor  # whole output samples beyond the filter's reach
    step = max(int(chunk_s * sfreq) // factor, 1) * factor
    out = np.empty((len(picks), n_out))
    finite_any = np.zeros(len(picks), bool)
    nonfinite = np.zeros(n_in, bool)
    extremes, offset = _extremes(raw, picks, step)
    at_extreme: list[list[tuple[int, int]]] = [[] for _ in picks]
    for start in range(0, n_in, step):
        stop = min(start + step, n_in)
        lo, hi = max(start - pad, 0), min(stop + pad, n_in)
        chunk = raw.get_data(picks=picks, start=lo, stop=hi)  # (C, chunk) volts
        bad = ~np.isfinite(chunk)
        finite_any |= ~bad.all(axis=1)
        inner = slice(start - lo, stop - lo)
        nonfinite[start:stop] = bad[:, inner].any(axis=0)
        for c, (cmin, cmax) in enumerate(extremes):
            if raw.ch_names[picks[c]] not in clip_channels or not cmin < cmax:
                continue
            row = chunk[c, inner]
            for a, b in runs((row == cmax) | (row == cmin)):
                at_extreme[c].append((start + a, start + b))
        chunk -= offset[:, None]
        chunk[bad] = 0.0
        # Zero padding around the channel's mean: the filter sees the same samples whatever the
        # chunk (a padding fitted to each chunk would change the result at the recording's ends).
        y = resample_poly(chunk, 1, factor, axis=1) + offset[:, None]  # (C, ceil(chunk / factor))
        first = (start - lo) // factor
        n = -(-(stop - start) // factor)  # output samples of [start, stop)
        out[:, start // factor : start // factor + n] = y[:, first : first + n]
    out[~finite_any] = np.nan
    info = mne.create_info([raw.ch_names[i] for i in picks], sfreq / factor, [raw.get_channel_types()[i] for i in picks])
    with info._unlock():
        info["line_freq"] = raw.info.get("line_freq")
    new = mne.io.RawArray(out, info, verbose="error")
    new.info["bads"] = [b for b in raw.info["bads"] if b in new.ch_names]
    new._orig_units = dict(getattr(raw, "_orig_units", {}) or {})
    ann = raw.annotations
    shift = raw.first_time if ann.orig_time is not None else 0.0
    annotations = mne.Annotations(ann.onset - shift, ann.duration, ann.description, orig_time=None)
    reach = pad / sfreq
    for a, b in runs(nonfinite):
        onset = max(a / sfreq - reach, 0.0)
        annotations.append(onset, min(b / sfreq + reach, n_in / sfreq) - onset, "BAD_ACQ_SKIP")
    clip = _clip_spans(at_extreme, sfreq)
    for a, b in clip:  # widened by the filter's reach: the bridge then starts from clean samples
        onset = max(a / sfreq - reach, 0.0)
        annotations.append(onset, min(b / sfreq + reach, n_in / sfreq) - onset, CLIP_DESCRIPTION)
    new.set_annotations(annotations)
    if notes is not None:
        notes.append(
            f"decimated early by {factor} ({sfreq:g} -> {sfreq / factor:g} Hz, read {chunk_s:g} s at a time) "
            "to bound memory" + (f"; {len(clip)} clipping span(s) found on the raw samples" if clip else "")
        )
    return new


def _extremes(raw: mne.io.BaseRaw, picks: list[int], step: int) -> tuple[list[tuple[float, float]], np.ndarray]:
    """Per channel, (min, max) of its finite samples and their mean (0 when none), read chunk by chunk."""
    lo = np.full(len(picks), np.inf)
    hi = np.full(len(picks), -np.inf)
    total = np.zeros(len(picks))
    count = np.zeros(len(picks))
    for start in range(0, raw.n_times, step):
        chunk = raw.get_data(picks=picks, start=start, stop=min(start + step, raw.n_times))
        finite = np.isfinite(chunk)
        lo = np.minimum(lo, np.where(finite, chunk, np.inf).min(axis=1))
        hi = np.maximum(hi, np.where(finite, chunk, -np.inf).max(axis=1))
        total += np.where(finite, chunk, 0.0).sum(axis=1)
        count += finite.sum(axis=1)
    return list(zip(lo.tolist(), hi.tolist())), total / np.maximum(count, 1)


def _clip_spans(at_extreme: list[list[tuple[int, int]]], sfreq: float) -> list[tuple[int, int]]:
    """Runs at a channel's extreme (joined across chunk borders) long enough to be clipping,
    merged across channels as :func:`~.artefacts.clipped_spans` does."""
    n_min = max(int(math.ceil(CLIP_MIN_S * sfreq)), CLIP_MIN_SAMPLES)
    spans: list[tuple[int, int]] = []
    for channel in at_extreme:
        joined: list[tuple[int, int]] = []
        for a, b in channel:
            if joined and joined[-1][1] == a:
                joined[-1] = (joined[-1][0], b)
            else:
                joined.append((a, b))
        spans.extend((a, b) for a, b in joined if b - a >= n_min)
    merged: list[tuple[int, int]] = []
    gap = int(round(CLIP_MERGE_S * sfreq))
    for a, b in sorted(spans):
        if merged and a - merged[-1][1] < gap:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged
