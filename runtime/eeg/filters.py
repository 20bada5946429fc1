"""Filters on whole recordings and on plain arrays, and cutting windows.

:func:`bandpass` / :func:`bandpass_array` (``EEGSpec.l_freq``-``h_freq``, MNE's default zero-phase
FIR), :func:`notch` / :func:`notch_array` and :func:`average_reference` work on their own, for
stream buffers as well as files (the recording versions in place, without full-length copies);
:func:`line_freq` decides which mains frequency to notch; :func:`cut_windows` cuts the model's
non-overlapping windows from an array, :func:`raw_windows` from a recording, a few at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..scratch import empty, release
from ..spec import EEGSpec
from .artefacts import MNE_QUIET
from .quality import line_peak, mean_psd_of

if TYPE_CHECKING:
    import mne

__all__ = [
    "average_reference", "bandpass", "bandpass_array", "notch", "notch_array", "line_harmonics", "line_freq",
    "cut_windows", "raw_windows",
]  # fmt: skip


def bandpass(raw: mne.io.BaseRaw, spec_eeg: EEGSpec) -> None:
    """Band-pass all data channels of ``raw`` in place: zero-phase FIR, MNE's default design
    (``raw.filter``; gaps, ``BAD_ACQ_SKIP``, are filtered as separate segments).

    With ``l_freq == 0`` it is a low-pass only. One channel at a time: the same numbers as one
    call over all channels without MNE's full-length temporaries (peak memory); stretches longer
    than :data:`FILTER_BLOCK_S` in blocks (:func:`_filter_channel`).
    """
    from mne.filter import create_filter, filter_data

    l_freq = spec_eeg.l_freq if spec_eeg.l_freq > 0 else None
    sfreq = float(raw.info["sfreq"])
    n_taps = len(create_filter(None, sfreq, l_freq, spec_eeg.h_freq, method="fir", verbose=MNE_QUIET))
    for pick in _data_picks(raw):
        _filter_channel(
            raw, pick, lambda x: filter_data(x, sfreq, l_freq, spec_eeg.h_freq, method="fir", copy=False, verbose=MNE_QUIET),
            lambda: raw.filter(l_freq, spec_eeg.h_freq, picks=[pick], method="fir", verbose=MNE_QUIET),
            n_taps=n_taps,
        )  # fmt: skip
    with raw.info._unlock():  # what a call over all data channels records
        if l_freq is not None and l_freq > raw.info["highpass"]:
            raw.info["highpass"] = float(l_freq)
        if spec_eeg.h_freq < raw.info["lowpass"]:
            raw.info["lowpass"] = float(spec_eeg.h_freq)


def notch(raw: mne.io.BaseRaw, freqs: Sequence[float], picks: Sequence[str]) -> None:
    """``raw.notch_filter(freqs)`` (MNE's default FIR notch) of the channel types in ``picks``
    ('eeg', 'eog'), in place, one channel at a time: the same numbers as one call without MNE's
    full-length temporaries."""
    import mne

    freqs = np.asarray(freqs, float)
    for pick in mne.pick_types(raw.info, **{kind: True for kind in picks}, exclude=()):
        _filter_channel(
            raw, int(pick), lambda x: mne.filter.notch_filter(x, raw.info["sfreq"], freqs, copy=False, verbose=MNE_QUIET),
            lambda: raw.notch_filter(freqs, picks=[int(pick)], verbose=MNE_QUIET),
        )  # fmt: skip


#: Contiguous stretches (between gaps) longer than this (s) are filtered in blocks this long.
FILTER_BLOCK_S = 600.0
#: Seconds of real neighbouring samples filtered with each block and dropped: more than the
#: longest FIR here reaches (MNE's 'auto' length, 3.3 / transition band: 6.6 s for a 0.5 Hz one).
FILTER_MARGIN_S = 60.0


def _filter_channel(
    raw: mne.io.BaseRaw, pick: int, apply: Callable[[np.ndarray], Any], whole: Callable[[], Any], n_taps: int = 0
) -> None:
    """Filter row ``pick`` of ``raw`` in place as MNE's ``raw.filter``/``notch_filter`` do (each
    stretch between ``BAD_ACQ_SKIP`` gaps and the edges on its own): ``whole()`` (MNE's call, one
    channel) when no stretch is longer than :data:`FILTER_BLOCK_S` plus the margins, else
    ``apply(x)`` ((1, n) float64, filtered in place) on each stretch, a long one
    :data:`FILTER_BLOCK_S` at a time (the last block up to twice that) with
    :data:`FILTER_MARGIN_S` (or ``n_taps``, the FIR's length, when longer) of real samples
    either side (dropped after filtering; a block's result is written once the next block has
    read its margin). The FIR's output at a sample depends only on samples within its reach, so the
    blocks give MNE's numbers to rounding, while MNE's temporaries (padded copies of the
    channel) stay a block long (peak memory)."""
    from mne.annotations import _annotations_starts_stops

    data, sfreq = raw._data, float(raw.info["sfreq"])
    # A whole FIR length (n_taps, when known) at least, on either side and in a block.
    block, margin = max(int(FILTER_BLOCK_S * sfreq), n_taps), max(int(FILTER_MARGIN_S * sfreq), n_taps)
    onsets, ends = _annotations_starts_stops(raw, ("edge", "bad_acq_skip"), invert=True)
    if all(stop - start <= block + 2 * margin for start, stop in zip(onsets, ends)):
        whole()
        release(data)  # a scratch-file recording: the channel filtered leaves the resident set
        return
    for start, stop in zip(onsets.tolist(), ends.tolist()):
        if stop - start <= block + 2 * margin:
            apply(data[pick : pick + 1, start:stop])  # a view: filtered in place, as MNE's call does
            continue
        pending: tuple[int, np.ndarray] | None = None
        for a in range(start, stop - block, block):
            b = stop if stop - a < 2 * block else a + block  # the last block 1-2 blocks long:
            lo, hi = max(start, a - margin), min(stop, b + margin)  # never shorter than the FIR
            x = apply(data[pick : pick + 1, lo:hi].copy())  # (1, hi - lo)
            if pending is not None:
                data[pick, pending[0] : pending[0] + pending[1].size] = pending[1]
            pending = (a, x[0, a - lo : b - lo].copy())
            release(data)
        assert pending is not None
        data[pick, pending[0] : pending[0] + pending[1].size] = pending[1]
    release(data)


#: Seconds of the recording re-referenced at a time by :func:`average_reference`.
REFERENCE_CHUNK_S = 60.0


def average_reference(raw: mne.io.BaseRaw, chunk_s: float = REFERENCE_CHUNK_S) -> None:
    """``raw.set_eeg_reference('average', projection=False)`` in place, ``chunk_s`` seconds at a
    time: the mean of the good EEG channels (``info['bads']`` left out) subtracted from each of
    them, sample by sample, without MNE's two full-length copies (``raw`` preloaded)."""
    import mne
    from mne.io.constants import FIFF

    picks = mne.pick_types(raw.info, eeg=True, exclude="bads")
    if not len(picks):
        raise ValueError("No EEG channels found to apply the reference to")
    data = raw._data  # (C, T) the recording's own samples, as MNE's set_eeg_reference edits them
    step = max(1, int(chunk_s * raw.info["sfreq"]))
    for a in range(0, data.shape[1], step):
        block = data[picks, a : a + step]  # (C_good, step) a copy
        block -= block.mean(axis=0, keepdims=True)
        data[picks, a : a + step] = block
        release(data)
    with raw.info._unlock():
        raw.info["custom_ref_applied"] = FIFF.FIFFV_MNE_CUSTOM_REF_ON


def _data_picks(raw: mne.io.BaseRaw) -> list[int]:
    """Indices of ``raw``'s data channels (bad ones included), the channels ``raw.filter`` filters."""
    from mne._fiff.pick import _picks_to_idx

    return [int(i) for i in _picks_to_idx(raw.info, None, "data", exclude=())]


def cut_windows(
    data: np.ndarray, sfreq: float, window_samples: int, skip_samples: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows after the first ``skip_samples``; a partial tail is dropped.

    data: (C, T) -> windows (W, C, window_samples) in data's dtype, starts (W,) float64 seconds
    from sample 0 of ``data``.
    """
    n_windows = max(data.shape[1] - skip_samples, 0) // window_samples
    used = data[:, skip_samples : skip_samples + n_windows * window_samples]
    # (C, W*T) -> (C, W, T) -> (W, C, T): split time only, never mix channels into time.
    windows = used.reshape(data.shape[0], n_windows, window_samples).transpose(1, 0, 2)
    starts = (skip_samples + np.arange(n_windows) * window_samples) / float(sfreq)
    return np.ascontiguousarray(windows), starts


#: Windows read from the recording at a time by :func:`raw_windows`.
WINDOW_CHUNK = 64


def raw_windows(
    work: mne.io.BaseRaw, first_samples: np.ndarray, window_samples: int, *, chunk: int | None = None
) -> np.ndarray:
    """(W, C, window_samples) float32 microvolts of the EEG channels of ``work``, window w
    starting at sample ``first_samples[w]``; read ``chunk`` (default :data:`WINDOW_CHUNK`) windows at a time, so that no
    full-length float64 copy is made. Equal to :func:`cut_windows` of ``get_data(picks='eeg') * 1e6``
    cast to float32, element by element."""
    first_samples = np.asarray(first_samples, dtype=np.int64)
    chunk = WINDOW_CHUNK if chunk is None else chunk
    n_channels = work.get_channel_types().count("eeg")
    out = empty((first_samples.size, n_channels, window_samples), np.float32)  # a scratch file when large
    for a in range(0, first_samples.size, chunk):
        group = first_samples[a : a + chunk]
        lo, hi = int(group[0]), int(group[-1]) + window_samples
        block = work.get_data(picks="eeg", start=lo, stop=hi)  # (C, hi - lo) volts
        for j, s in enumerate(group):
            out[a + j] = block[:, s - lo : s - lo + window_samples] * 1e6
        release(work._data)
        release(out)
    return out


def line_freq(
    stated: float | None, work: mne.io.BaseRaw, good: Sequence[str], spec_eeg: EEGSpec
) -> tuple[float | None, str]:
    """The mains frequency to notch and where it came from: the spec, the file (``stated``, its
    ``info['line_freq']``) or detected in the ``good`` channels of ``work``."""
    if spec_eeg.line_noise == "off":
        return None, "off in the spec"
    if spec_eeg.line_noise in ("50", "60"):
        return float(spec_eeg.line_noise), "the spec"
    sfreq = float(work.info["sfreq"])
    if stated and stated < sfreq / 2:
        return float(stated), "the file"
    found = line_peak(*mean_psd_of(work, good))
    return (found, "detected") if found else (None, "none found")


def bandpass_array(data: np.ndarray, sfreq: float, spec_eeg: EEGSpec) -> np.ndarray:
    """data: (C, T) -> (C, T) float64 band-passed as :func:`bandpass` does (a new array)."""
    import mne

    l_freq = spec_eeg.l_freq if spec_eeg.l_freq > 0 else None
    data = np.asarray(data, np.float64)
    return mne.filter.filter_data(data, sfreq, l_freq, spec_eeg.h_freq, method="fir", verbose=MNE_QUIET)


def line_harmonics(freq: float | None, sfreq: float, model_sfreq: float) -> np.ndarray:
    """(K,) the mains frequency and its harmonics below both Nyquist frequencies (minus 1 Hz);
    higher ones go with the resampling's anti-alias filter. Empty for None."""
    if not freq:
        return np.empty(0)
    top = min(sfreq, model_sfreq) / 2 - 1
    return freq * np.arange(1, int(top // freq) + 1)


def notch_array(data: np.ndarray, sfreq: float, freqs: Sequence[float]) -> np.ndarray:
    """data: (C, T) -> (C, T) float64 with ``freqs`` notched (MNE's default FIR notch; a new array)."""
    import mne

    if not len(freqs):
        return np.array(data, np.float64)
    return mne.filter.notch_filter(np.asarray(data, np.float64), sfreq, np.asarray(freqs, float), verbose=MNE_QUIET)
