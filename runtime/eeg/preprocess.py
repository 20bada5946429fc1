"""EEG preprocessing: one recording -> the model's ``(W, 32, 384)`` windows.

Steps, in order (each an MNE call):

1. pick the spec's channels in the spec's order (:func:`~.channels.map_channels`) plus any EOG
   channels, and refuse recordings with non-finite values, flat channels or less than one window;
2. resample to ``spec.sfreq`` (only when the rate differs);
3. band-pass ``l_freq``-``h_freq`` (MNE's default zero-phase FIR design);
4. FastICA on the continuous band-passed recording; components that correlate with the EOG
   channels (or, without EOG, with the frontal proxy channels Fp1/Fp2) beyond
   ``spec.ica.eog_threshold`` (MNE's iterative z-score) and with |r| >= ``spec.ica.min_correlation``
   are removed, at most
   ``spec.ica.max_excluded`` of them, the strongest first;
5. drop ``baseline_s`` from the start and cut non-overlapping windows.

Output unit: **microvolts** (float32), the scale of DEAP's ``.dat`` files, so a model trained on
DEAP sees numbers of the same size at inference.

DEAP training and inference share this code: training calls
``preprocess_raw(deap_trial_to_raw(trial), spec.eeg, baseline_s=3.0)``, inference calls
``preprocess_raw(read_raw(path), spec.eeg)``. :func:`preprocess_array` wraps other in-memory
sources (a stream buffer, a numpy file).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from .._check import MilmerInputError, check_option, check_positive
from ..spec import EEGSpec
from ..windows import EEGWindows
from .channels import canonical_name, find_eog, map_channels

if TYPE_CHECKING:
    import mne

__all__ = [
    "FLAT_STD_V",
    "ICATrace",
    "array_to_raw",
    "bandpass",
    "cut_windows",
    "fit_decimation",
    "preprocess_raw",
    "preprocess_array",
]

#: A channel whose standard deviation is below this (volts) carries no signal.
FLAT_STD_V = 1e-12
#: Channels and length of the before/after-ICA excerpt kept with ``keep_trace=True``.
TRACE_CHANNELS: tuple[str, ...] = ("Fp1", "Fp2", "Fz", "Cz", "O1")
TRACE_SECONDS = 10.0

_MNE_QUIET = "error"


@dataclass(frozen=True)
class ICATrace:
    """A short stretch of the recording before and after ICA, for plotting.

    before, after: (C, n) float32 microvolts, band-passed, at ``sfreq``; ``after`` has the
    ``excluded`` components removed. ``start_s`` is the excerpt's start in the recording: the
    stretch where ICA changed these channels most.
    """

    channels: tuple[str, ...]
    sfreq: float
    start_s: float
    before: np.ndarray
    after: np.ndarray
    excluded: tuple[int, ...]
    eog_source: str

    @property
    def times(self) -> np.ndarray:
        """(n,) float64 seconds from the recording's start."""
        return self.start_s + np.arange(self.before.shape[1]) / self.sfreq


def bandpass(raw: mne.io.BaseRaw, spec_eeg: EEGSpec) -> None:
    """Band-pass all data channels of ``raw`` in place: zero-phase FIR, MNE's default design.

    With ``l_freq == 0`` it is a low-pass only.
    """
    l_freq = spec_eeg.l_freq if spec_eeg.l_freq > 0 else None
    raw.filter(l_freq, spec_eeg.h_freq, method="fir", verbose=_MNE_QUIET)


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


@overload
def preprocess_raw(
    raw: mne.io.BaseRaw, spec_eeg: EEGSpec, *, baseline_s: float = ..., keep_trace: Literal[False] = ...
) -> EEGWindows: ...
@overload
def preprocess_raw(
    raw: mne.io.BaseRaw, spec_eeg: EEGSpec, *, baseline_s: float = ..., keep_trace: Literal[True]
) -> tuple[EEGWindows, ICATrace]: ...
def preprocess_raw(
    raw: mne.io.BaseRaw, spec_eeg: EEGSpec, *, baseline_s: float = 0.0, keep_trace: bool = False
) -> EEGWindows | tuple[EEGWindows, ICATrace]:
    """Preprocess one recording (see the module docstring); ``raw`` is not modified.

    Returns windows ``data: (W, n_channels, window_samples) float32`` in microvolts, ``starts``
    in seconds from the recording's start (baseline included) and ``info``: ``ica_excluded``,
    ``ica_n_components``, ``eog_source``, ``ica_scores_max`` (largest |correlation| of a
    component with the EOG/proxy signal), ``ica_converged``, ``ica_fit_decim`` (ICA fitted on
    every k-th sample, ``ICASpec.max_fit_s``), ``resampled_from``, ``n_windows``,
    ``duration_s``, ``timings`` and more. With ``keep_trace=True`` also an :class:`ICATrace`.
    """
    import mne

    check_positive("baseline_s", baseline_s, allow_zero=True)
    sfreq = float(raw.info["sfreq"])
    duration = raw.n_times / sfreq
    _check_long_enough(duration, baseline_s, spec_eeg)

    picks = map_channels(raw.ch_names, spec_eeg)
    eeg = raw.get_data(picks=picks)  # (C, T) volts
    _check_signal(eeg, spec_eeg.channels)
    eog_names, eog_ignored = _usable_eog(raw, spec_eeg)
    eog = raw.get_data(picks=eog_names) if eog_names else np.empty((0, raw.n_times))

    # A fresh recording with the spec's names: later steps look channels up by those names.
    info = mne.create_info(
        list(spec_eeg.channels) + eog_names, sfreq, ["eeg"] * len(picks) + ["eog"] * len(eog_names)
    )
    work = mne.io.RawArray(np.concatenate([eeg, eog]), info, verbose=_MNE_QUIET)

    timings: dict[str, float] = {}
    tic = time.perf_counter()
    if sfreq != spec_eeg.sfreq:
        work.resample(spec_eeg.sfreq, verbose=_MNE_QUIET)
    timings["resample"] = time.perf_counter() - tic

    tic = time.perf_counter()
    bandpass(work, spec_eeg)
    timings["filter"] = time.perf_counter() - tic

    before = work.get_data(picks="eeg") if keep_trace else None
    tic = time.perf_counter()
    ica_info = _remove_eye_artefacts(work, spec_eeg, eog_names)
    timings["ica"] = time.perf_counter() - tic

    tic = time.perf_counter()
    data_uv = (work.get_data(picks="eeg") * 1e6).astype(np.float32)  # (C, T) microvolts
    skip = int(round(baseline_s * spec_eeg.sfreq))
    windows, starts = cut_windows(data_uv, spec_eeg.sfreq, spec_eeg.window_samples, skip)
    # _check_long_enough guarantees a window: round(T * ratio) >= window + round(baseline * sfreq).
    assert len(windows) > 0, (data_uv.shape, skip)
    timings["window"] = time.perf_counter() - tic

    renamed = {raw.ch_names[i]: name for i, name in zip(picks, spec_eeg.channels) if raw.ch_names[i] != name}
    result = EEGWindows(
        data=windows,
        starts=starts,
        info={
            **ica_info,
            "eog_ignored": eog_ignored,
            "channels_renamed": renamed,
            "resampled_from": None if sfreq == spec_eeg.sfreq else sfreq,
            "baseline_s": float(baseline_s),
            "n_windows": int(len(windows)),
            "duration_s": float(duration),
            "unit": "uV",
            "timings": {k: round(v, 4) for k, v in timings.items()},
        },
    )
    if not keep_trace:
        return result
    assert before is not None
    return result, _make_trace(before * 1e6, data_uv, spec_eeg, ica_info)


def array_to_raw(
    data: np.ndarray,
    ch_names: Sequence[str],
    sfreq: float,
    *,
    ch_types: Sequence[str] | None = None,
    unit: Literal["V", "uV"] = "V",
) -> mne.io.RawArray:
    """An in-memory recording as MNE data in volts.

    data: (C, T) in ``unit``; ``ch_types`` defaults to ``'eeg'`` for every channel (EOG
    channels are still found by name, see :func:`~.channels.find_eog`).
    """
    import mne

    check_option("unit", unit, ("V", "uV"))
    check_positive("sfreq", sfreq)
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] != len(ch_names):
        raise MilmerInputError(
            f"Invalid value for 'data': expected (channels, samples) with {len(ch_names)} "
            f"channels (one per name), got shape {data.shape}."
        )
    types = list(ch_types) if ch_types is not None else ["eeg"] * len(ch_names)
    if len(types) != len(ch_names):
        raise MilmerInputError(
            f"Invalid value for 'ch_types': expected {len(ch_names)} types, got {len(types)}."
        )
    info = mne.create_info(list(ch_names), float(sfreq), types)
    scale = 1e-6 if unit == "uV" else 1.0
    return mne.io.RawArray(data * scale, info, verbose=_MNE_QUIET)


def preprocess_array(
    data: np.ndarray,
    ch_names: Sequence[str],
    sfreq: float,
    spec_eeg: EEGSpec,
    *,
    ch_types: Sequence[str] | None = None,
    unit: Literal["V", "uV"] = "V",
    baseline_s: float = 0.0,
) -> EEGWindows:
    """:func:`preprocess_raw` of :func:`array_to_raw`: data (C, T) in ``unit``."""
    raw = array_to_raw(data, ch_names, sfreq, ch_types=ch_types, unit=unit)
    return preprocess_raw(raw, spec_eeg, baseline_s=baseline_s)


def _check_long_enough(duration: float, baseline_s: float, spec_eeg: EEGSpec) -> None:
    if duration - baseline_s < spec_eeg.window_s - 1e-9:
        raise MilmerInputError(
            f"Invalid value for 'eeg': the recording is {duration:.2f} s long"
            + (f" ({duration - baseline_s:.2f} s after the {baseline_s:g} s baseline)" if baseline_s else "")
            + f"; at least one {spec_eeg.window_s:g} s window is needed."
        )


def _check_signal(eeg: np.ndarray, names: Sequence[str]) -> None:
    """eeg: (C, T) volts. Refuse non-finite samples and flat channels, naming the channels."""
    finite = np.isfinite(eeg)
    bad = [name for name, ok in zip(names, finite.all(axis=1)) if not ok]
    if bad:
        raise MilmerInputError(
            f"Invalid value for 'eeg': channel(s) {', '.join(bad)} contain NaN or infinite values."
        )
    flat = [name for name, std in zip(names, eeg.std(axis=1)) if std < FLAT_STD_V]
    if flat:
        raise MilmerInputError(
            f"Invalid value for 'eeg': channel(s) {', '.join(flat)} are flat (standard deviation "
            f"< {FLAT_STD_V:g} V): disconnected electrodes or a wrong unit."
        )


def _usable_eog(raw: mne.io.BaseRaw, spec_eeg: EEGSpec) -> tuple[list[str], dict[str, str]]:
    """EOG channels fit to guide ICA, and why any others were left out."""
    names = find_eog(raw.ch_names, raw.get_channel_types(), spec_eeg)
    usable, ignored = [], {}
    for name in names:
        trace = raw.get_data(picks=[name])[0]
        if not np.isfinite(trace).all():
            ignored[name] = "NaN or infinite values"
        elif trace.std() < FLAT_STD_V:
            ignored[name] = "flat"
        else:
            usable.append(name)
    return usable, ignored


def _remove_eye_artefacts(
    work: mne.io.BaseRaw, spec_eeg: EEGSpec, eog_names: list[str]
) -> dict[str, Any]:
    """Fit FastICA on the EEG channels of ``work`` and remove eye components in place."""
    from mne.preprocessing import ICA

    cfg = spec_eeg.ica
    if not cfg.enabled:
        return {"ica_excluded": [], "ica_n_components": 0, "eog_source": "ICA disabled",
                "ica_scores_max": None, "ica_scores_excluded": [], "ica_converged": None,
                "ica_fit_decim": None}  # fmt: skip
    if eog_names:
        reference, source = eog_names, f"EOG channels {eog_names}"
    else:
        by_key = {canonical_name(c): c for c in spec_eeg.channels}
        reference = [by_key[k] for k in map(canonical_name, cfg.proxy_channels) if k in by_key]
        source = f"proxy {'/'.join(reference)}" if reference else "none (no EOG or proxy channels)"

    ica = ICA(
        n_components=cfg.n_components,
        method=cfg.method,
        max_iter=cfg.max_iter,
        random_state=cfg.random_state,
        verbose=_MNE_QUIET,
    )
    decim = fit_decimation(work.n_times, float(work.info["sfreq"]), cfg.max_fit_s)
    with warnings.catch_warnings():
        # Recorded in info["ica_converged"] instead of printed once per recording.
        warnings.filterwarnings("ignore", message="FastICA did not converge")
        ica.fit(work, picks="eeg", decim=decim if decim > 1 else None, verbose=_MNE_QUIET)

    excluded: list[int] = []
    strength = np.zeros(ica.n_components_)
    if reference:
        found, scores = ica.find_bads_eog(
            work, ch_name=reference, threshold=cfg.eog_threshold, verbose=_MNE_QUIET
        )
        strength = np.abs(np.atleast_2d(np.asarray(scores))).max(axis=0)  # (n_components,)
        # MNE's z-score rule alone also flags one component of pure noise fairly often
        # (|r| 0.4-0.6); real blink components correlate at 0.95+.
        found = [i for i in found if strength[i] >= cfg.min_correlation]
        excluded = _strongest(found, strength, cfg.max_excluded)
    if excluded:
        ica.apply(work, exclude=excluded, verbose=_MNE_QUIET)
    return {
        "ica_excluded": [int(i) for i in excluded],
        "ica_n_components": int(ica.n_components_),
        "eog_source": source,
        "ica_scores_max": float(strength.max()) if reference else None,
        "ica_scores_excluded": [round(float(strength[i]), 4) for i in excluded],
        "ica_converged": bool(ica.n_iter_ < cfg.max_iter),
        "ica_fit_decim": decim,
    }


def fit_decimation(n_times: int, sfreq: float, max_fit_s: float | None) -> int:
    """Every how many samples ICA is fitted on: the smallest k >= 1 with
    ``ceil(n_times / k) <= max_fit_s * sfreq`` (1 when ``max_fit_s`` is None); see ``ICASpec``."""
    if max_fit_s is None:
        return 1
    cap = max(1, int(max_fit_s * sfreq))
    return max(1, -(-n_times // cap))


def _strongest(found: Sequence[int], strength: np.ndarray, limit: int) -> list[int]:
    """The ``limit`` components of ``found`` with the largest ``strength``, strongest first.

    strength: (n_components,) |correlation| of each component with the EOG/proxy signal.
    """
    return sorted((int(i) for i in found), key=lambda i: (-strength[i], i))[:limit]


def _make_trace(
    before: np.ndarray, after: np.ndarray, spec_eeg: EEGSpec, ica_info: dict[str, Any]
) -> ICATrace:
    """before, after: (C, T) microvolts -> the TRACE_SECONDS stretch ICA changed most (the
    first one when ICA changed nothing)."""
    by_key = {canonical_name(c): i for i, c in enumerate(spec_eeg.channels)}
    rows = [by_key[k] for k in map(canonical_name, TRACE_CHANNELS) if k in by_key]
    rows = rows or list(range(min(len(TRACE_CHANNELS), spec_eeg.n_channels)))
    n = min(int(round(TRACE_SECONDS * spec_eeg.sfreq)), before.shape[1])
    removed = ((before[rows] - after[rows]) ** 2).sum(axis=0)  # (T,)
    per_start = np.convolve(removed, np.ones(n), mode="valid")  # (T - n + 1,) power in each stretch
    start = int(np.argmax(per_start))
    return ICATrace(
        channels=tuple(spec_eeg.channels[i] for i in rows),
        sfreq=spec_eeg.sfreq,
        start_s=start / spec_eeg.sfreq,
        before=before[rows, start : start + n].astype(np.float32),
        after=after[rows, start : start + n].astype(np.float32),
        excluded=tuple(ica_info["ica_excluded"]),
        eog_source=ica_info["eog_source"],
    )
