"""Early resampling: a long recording read in chunks and brought to the model's rate before any
full-length copy exists.

Preprocessing needs whole-recording decisions before it filters (which channels are bad, the
mains frequency, the ``BAD_*`` spans to bridge), so one full-length copy of the picked channels
is kept; at a file's own rate (2048 Hz: 1.9 GB per hour of 32 channels as float64) that copy
alone would exceed the memory target. A recording whose channels take more than
:data:`MAX_FULL_RATE_BYTES` at its own rate is therefore read :data:`CHUNK_S` seconds at a time
(MNE reads only that part of the file) and resampled straight to the model's rate
(``EEGSpec.sfreq``, 128 Hz) by the rational factor ``up / down`` (anti-aliased polyphase FIR,
``scipy.signal.resample_poly``). The rest of preprocessing (reference, notch, band-pass, ICA,
windows) then runs on that copy in place, whatever the file's rate: 118 MB per hour of 32
channels as float64, 3.7 MB per EOG channel, plus the float32 windows, 59 MB per hour; beyond
:data:`~.scratch.MAX_IN_MEMORY_BYTES` the copy (``out``) and the windows live in a scratch file
(:mod:`.scratch`), so peak memory does not grow with the length. The mains notch then runs at
128 Hz (50 and 60 Hz lie below its Nyquist; their harmonics go with the anti-alias filter).

What needs the raw samples is done on them, chunk by chunk, before the resampling:

- clipping: runs at a channel's extreme codes (:func:`~.artefacts.clipped_spans`) are found on
  the raw samples and become ``BAD_clipped`` annotations (a filter would hide the flat tops);
- NaN runs: set to 0 before filtering and annotated ``BAD_ACQ_SKIP`` over the filter's reach
  (so the windows over them are dropped, as with any gap); channels NaN throughout stay NaN.

Chunks start on multiples of ``down`` input samples and overlap by whole output samples beyond
the filter's half-length, and each channel's mean is taken out before the (zero-padded) filter,
so the result equals a one-shot ``resample_poly`` of the whole recording (mean removed, zero
padding) to rounding, whatever the chunk size (a test pins it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from ..scratch import release
from .artefacts import CLIP_DESCRIPTION, CLIP_MERGE_S, CLIP_MIN_SAMPLES, CLIP_MIN_S, runs

if TYPE_CHECKING:
    import mne

__all__ = ["CHUNK_S", "MAX_FULL_RATE_BYTES", "early_ratio", "resample_early"]

#: Recordings whose channels take more than this at their own rate (float64) are resampled early.
MAX_FULL_RATE_BYTES = 256 * 2**20
#: Seconds read at a time.
CHUNK_S = 60.0
#: Largest ``up`` or ``down`` of the rational factor (a longer polyphase filter beyond it).
MAX_RATIO_TERM = 1000
# resample_poly's default filter: half-length 10 * max(up, down) samples of the upsampled signal.
_HALF_TAPS = 10


def early_ratio(n_times: int, n_channels: int, sfreq: float, target: float) -> tuple[int, int] | None:
    """``(up, down)`` with ``sfreq * up / down`` at (or, for an odd rate, nearest to) ``target``
    Hz when the recording's ``n_channels`` take more than :data:`MAX_FULL_RATE_BYTES` at
    ``sfreq`` as float64; None when it is small enough to keep at its own rate."""
    if n_times * n_channels * 8 <= MAX_FULL_RATE_BYTES:
        return None
    ratio = Fraction(target / sfreq).limit_denominator(MAX_RATIO_TERM)
    while max(ratio.numerator, ratio.denominator) > MAX_RATIO_TERM:
        ratio = ratio.limit_denominator(ratio.denominator // 2)
    return ratio.numerator, ratio.denominator


def resample_early(
    raw: mne.io.BaseRaw,
    up: int,
    down: int,
    *,
    keep: Sequence[str] | None = None,
    clip_channels: Sequence[str] = (),
    chunk_s: float | None = None,
    out: np.ndarray | None = None,
    notes: list[str] | None = None,
) -> mne.io.RawArray:
    """``raw`` (preloaded or not) at ``sfreq * up / down``: the channels named in ``keep``, in
    that order (default: every channel but stim channels, in the file's order), read ``chunk_s``
    seconds (default :data:`CHUNK_S`) at a time. Channel names, types, unit fields, bad channels, line frequency and
    annotations are kept; clipping found on the raw samples of ``clip_channels`` (the EEG
    channels in use; constant ones are bad channels, not clipping) and NaN runs are added as
    annotations (see the module docstring).

    out: (len(keep), ceil(n_times * up / down)) float64, C-contiguous, to write into (the
    result's data is then ``out`` itself, no copy); allocated when None.
    """
    import mne
    from scipy.signal import resample_poly

    sfreq = float(raw.info["sfreq"])
    chunk_s = CHUNK_S if chunk_s is None else chunk_s
    types = raw.get_channel_types()
    if keep is None:
        picks = [i for i, kind in enumerate(types) if kind != "stim"]
    else:
        index = {name: i for i, name in enumerate(raw.ch_names)}
        picks = [index[name] for name in keep]
    n_in = raw.n_times
    n_out = -(-n_in * up // down)
    # The filter reaches 10 * max(up, down) / up input samples either side: pad by whole
    # multiples of `down` beyond it, so that every chunk starts on an output sample.
    reach = _HALF_TAPS * max(up, down) / up
    pad = (int(math.ceil(reach / down)) + 1) * down
    step = max(int(chunk_s * sfreq) // down, 1) * down
    if out is None:
        out = np.empty((len(picks), n_out))
    assert out.shape == (len(picks), n_out) and out.dtype == np.float64 and out.flags.c_contiguous, out.shape
    finite_any = np.zeros(len(picks), bool)
    nonfinite: list[tuple[int, int]] = []  # runs, not a (n_in,) mask: nothing grows with the length
    extremes, offset = _extremes(raw, picks, step)
    at_extreme: list[list[tuple[int, int]]] = [[] for _ in picks]
    for start in range(0, n_in, step):
        stop = min(start + step, n_in)
        lo, hi = max(start - pad, 0), min(stop + pad, n_in)
        chunk = raw.get_data(picks=picks, start=lo, stop=hi)  # (C, hi - lo) volts
        bad = ~np.isfinite(chunk)
        finite_any |= ~bad.all(axis=1)
        inner = slice(start - lo, stop - lo)
        nonfinite += [(start + a, start + b) for a, b in runs(bad[:, inner].any(axis=0))]
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
        y = resample_poly(chunk, up, down, axis=1)  # (C, ceil((hi - lo) * up / down))
        y += offset[:, None]
        first = (start - lo) * up // down
        a = start * up // down  # an output sample: start is a multiple of down
        b = n_out if stop == n_in else stop * up // down
        out[:, a:b] = y[:, first : first + b - a]
        release(out)  # a scratch-file buffer: the chunk written leaves the resident set
    out[~finite_any] = np.nan
    new_sfreq = sfreq * up / down
    info = mne.create_info([raw.ch_names[i] for i in picks], new_sfreq, [types[i] for i in picks])
    with info._unlock():
        info["line_freq"] = raw.info.get("line_freq")
    new = mne.io.RawArray(out, info, verbose="error")
    assert np.shares_memory(new._data, out)
    new.info["bads"] = [b for b in raw.info["bads"] if b in new.ch_names]
    new._orig_units = dict(getattr(raw, "_orig_units", {}) or {})
    ann = raw.annotations
    shift = raw.first_time if ann.orig_time is not None else 0.0
    annotations = mne.Annotations(ann.onset - shift, ann.duration, ann.description, orig_time=None)
    widen = pad / sfreq
    for a, b in _join(nonfinite):
        onset = max(a / sfreq - widen, 0.0)
        annotations.append(onset, min(b / sfreq + widen, n_in / sfreq) - onset, "BAD_ACQ_SKIP")
    clip = _clip_spans(at_extreme, sfreq)
    for a, b in clip:  # widened by the filter's reach: the bridge then starts from clean samples
        onset = max(a / sfreq - widen, 0.0)
        annotations.append(onset, min(b / sfreq + widen, n_in / sfreq) - onset, CLIP_DESCRIPTION)
    new.set_annotations(annotations)
    if notes is not None:
        notes.append(
            f"resampled early ({sfreq:g} -> {new_sfreq:g} Hz, polyphase {up}/{down}, read {chunk_s:g} s at a "
            "time) to bound memory" + (f"; {len(clip)} clipping span(s) found on the raw samples" if clip else "")
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
    spans = [(a, b) for channel in at_extreme for a, b in _join(channel) if b - a >= n_min]
    merged: list[tuple[int, int]] = []
    gap = int(round(CLIP_MERGE_S * sfreq))
    for a, b in sorted(spans):
        if merged and a - merged[-1][1] < gap:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _join(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Ordered ``[start, stop)`` runs with the ones that touch (across chunk borders) joined."""
    joined: list[tuple[int, int]] = []
    for a, b in spans:
        if joined and joined[-1][1] == a:
            joined[-1] = (joined[-1][0], b)
        else:
            joined.append((a, b))
    return joined
