"""EEG preprocessing: one recording -> the model's ``(W, 32, 384)`` windows.

Steps, in order (each an MNE call where MNE has one), so that any recording ends up in the
state of DEAP's preprocessed data (32 channels in the spec's order, average reference, no mains
hum, band-passed, eye artefacts removed, 128 Hz) or is refused with a way forward:

1. channels: find the spec's channels (:func:`~.channels.match_channels`: aliases, shared
   reference suffixes, BioSemi presets, ``--channel-map``) plus any EOG channels; picked
   channels the reader typed non-EEG are used as EEG (a BrainVision ``μV`` unit MNE does not
   know is applied); missing channels and channels the file marks bad (``info['bads']``) are
   interpolated with ``--interpolate-missing`` (spherical splines, standard 10-20 positions,
   at most ``max_interpolated``) or refused; non-finite values are refused; one flat channel is
   the stored reference electrode, more are refused;
2. units: ``--eeg-unit`` overrides the file's unit field;
3. reference: ``spec.reference`` (``'average'``: the mean of the good spec channels);
4. line noise: notch ``spec.line_noise`` (50/60 Hz, from the file or detected) and its harmonics
   below the model's Nyquist (higher ones go with the resampling's anti-alias filter);
5. resample to ``spec.sfreq`` (only when the rate differs);
6. band-pass ``l_freq``-``h_freq`` (MNE's default zero-phase FIR design); gaps (``BAD_ACQ_SKIP``)
   are filtered as separate segments;
7. scale check: a robust amplitude per channel within :data:`~.units.PLAUSIBLE_UV`, else refused;
8. interpolate the missing/bad channels, then average-reference again;
9. ICA (``spec.ica.method``: Picard-O by default, FastICA) fitted on good data only (``BAD_*`` spans left out); components that correlate with
   the EOG channels (or, without EOG, with the frontal proxy channels Fp1/Fp2) beyond
   ``spec.ica.eog_threshold`` (MNE's iterative z-score) and with |r| >= ``spec.ica.min_correlation``
   are removed, at most ``spec.ica.max_excluded`` of them, the strongest first
   (:func:`eye_components`);
10. drop ``baseline_s`` from the start and cut non-overlapping windows on the recording's true
    time axis; windows that cross a gap are dropped, windows that overlap a ``BAD_*`` span or
    hold interpolated channels are flagged (``EEGWindows.flags``).

Output unit: **microvolts** (float32), the scale of DEAP's ``.dat`` files, so a model trained on
DEAP sees numbers of the same size at inference.

DEAP training and inference share this code: training calls
``preprocess_raw(deap_trial_to_raw(trial), spec.eeg, baseline_s=3.0)``, inference calls
``preprocess_raw(read_raw(path), spec.eeg, options=...)``. :func:`preprocess_array` wraps other
in-memory sources (a stream buffer, a numpy file).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from ..check import MilmerInputError, check_int, check_option, check_positive
from ..spec import EEGSpec, ICASpec
from ..windows import EEGWindows
from .channels import ChannelMatch, canonical_name, find_eog, match_channels, missing_message
from .artefacts import CLIP_DESCRIPTION, bridge_spans, clipped_spans, nan_runs
from .decimate import decimate_early, decimation_factor
from .bad_channels import BAD_KINDS, check_bad_channels, find_bad_channels
from .quality import GAP, detect_line_freq, line_share, window_spans
from .units import EEG_UNITS, check_amplitude, robust_amplitude_uv, unit_factor

if TYPE_CHECKING:
    import mne

__all__ = [
    "FLAT_STD_V",
    "MAX_INTERPOLATED",
    "EEGInputOptions",
    "eye_components",
    "ICATrace",
    "array_to_raw",
    "bandpass",
    "cut_windows",
    "fit_decimation",
    "ica_fit_params",
    "preprocess_raw",
    "preprocess_array",
]

#: A channel whose standard deviation is below this (volts) carries no signal.
FLAT_STD_V = 1e-12
#: Default limit on interpolated channels (a quarter of DEAP's 32).
MAX_INTERPOLATED = 8
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


@dataclass(frozen=True)
class EEGInputOptions:
    """How to bring a user's recording to the spec (the CLI's EEG options).

    eeg_unit:            the unit the file's numbers are in, overriding its unit field
                         (``--eeg-unit``: 'V', 'mV', 'uV', 'nV'); None trusts the file
    channel_map:         ``--channel-map``: a preset (``biosemi32``), ``'old=new,...'``, a file, or a dict
    interpolate_missing: interpolate missing and bad-marked channels (``--interpolate-missing``)
    max_interpolated:    refuse when more channels than this would be interpolated
    """

    eeg_unit: str | None = None
    channel_map: str | Mapping[str, str] | None = None
    interpolate_missing: bool = False
    max_interpolated: int = MAX_INTERPOLATED

    def __post_init__(self) -> None:
        if self.eeg_unit is not None:
            check_option("--eeg-unit", self.eeg_unit, tuple(EEG_UNITS))
        check_int("--max-interpolated", self.max_interpolated, low=0)


@overload
def preprocess_raw(
    raw: mne.io.BaseRaw, spec_eeg: EEGSpec, *, baseline_s: float = ..., keep_trace: Literal[False] = ...,
    options: EEGInputOptions | None = ...,
) -> EEGWindows: ...
@overload
def preprocess_raw(
    raw: mne.io.BaseRaw, spec_eeg: EEGSpec, *, baseline_s: float = ..., keep_trace: Literal[True],
    options: EEGInputOptions | None = ...,
) -> tuple[EEGWindows, ICATrace]: ...
def preprocess_raw(
    raw: mne.io.BaseRaw,
    spec_eeg: EEGSpec,
    *,
    baseline_s: float = 0.0,
    keep_trace: bool = False,
    options: EEGInputOptions | None = None,
) -> EEGWindows | tuple[EEGWindows, ICATrace]:
    """Preprocess one recording (see the module docstring); ``raw`` is not modified.

    Returns windows ``data: (W, n_channels, window_samples) float32`` in microvolts, ``starts``
    in seconds from the recording's start (baseline and gaps included), ``flags`` per window and
    ``info``: ``ica_excluded``, ``ica_n_components``, ``eog_source``, ``ica_scores_max``,
    ``ica_method``, ``ica_n_iter`` (solver iterations), ``ica_converged`` (``ica_n_iter < max_iter``),
    ``ica_fit_decim`` (ICA fitted on every k-th sample,
    ``ICASpec.max_fit_s``), ``reference``, ``line_noise`` (frequency, source, share before/after),
    ``channels`` (mapped, renamed, interpolated, bad in the file, retyped, reference electrode),
    ``windows_dropped_gap``, ``resampled_from``, ``n_windows``, ``duration_s``, ``timings``.
    With ``keep_trace=True`` also an :class:`ICATrace`.
    """
    import mne

    options = options or EEGInputOptions()
    check_positive("baseline_s", baseline_s, allow_zero=True)
    sfreq = float(raw.info["sfreq"])
    duration = raw.n_times / sfreq
    _check_long_enough(duration, baseline_s, spec_eeg)
    notes: list[str] = []
    timings: dict[str, float] = {}
    file_sfreq = sfreq

    types = raw.get_channel_types()
    match = match_channels(raw.ch_names, spec_eeg, types=types, channel_map=options.channel_map)
    factor = decimation_factor(raw.n_times, len(raw.ch_names), sfreq)
    if factor > 1:  # a long high-rate file: read in chunks, decimated before any full-length copy
        tic = time.perf_counter()
        raw = decimate_early(raw, factor, clip_channels=[raw.ch_names[i] for i in match.picks.values()], notes=notes)
        sfreq = float(raw.info["sfreq"])
        types = raw.get_channel_types()
        match = match_channels(raw.ch_names, spec_eeg, types=types, channel_map=options.channel_map)
        timings["decimate"] = time.perf_counter() - tic
    bads_in_file = [c for c, i in match.picks.items() if raw.ch_names[i] in raw.info["bads"]]
    present = [c for c in spec_eeg.channels if c in match.picks]
    picks = [match.picks[c] for c in present]
    unit_fields = {c: _unit_field(raw, raw.ch_names[match.picks[c]]) for c in present}
    picked_types = {c: types[i] for c, i in zip(present, picks)}
    _check_interpolation(list(match.missing) + bads_in_file, match, bads_in_file, raw.ch_names, spec_eeg, options)
    eeg = _to_volts(raw, picks, options.eeg_unit)  # (C_present, T)
    eog_names, eog_ignored = _usable_eog(raw, spec_eeg)
    eog = raw.get_data(picks=eog_names) if eog_names else np.empty((0, raw.n_times))

    # NaN runs (dropouts) become gaps, bridged like an EDF+D gap; NaN-only channels are bad.
    finite_eog = np.isfinite(eog).all(axis=0) if eog.size else True
    dead, nan_spans = nan_runs(eeg if finite_eog is True else np.where(finite_eog, eeg, np.nan))
    bridge_spans(eeg, nan_spans)
    bridge_spans(eog, nan_spans)
    if nan_spans:
        notes.append(
            f"{len(nan_spans)} NaN run(s) (dropouts) treated as recording gaps (BAD_ACQ_SKIP): "
            + ", ".join(f"{a / sfreq:.2f}-{b / sfreq:.2f} s" for a, b in nan_spans[:5])
            + (", ..." if len(nan_spans) > 5 else "")
        )
    checked = [c for c in present if c not in bads_in_file]
    rows = [present.index(c) for c in checked]
    found = find_bad_channels(
        eeg if len(rows) == len(present) else eeg[rows], checked, sfreq, spec_eeg, types=[picked_types[c] for c in checked],
        unit_fields=unit_fields, flat_std=FLAT_STD_V,
    )
    check_bad_channels(found, options.interpolate_missing, picked_types, unit_fields)
    reference_channel = found.reference_electrode
    if reference_channel:
        notes.append(f"{reference_channel} is flat at 0 V: taken as the recording's reference electrode; "
                     "the average reference restores it")
    for name, kind in found.bad.items():
        notes.append(f"channel {name}: {BAD_KINDS[kind]}; interpolated")
    retyped = {}
    for c, i in zip(present, picks):
        if types[i] != "eeg" and c not in found.bad:
            retyped[raw.ch_names[i]] = f"typed {types[i]!r} by the reader (unit field {unit_fields[c]!r}); used as EEG"
    to_interpolate = list(match.missing) + bads_in_file + list(found.bad)
    _check_interpolation(to_interpolate, match, bads_in_file, raw.ch_names, spec_eeg, options)

    # Clipping (saturated amplifier or ADC) in the usable channels: a bad span like BAD_*.
    usable_rows = [present.index(c) for c in present if c not in to_interpolate and c != reference_channel]
    clip_spans, clipping = clipped_spans(eeg, sfreq, usable_rows)
    if clip_spans:
        notes.append(
            f"clipping (samples stuck at the channel's extreme) in {', '.join(present[i] for i in clipping)}: "
            f"{len(clip_spans)} span(s) marked {CLIP_DESCRIPTION}, left out of the ICA fit, windows flagged"
        )

    # A fresh recording with the spec's names (missing channels as zeros, marked bad): later
    # steps look channels up by those names.
    info = mne.create_info(
        list(spec_eeg.channels) + eog_names, sfreq, ["eeg"] * spec_eeg.n_channels + ["eog"] * len(eog_names)
    )
    # (32 + n_eog, T) volts, filled in place: long recordings are never copied twice here.
    stacked = np.zeros((spec_eeg.n_channels + len(eog_names), raw.n_times))
    for c, row in zip(present, eeg):
        if c not in to_interpolate:
            stacked[spec_eeg.channels.index(c)] = row
    stacked[spec_eeg.n_channels :] = eog
    del eeg, eog
    annotations = _relative_annotations(raw)
    for a, b in nan_spans:
        annotations.append(a / sfreq, (b - a) / sfreq, GAP)
    for a, b in clip_spans:
        annotations.append(a / sfreq, (b - a) / sfreq, CLIP_DESCRIPTION)
    # What a bad span holds (a pop, a rail step) must not reach clean windows through the filters:
    # its samples are replaced by a straight line before any filter runs.
    bridge_spans(stacked, _bad_span_samples(annotations, sfreq, raw.n_times))
    work = mne.io.RawArray(stacked, info, verbose=_MNE_QUIET)
    del stacked
    raw_info, ch_names = raw.info, list(raw.ch_names)
    del raw  # the (decimated) recording's samples are in work now
    work.info["bads"] = list(to_interpolate)
    work.set_annotations(annotations)
    good = [c for c in spec_eeg.channels if c not in to_interpolate]

    tic = time.perf_counter()
    line_freq, line_source = _line_freq(raw_info, work, good, spec_eeg)
    band = (max(spec_eeg.l_freq, 1.0), spec_eeg.sfreq / 2)
    share_before = (
        line_share(_good_data(work, good), sfreq, line_freq, band) if line_freq else None
    )
    if spec_eeg.reference == "average":
        work.set_eeg_reference("average", projection=False, verbose=_MNE_QUIET)  # bads excluded
    harmonics = np.empty(0)
    if line_freq:
        # Harmonics above the model's Nyquist go with the resampling's anti-alias filter.
        top = min(sfreq, spec_eeg.sfreq) / 2 - 1
        harmonics = line_freq * np.arange(1, int(top // line_freq) + 1)
    if line_freq and harmonics.size:
        work.notch_filter(harmonics, picks=["eeg", "eog"] if eog_names else "eeg", verbose=_MNE_QUIET)
    timings["reference"] = time.perf_counter() - tic

    tic = time.perf_counter()
    if sfreq != spec_eeg.sfreq:
        work.resample(spec_eeg.sfreq, verbose=_MNE_QUIET)
    timings["resample"] = time.perf_counter() - tic

    tic = time.perf_counter()
    bandpass(work, spec_eeg)
    timings["filter"] = time.perf_counter() - tic

    amplitude = robust_amplitude_uv(_good_data(work, good))
    check_amplitude(amplitude, good, unit_fields, options.eeg_unit)
    if to_interpolate:
        tic = time.perf_counter()
        _interpolate(work, spec_eeg)
        timings["interpolate"] = time.perf_counter() - tic

    before = work.get_data(picks="eeg") if keep_trace else None
    tic = time.perf_counter()
    ica_info = _remove_eye_artefacts(work, spec_eeg, eog_names)
    timings["ica"] = time.perf_counter() - tic

    tic = time.perf_counter()
    data_uv = (work.get_data(picks="eeg") * 1e6).astype(np.float32)  # (C, T) microvolts
    share_after = line_share(_good_data(work, spec_eeg.channels), spec_eeg.sfreq, line_freq, band) if line_freq else None
    skip = int(round(baseline_s * spec_eeg.sfreq))
    windows, starts = cut_windows(data_uv, spec_eeg.sfreq, spec_eeg.window_samples, skip)
    # _check_long_enough guarantees a window: round(T * ratio) >= window + round(baseline * sfreq).
    assert len(windows) > 0, (data_uv.shape, skip)
    ann = work.annotations
    keep, spans = window_spans(starts, spec_eeg.window_s, ann.onset, ann.duration, ann.description)
    interp_flag = ("interpolated:" + ",".join(to_interpolate),) if to_interpolate else ()
    flags = [tuple(f"bad-span:{d}" for d in spans[i]) + interp_flag for i in np.flatnonzero(keep)]
    dropped_gap = [round(float(t), 3) for t in starts[~keep]]
    if dropped_gap:
        notes.append(
            f"dropped {len(dropped_gap)} window(s) that cross a recording gap (EEG starts "
            + ", ".join(f"{t:g}" for t in dropped_gap) + " s)"
        )
    windows, starts = np.ascontiguousarray(windows[keep]), starts[keep]
    if not len(windows):
        raise MilmerInputError(
            "Invalid value for 'eeg': every window crosses a recording gap (BAD_ACQ_SKIP); no "
            f"{spec_eeg.window_s:g} s stretch of continuous recording is left."
        )
    timings["window"] = time.perf_counter() - tic

    renamed = {ch_names[i]: c for c, i in match.picks.items() if ch_names[i] != c}
    result = EEGWindows(
        data=windows,
        starts=starts,
        flags=flags,
        info={
            **ica_info,
            "eog_ignored": eog_ignored,
            "channels_renamed": renamed,
            "channels": {
                "mapped_by": list(match.how),
                "interpolated": list(to_interpolate),
                "missing": list(match.missing),
                "bad_in_file": bads_in_file,
                "retyped": retyped,
                "reference_electrode": reference_channel,
                "eeg_unit": options.eeg_unit or "from the file",
                "amplitude_uv_median": round(float(np.median(amplitude)), 3),
            },
            "reference": (f"average of {len(good)} channels" if spec_eeg.reference == "average" else "as recorded"),
            "line_noise": {
                "freq": line_freq,
                "source": line_source,
                "share_before": None if share_before is None else round(share_before, 4),
                "share_after": None if share_after is None else round(share_after, 4),
            },
            "bad_spans": sorted({d for d in ann.description if d.upper().startswith("BAD") and d.upper() != "BAD_ACQ_SKIP"}),
            "windows_dropped_gap": dropped_gap,
            "notes": notes,
            "resampled_from": None if file_sfreq == spec_eeg.sfreq else file_sfreq,
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


def _unit_field(raw: mne.io.BaseRaw, name: str) -> str:
    """The file's unit field for channel ``name`` ('' when blank or the format has none)."""
    unit = (getattr(raw, "_orig_units", None) or {}).get(name, "")
    return "" if unit in (None, "n/a") else str(unit)


# Channel types MNE scales by the file's unit field (a 'misc' channel is left as stored).
_SCALED_TYPES = ("eeg", "eog", "emg", "ecg", "seeg", "ecog", "dbs")


def _to_volts(raw: mne.io.BaseRaw, picks: Sequence[int], eeg_unit: str | None) -> np.ndarray:
    """(C, T) volts of ``picks``: the reader's values, with ``eeg_unit`` (the unit the file's
    numbers are in) replacing the unit field, and voltage units applied to channels the reader
    left unscaled (BrainVision 'μV' with a Greek mu: typed 'misc')."""
    data = raw.get_data(picks=list(picks))
    types = raw.get_channel_types()
    for row, i in enumerate(picks):
        name = raw.ch_names[i]
        factor = unit_factor(_unit_field(raw, name))
        applied = factor if (factor is not None and types[i] in _SCALED_TYPES) else 1.0
        stored = data[row] / applied  # the file's numbers
        if eeg_unit is not None:
            data[row] = stored * EEG_UNITS[eeg_unit]
        elif applied == 1.0 and factor is not None:
            data[row] = stored * factor
    return data


def _check_interpolation(
    to_interpolate: Sequence[str],
    match: ChannelMatch,
    bads_in_file: Sequence[str],
    ch_names: Sequence[str],
    spec_eeg: EEGSpec,
    options: EEGInputOptions,
) -> None:
    if not to_interpolate:
        return
    none_found = len(match.missing) == spec_eeg.n_channels  # nothing to interpolate from, whatever the limit
    if match.missing and (none_found or not options.interpolate_missing or len(match.missing) > options.max_interpolated):
        # One answer whether or not --interpolate-missing was given (it cannot help past the limit).
        also = f" The file also marks {', '.join(bads_in_file)} bad." if bads_in_file else ""
        raise MilmerInputError(
            missing_message(match.missing, ch_names, spec_eeg, max_interpolated=options.max_interpolated) + also
        )
    if not options.interpolate_missing:
        raise MilmerInputError(
            f"Invalid value for 'eeg': the file marks channel(s) {', '.join(bads_in_file)} bad "
            "(info['bads']); the model needs all of its channels. Let milmer interpolate them from "
            "their neighbours with --interpolate-missing (flagged in every output), or repair the file."
        )
    if len(to_interpolate) > options.max_interpolated or len(set(to_interpolate)) >= spec_eeg.n_channels:
        raise MilmerInputError(
            f"Invalid value for 'eeg': {len(to_interpolate)} of the model's {spec_eeg.n_channels} "
            f"channels would be interpolated ({', '.join(to_interpolate)}); at most "
            f"{options.max_interpolated} are (--max-interpolated). Interpolated channels carry no "
            f"signal of their own: the model needs a {spec_eeg.n_channels}-channel recording "
            "(a consumer headset with a few electrodes is not enough)."
        )


def _relative_annotations(raw: mne.io.BaseRaw) -> mne.Annotations:
    """``raw``'s annotations with onsets in seconds from its first sample, no orig_time."""
    import mne

    ann = raw.annotations
    shift = raw.first_time if ann.orig_time is not None else 0.0
    return mne.Annotations(ann.onset - shift, ann.duration, ann.description, orig_time=None)


def _bad_span_samples(annotations: mne.Annotations, sfreq: float, n_times: int) -> list[tuple[int, int]]:
    """The ``[start, stop)`` samples of every ``BAD_*`` annotation (gaps included), clipped to the data."""
    spans = []
    for onset, duration, desc in zip(annotations.onset, annotations.duration, annotations.description):
        if desc.upper().startswith("BAD"):
            a = max(int(np.floor(onset * sfreq)), 0)
            b = min(int(np.ceil((onset + duration) * sfreq)), n_times)
            if b > a:
                spans.append((a, b))
    return spans


def _good_data(work: mne.io.BaseRaw, channels: Sequence[str]) -> np.ndarray:
    """(C, T') volts of ``channels`` with BAD_* spans (gaps, artefacts) left out."""
    data = work.get_data(picks=list(channels), reject_by_annotation="omit")
    return data if data.shape[1] else work.get_data(picks=list(channels))


def _line_freq(
    raw_info: mne.Info, work: mne.io.BaseRaw, good: Sequence[str], spec_eeg: EEGSpec
) -> tuple[float | None, str]:
    """The mains frequency to notch and where it came from (spec, the file, detection)."""
    if spec_eeg.line_noise == "off":
        return None, "off in the spec"
    if spec_eeg.line_noise in ("50", "60"):
        return float(spec_eeg.line_noise), "the spec"
    stated = raw_info.get("line_freq")
    nyquist = raw_info["sfreq"] / 2
    if stated and stated < nyquist:
        return float(stated), "the file"
    found = detect_line_freq(_good_data(work, good), float(raw_info["sfreq"]))
    return (found, "detected") if found else (None, "none found")


def _interpolate(work: mne.io.BaseRaw, spec_eeg: EEGSpec) -> None:
    """Spherical-spline interpolation of ``work.info['bads']`` from standard 10-20 positions,
    then the average reference again (it now includes the interpolated channels)."""
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # renamed 'colin27_1005' in MNE 1.14
        from .channels import standard_1005_montage_name
        montage = mne.channels.make_standard_montage(standard_1005_montage_name())
    known = {n.lower() for n in montage.ch_names}
    unknown = [c for c in spec_eeg.channels if c.lower() not in known]
    if unknown:
        raise MilmerInputError(
            f"Invalid value for 'eeg': cannot interpolate: channel(s) {', '.join(unknown)} have no "
            "standard 10-20 position."
        )
    work.set_montage(montage, match_case=False, on_missing="ignore", verbose=_MNE_QUIET)
    work.interpolate_bads(reset_bads=True, verbose=_MNE_QUIET)
    if spec_eeg.reference == "average":
        work.set_eeg_reference("average", projection=False, verbose=_MNE_QUIET)


def _usable_eog(raw: mne.io.BaseRaw, spec_eeg: EEGSpec) -> tuple[list[str], dict[str, str]]:
    """EOG channels fit to guide ICA, and why any others were left out."""
    names = find_eog(raw.ch_names, raw.get_channel_types(), spec_eeg)
    usable, ignored = [], {}
    for name in names:
        trace = raw.get_data(picks=[name])[0]
        finite = np.isfinite(trace)
        if not finite.any():
            ignored[name] = "NaN or infinite values"
        elif trace[finite].std() < FLAT_STD_V:
            ignored[name] = "flat"
        else:
            usable.append(name)
    return usable, ignored


def _remove_eye_artefacts(
    work: mne.io.BaseRaw, spec_eeg: EEGSpec, eog_names: list[str]
) -> dict[str, Any]:
    """Fit ICA (``spec_eeg.ica.method``: Picard or FastICA) on the EEG channels of ``work`` and
    remove eye components in place."""
    from mne.preprocessing import ICA

    cfg = spec_eeg.ica
    if not cfg.enabled:
        return {"ica_excluded": [], "ica_n_components": 0, "eog_source": "ICA disabled",
                "ica_scores_max": None, "ica_scores_excluded": [], "ica_method": None,
                "ica_n_iter": None, "ica_converged": None, "ica_fit_decim": None}  # fmt: skip
    if eog_names:
        reference, source = eog_names, f"EOG channels {eog_names}"
    else:
        by_key = {canonical_name(c): c for c in spec_eeg.channels}
        reference = [by_key[k] for k in map(canonical_name, cfg.proxy_channels) if k in by_key]
        source = f"proxy {'/'.join(reference)}" if reference else "none (no EOG or proxy channels)"

    n_components = cfg.n_components
    if n_components is None:
        # The data's rank (average reference and interpolation each remove one): ICA on a
        # zero-variance direction would divide by ~0. Singular values > 1e-6 of the largest, from
        # the (C, C) Gram matrix's eigenvalues (> 1e-12 of the largest): an SVD of the whole
        # (C, T) recording took seconds on 10 min.
        good = _good_data(work, list(spec_eeg.channels))
        from threadpoolctl import threadpool_limits  # scikit-learn's dependency

        with threadpool_limits(limits=1):
            eig = np.linalg.eigvalsh(good @ good.T)[::-1]  # (C,) descending
        n_components = int((eig > eig[0] * 1e-12).sum())
    ica = ICA(
        n_components=n_components,
        method=cfg.method,
        fit_params=ica_fit_params(cfg),
        max_iter=cfg.max_iter,
        random_state=cfg.random_state,
        verbose=_MNE_QUIET,
    )
    decim = fit_decimation(work.n_times, float(work.info["sfreq"]), cfg.max_fit_s)
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency

    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # Recorded in info["ica_converged"] instead of printed once per recording.
        warnings.filterwarnings("ignore", message="FastICA did not converge")
        warnings.filterwarnings("ignore", message="Picard did not converge")
        # BAD_* spans (artefacts, gaps) are left out of the fit: a 1 mV movement artefact would
        # take the components meant for the blinks. Long recordings are fitted on every k-th sample.
        # One BLAS thread: the products are (31 x 7680) at most, too small to gain from threads,
        # and BLAS threads on a machine busy with decoding and inference make the fit minutes long.
        ica.fit(
            work, picks="eeg", reject_by_annotation=True, decim=decim if decim > 1 else None, verbose=_MNE_QUIET
        )

    excluded: list[int] = []
    strength = np.zeros(ica.n_components_)
    if reference:
        found, scores = ica.find_bads_eog(
            work, ch_name=reference, threshold=cfg.eog_threshold, verbose=_MNE_QUIET
        )
        strength = np.abs(np.atleast_2d(np.asarray(scores))).max(axis=0)  # (n_components,)
        excluded = eye_components(found, strength, cfg)
    if excluded:
        ica.apply(work, exclude=excluded, verbose=_MNE_QUIET)
    return {
        "ica_excluded": [int(i) for i in excluded],
        "ica_n_components": int(ica.n_components_),
        "eog_source": source,
        "ica_scores_max": float(strength.max()) if reference else None,
        "ica_scores_excluded": [round(float(strength[i]), 4) for i in excluded],
        "ica_method": cfg.method,
        "ica_n_iter": int(ica.n_iter_),
        "ica_converged": bool(ica.n_iter_ < cfg.max_iter),
        "ica_fit_decim": decim,
    }


def ica_fit_params(cfg: ICASpec) -> dict[str, Any]:
    """``fit_params`` of ``mne.preprocessing.ICA`` for ``cfg.method`` (see ``ICASpec``).

    Picard as Picard-O (``ortho=True, extended=True``: FastICA's contrast, MNE's recipe);
    FastICA with ``cfg.tol`` (MNE adds parallel/logcosh). Refuses Picard when python-picard is
    not installed, naming the package.
    """
    if cfg.method == "picard":
        import importlib.util

        if importlib.util.find_spec("picard") is None:
            raise MilmerInputError(
                "Invalid value for 'ica.method': 'picard' needs the python-picard package "
                "(pip install python-picard), which is not installed; install it, or use a spec "
                "with ica.method = 'fastica' (slower, and it may not converge)."
            )
        return {"ortho": True, "extended": True, "tol": cfg.tol}
    return {"tol": cfg.tol}


def eye_components(found: Sequence[int], strength: np.ndarray, cfg: ICASpec) -> list[int]:
    """The decision rule: which of MNE's z-score outliers ``found`` are removed.

    strength: (n_components,) |correlation| of each component with the EOG/proxy signal.
    A component is removed when it is an outlier AND ``strength >= cfg.min_correlation``, at
    most ``cfg.max_excluded``, strongest first. The z-score rule alone also flags a component of
    pure brain signal fairly often (|r| 0.35-0.6, moving with the FastICA solver's version);
    blink components correlate at 0.95+, so the decision has a wide margin on either side.
    """
    kept = [int(i) for i in found if strength[i] >= cfg.min_correlation]
    return _strongest(kept, strength, cfg.max_excluded)


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
