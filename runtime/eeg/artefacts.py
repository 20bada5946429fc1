"""Artefacts found in the raw samples, before anything mixes channels or time.

Each kind is either a bad *channel* (the whole channel is unusable: interpolated with
``--interpolate-missing`` or refused, naming it) or a bad *span* (a stretch of time: annotated,
left out of the ICA fit, its windows flagged or dropped):

- non-finite samples (:func:`nan_runs`): a channel that is NaN throughout is a bad channel; NaN
  runs (how XDF importers fill dropouts) are recording gaps: bridged by a straight line and
  annotated ``BAD_ACQ_SKIP`` like an EDF+D gap, so the windows over them are dropped;
- constant channels (:func:`constant_channels`): exactly zero is the electrode the others were
  recorded against (a stored reference, e.g. EGI's vertex Cz); a constant *non-zero* value is a
  stuck or railed electrode (the ADC's top code), never a reference;
- clipping (:func:`clipped_spans`): runs of identical samples at a channel's own minimum or
  maximum (the amplifier's or ADC's limit) lasting :data:`CLIP_MIN_S` or more; annotated
  ``BAD_clipped``.

Filtering a bad span smears what it holds (an electrode pop, a rail step) into the clean
neighbouring windows; :func:`bridge_spans` replaces a span's samples by the straight line between
its edges before any filter runs, so nothing of it reaches a clean window.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..scratch import release

if TYPE_CHECKING:
    import mne

__all__ = [
    "MNE_QUIET",
    "bad_span_samples",
    "good_data",
    "good_chunks",
    "good_sample",
    "kept_samples",
    "relative_annotations",
    "CLIP_DESCRIPTION",
    "CLIP_MERGE_S",
    "CLIP_MIN_S",
    "ZERO_V",
    "bridge_spans",
    "clipped_spans",
    "constant_channels",
    "nan_runs",
    "runs",
]

#: MNE's log level for every call here: its messages become notes, not log lines.
MNE_QUIET = "error"
#: A constant channel whose absolute value is at most this (volts) is a stored reference (zeros).
ZERO_V = 1e-9
#: Identical samples at a channel's minimum or maximum for this long (s) are clipping.
CLIP_MIN_S = 0.02
#: Clipped runs closer than this (s) form one span.
CLIP_MERGE_S = 0.5
#: At least this many identical samples, whatever the rate (at 128 Hz: 3 samples, 23 ms).
CLIP_MIN_SAMPLES = 3
CLIP_DESCRIPTION = "BAD_clipped"
#: Seconds of the recording marked at a time by :func:`kept_samples`.
KEPT_CHUNK_S = 600.0


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(T,) bool -> the ``[start, stop)`` sample ranges where ``mask`` is True, in order."""
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def nan_runs(data: np.ndarray, also: np.ndarray | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """data: (C, T). Returns (C,) bool, True for channels non-finite throughout, and the
    ``[start, stop)`` runs where any *other* channel, or any row of ``also`` ((C', T), e.g. the
    EOG channels), is non-finite; no runs when every channel of ``data`` is dead. Read a row at
    a time (a scratch-file array released after each, :mod:`..scratch`): no (C, T) temporary."""
    dead = np.zeros(len(data), bool)
    for i, row in enumerate(data):
        dead[i] = not np.isfinite(row).any()
        release(data)
    if dead.all():
        return dead, []
    bad = np.zeros(data.shape[1], bool)  # (T,) 0.5 MB per hour at 128 Hz
    for row in [*(r for r, d in zip(data, dead) if not d), *(() if also is None else also)]:
        bad |= ~np.isfinite(row)
        release(row)
    return dead, runs(bad)


def constant_channels(
    data: np.ndarray, flat_std: float, rows: Sequence[int] | None = None
) -> tuple[list[int], list[int]]:
    """data: (C, T) volts. Rows (of ``rows``, default all) whose standard deviation is below
    ``flat_std``: (zero, stuck) - ``zero`` holds rows within :data:`ZERO_V` of 0 V (a stored
    reference electrode), ``stuck`` rows sitting at another constant value (a railed or dead
    electrode)."""
    zero, stuck = [], []
    for i in range(data.shape[0]) if rows is None else rows:
        row = data[i]
        if row.std() < flat_std:
            (zero if np.abs(row).max() <= ZERO_V else stuck).append(i)
        release(data)
    return zero, stuck


def clipped_spans(
    data: np.ndarray, sfreq: float, rows: Sequence[int] | None = None
) -> tuple[list[tuple[int, int]], list[int]]:
    """Spans where any of ``rows`` (default: all) of data (C, T) sits clipped at its own minimum
    or maximum, and the rows that clip.

    A run counts when its samples are identical, equal the channel's extreme and last at least
    ``max(CLIP_MIN_S * sfreq, CLIP_MIN_SAMPLES)`` samples; runs closer than :data:`CLIP_MERGE_S`
    merge. Real EEG spends a millisecond or two within one quantisation step of a peak; a
    saturated amplifier stays there.
    """
    n_min = max(int(np.ceil(CLIP_MIN_S * sfreq)), CLIP_MIN_SAMPLES)
    mask = np.zeros(data.shape[1], bool)
    clipping: list[int] = []
    for i in range(data.shape[0]) if rows is None else rows:
        row = data[i]
        hit = False
        for extreme in (row.max(), row.min()):
            for a, b in runs(row == extreme):
                if b - a >= n_min:
                    mask[a:b] = True
                    hit = True
        if hit:
            clipping.append(int(i))
        release(data)
    spans = runs(mask)
    merged: list[tuple[int, int]] = []
    gap = int(round(CLIP_MERGE_S * sfreq))
    for a, b in spans:
        if merged and a - merged[-1][1] < gap:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged, clipping


def bridge_spans(data: np.ndarray, spans: Sequence[tuple[int, int]]) -> None:
    """Replace ``data[:, a:b]`` (C, T), in place, by the straight line from sample ``a - 1`` to
    sample ``b`` for each span (the nearest sample where the span touches an end); non-finite
    edge values are taken as 0."""
    n = data.shape[1]
    for a, b in spans:
        a, b = max(int(a), 0), min(int(b), n)
        if b <= a:
            continue
        left = data[:, a - 1] if a > 0 else (data[:, b] if b < n else np.zeros(data.shape[0]))
        right = data[:, b] if b < n else left
        left, right = np.nan_to_num(left), np.nan_to_num(right)
        ramp = np.linspace(0.0, 1.0, b - a + 2)[1:-1]
        data[:, a:b] = left[:, None] + (right - left)[:, None] * ramp[None, :]


def relative_annotations(raw: mne.io.BaseRaw) -> mne.Annotations:
    """``raw``'s annotations with onsets in seconds from its first sample, no orig_time."""
    import mne

    ann = raw.annotations
    shift = raw.first_time if ann.orig_time is not None else 0.0
    return mne.Annotations(ann.onset - shift, ann.duration, ann.description, orig_time=None)


def bad_span_samples(annotations: mne.Annotations, sfreq: float, n_times: int) -> list[tuple[int, int]]:
    """The ``[start, stop)`` samples of every ``BAD_*`` annotation (gaps included), clipped to the data."""
    spans = []
    for onset, duration, desc in zip(annotations.onset, annotations.duration, annotations.description):
        if desc.upper().startswith("BAD"):
            a = max(int(np.floor(onset * sfreq)), 0)
            b = min(int(np.ceil((onset + duration) * sfreq)), n_times)
            if b > a:
                spans.append((a, b))
    return spans


def good_data(work: mne.io.BaseRaw, channels: Sequence[str]) -> np.ndarray:
    """(C, T') volts of ``channels`` with BAD_* spans (gaps, artefacts) left out."""
    data = work.get_data(picks=list(channels), reject_by_annotation="omit", verbose=MNE_QUIET)
    if not data.shape[1]:
        data = work.get_data(picks=list(channels))
    release(getattr(work, "_data", None))
    return data


def kept_samples(work: mne.io.BaseRaw) -> np.ndarray:
    """(T',) indices of the samples outside ``BAD_*`` spans, the samples MNE's
    ``reject_by_annotation='omit'`` keeps (all of them when every sample is in a span, as
    :func:`good_data`). Marked :data:`KEPT_CHUNK_S` at a time and int32 below 2**31 samples
    (peak memory: 1.8 MB per hour at 128 Hz, no full-length float copy)."""
    n = work.n_times
    dtype = np.int32 if n < 2**31 else np.int64
    step = max(1, int(KEPT_CHUNK_S * work.info["sfreq"]))
    parts = []
    for a in range(0, n, step):
        marked = work.get_data(
            picks=[work.ch_names[0]], start=a, stop=min(a + step, n), reject_by_annotation="NaN", verbose=MNE_QUIET
        )[0]  # fmt: skip
        release(getattr(work, "_data", None))
        parts.append(np.flatnonzero(~np.isnan(marked)).astype(dtype) + dtype(a))
    keep = np.concatenate(parts)
    return keep if keep.size else np.arange(n, dtype=dtype)


def good_sample(work: mne.io.BaseRaw, channel: str, max_samples: int, keep: np.ndarray | None = None) -> np.ndarray:
    """(1, T'') volts of ``channel`` outside ``BAD_*`` spans (``keep``, default
    :func:`kept_samples`): all of them (``good_data``'s numbers) up to ``max_samples``, else
    every k-th, the fewest that fit. For whole-recording statistics (a median) whose input
    would otherwise grow with the recording's length."""
    keep = kept_samples(work) if keep is None else keep
    picked = keep[:: max(1, -(-keep.size // max_samples))]
    return np.concatenate(list(good_chunks(work, [channel], picked, int(600 * work.info["sfreq"]))), axis=1)


def good_chunks(
    work: mne.io.BaseRaw, channels: Sequence[str], keep: np.ndarray, chunk_samples: int
) -> Iterator[np.ndarray]:
    """The samples ``keep`` (sorted indices, e.g. :func:`kept_samples`) of ``channels`` as
    (C, m) volts blocks, ``chunk_samples`` of the recording read at a time: their concatenation
    is ``work.get_data(channels)[:, keep]`` without a full-length copy."""
    for lo in range(0, work.n_times, chunk_samples):
        a, b = np.searchsorted(keep, [lo, lo + chunk_samples])
        if b > a:
            idx = keep[a:b]
            first = int(idx[0])
            block = work.get_data(picks=list(channels), start=first, stop=int(idx[-1]) + 1)[:, idx - first]
            release(getattr(work, "_data", None))  # a scratch-file recording: the stretch read leaves RSS
            yield block
