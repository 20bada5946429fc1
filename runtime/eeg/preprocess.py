"""EEG preprocessing: one recording -> the model's ``(W, 32, 384)`` windows.

Steps, in order (each an MNE call where MNE has one), so that any recording ends up in the
state of DEAP's preprocessed data (32 channels in the spec's order, average reference, no mains
hum, band-passed, eye artefacts removed, 128 Hz) or is refused with a way forward:

1. channels: find the spec's channels (:func:`~.channels.match_channels`: aliases, shared
   reference suffixes, BioSemi presets, ``--channel-map``) plus any EOG channels; picked
   channels the reader typed non-EEG are used as EEG (a BrainVision ``μV`` unit MNE does not
   know is applied); missing channels and channels the file marks bad (``info['bads']``) are
   interpolated with ``--interpolate-missing`` (spherical splines, standard 10-20 positions,
   at most ``max_interpolated``) or refused; each picked channel is checked on its own before
   anything mixes channels (:mod:`.bad_channels`: NaN throughout, flat, stuck at a non-zero
   constant, not EEG, an implausible amplitude in a minority of channels) and interpolated or
   refused, naming it; one channel flat at 0 V is the stored reference electrode; a long
   file (more than :data:`~.decimate.MAX_FULL_RATE_BYTES` of channels at its own rate) is read
   in chunks and resampled to ``spec.sfreq`` first (:mod:`.decimate`), so that the one
   full-length copy, which every later step edits in place, is at the model's rate (and, with
   the windows, in a scratch file once large, :mod:`.scratch`: peak memory flat in length);
   NaN runs become gaps, clipping becomes ``BAD_clipped`` spans (:mod:`.artefacts`), and every
   ``BAD_*`` span is bridged by a straight line so that the filters cannot carry what it holds
   into clean windows;
2. units: ``--eeg-unit`` overrides the file's unit field;
3. reference: ``spec.reference`` (``'average'``: the mean of the good spec channels);
4. line noise: notch ``spec.line_noise`` (50/60 Hz, from the file or detected) and its harmonics
   below the model's Nyquist (higher ones go with the resampling's anti-alias filter);
5. resample to ``spec.sfreq`` (only when the rate still differs: MNE's FFT resampling of a short
   recording; a long one is already there, by polyphase filtering, so its windows differ from
   the short-file path's by the two anti-alias filters, ~1 % of their RMS);
6. band-pass ``l_freq``-``h_freq`` (MNE's default zero-phase FIR design); gaps (``BAD_ACQ_SKIP``)
   are filtered as separate segments;
7. scale check: a robust amplitude per channel within :data:`~.units.PLAUSIBLE_UV`, else refused
   (every k-th sample of recordings longer than :data:`AMPLITUDE_MAX_S`);
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
``preprocess_eeg(read_raw(path), spec.eeg, options=...)``. :func:`preprocess_eeg` returns the
windows and a typed :class:`~.report.EEGReport`; :func:`preprocess_raw` returns the windows only
(their ``info`` is the report's JSON form). :func:`preprocess_array` wraps other in-memory sources
(a stream buffer, a numpy file). The steps' building blocks work on their own: :mod:`.filters`
(band-pass, notch on an array), :mod:`.ica` (eye-artefact ICA on any MNE recording).
"""


from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, overload

import numpy as np

from ..check import MilmerInputError, check_array, check_nonempty, check_option, check_positive, check_same_length
from ..spec import EEGSpec
from ..windows import EEGWindows
from .artefacts import MNE_QUIET, good_sample, kept_samples
from .bad_channels import FLAT_STD_V, interpolate_bads
from .filters import average_reference, bandpass, cut_windows, line_freq, line_harmonics, notch, raw_windows
from .ica import ICATrace, eye_components, fit_decimation, ica_fit_params, make_trace, remove_eye_artefacts, trace_data
from .quality import GAP, line_share_of, window_spans
from .report import EEGNote, EEGReport, LineNoiseReport
from .options import MAX_INTERPOLATED, EEGInputOptions
from .units import check_amplitude, robust_amplitude_uv
from .working import working_recording

if TYPE_CHECKING:
    import mne

#: Seconds of samples (every k-th beyond) the per-channel amplitude check reads (step 7).
AMPLITUDE_MAX_S = 3600.0

__all__ = [
    "FLAT_STD_V",
    "MAX_INTERPOLATED",
    "EEGInputOptions",
    "EEGReport",
    "eye_components",
    "ICATrace",
    "array_to_raw",
    "bandpass",
    "cut_windows",
    "fit_decimation",
    "ica_fit_params",
    "preprocess_eeg",
    "preprocess_raw",
    "preprocess_array",
]



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
    """:func:`preprocess_eeg`'s windows (``info``: the report's JSON form, :meth:`EEGReport.to_dict`),
    and with ``keep_trace=True`` the :class:`ICATrace` too."""
    windows, report = preprocess_eeg(raw, spec_eeg, baseline_s=baseline_s, keep_trace=keep_trace, options=options)
    if not keep_trace:
        return windows
    assert report.trace is not None
    return windows, report.trace


def preprocess_eeg(
    raw: mne.io.BaseRaw,
    spec_eeg: EEGSpec,
    *,
    baseline_s: float = 0.0,
    keep_trace: bool = False,
    options: EEGInputOptions | None = None,
) -> tuple[EEGWindows, EEGReport]:
    """Preprocess one recording (see the module docstring); ``raw`` is not modified.

    Returns windows ``data: (W, n_channels, window_samples) float32`` in microvolts, ``starts``
    (W,) in seconds from the recording's start (baseline and gaps included) and ``flags`` per
    window, and the :class:`~.report.EEGReport` (typed facts and notes with a code and a
    severity; with ``keep_trace=True`` its ``trace`` is the before/after-ICA excerpt). Raises
    MilmerInputError for a recording the model cannot use, naming the way forward.
    """
    options = options or EEGInputOptions()
    check_positive("baseline_s", baseline_s, allow_zero=True)
    file_sfreq = float(raw.info["sfreq"])
    duration = raw.n_times / file_sfreq
    _check_long_enough(duration, baseline_s, spec_eeg)
    step = working_recording(raw, spec_eeg, options)
    work, eog_names, timings, notes = step.work, step.eog_names, step.timings, step.notes
    sfreq = float(work.info["sfreq"])
    to_interpolate = list(step.channels.interpolated)
    good = [c for c in spec_eeg.channels if c not in to_interpolate]

    tic = time.perf_counter()
    freq, source = line_freq(step.line_freq_in_file, work, good, spec_eeg)
    band = (max(spec_eeg.l_freq, 1.0), spec_eeg.sfreq / 2)
    share_before = line_share_of(work, good, freq, band) if freq else None
    if spec_eeg.reference == "average":
        average_reference(work)  # bads excluded
    harmonics = line_harmonics(freq, sfreq, spec_eeg.sfreq)
    if harmonics.size:
        notch(work, harmonics, ["eeg", "eog"] if eog_names else ["eeg"])
    timings["reference"] = time.perf_counter() - tic

    tic = time.perf_counter()
    if sfreq != spec_eeg.sfreq:
        work.resample(spec_eeg.sfreq, verbose=MNE_QUIET)
    timings["resample"] = time.perf_counter() - tic

    tic = time.perf_counter()
    bandpass(work, spec_eeg)
    timings["filter"] = time.perf_counter() - tic

    # A channel at a time, on at most AMPLITUDE_MAX_S of samples (every k-th beyond): bounded memory.
    keep, cap = kept_samples(work), int(AMPLITUDE_MAX_S * sfreq)
    amplitude = np.concatenate([robust_amplitude_uv(good_sample(work, c, cap, keep)) for c in good])
    del keep
    check_amplitude(amplitude, good, step.unit_fields, options.eeg_unit)
    if to_interpolate:
        tic = time.perf_counter()
        interpolate_bads(work, spec_eeg)
        timings["interpolate"] = time.perf_counter() - tic

    before = trace_data(work, spec_eeg) if keep_trace else None  # (5, T) microvolts
    tic = time.perf_counter()
    ica = remove_eye_artefacts(work, spec_eeg, eog_names)
    timings["ica"] = time.perf_counter() - tic

    tic = time.perf_counter()
    share_after = line_share_of(work, spec_eeg.channels, freq, band) if freq else None
    skip = int(round(baseline_s * spec_eeg.sfreq))
    n_windows = max(work.n_times - skip, 0) // spec_eeg.window_samples
    first_samples = skip + np.arange(n_windows) * spec_eeg.window_samples
    starts = first_samples / float(spec_eeg.sfreq)
    # _check_long_enough guarantees a window: round(T * ratio) >= window + round(baseline * sfreq).
    assert n_windows > 0, (work.n_times, skip)
    ann = work.annotations
    keep, spans = window_spans(starts, spec_eeg.window_s, ann.onset, ann.duration, ann.description)
    interp_flag = ("interpolated:" + ",".join(to_interpolate),) if to_interpolate else ()
    # An EGI net: every channel was interpolated from the net's electrodes (runtime.eeg.egi).
    interp_flag += tuple(f"interpolated:{n.data['preset']}" for n in notes if n.code == "egi-interpolated")
    flags = [tuple(f"bad-span:{d}" for d in spans[i]) + interp_flag for i in np.flatnonzero(keep)]
    dropped_gap = tuple(round(float(t), 3) for t in starts[~keep])
    if dropped_gap:
        notes.append(EEGNote.of(
            "gap-windows-dropped",
            f"dropped {len(dropped_gap)} window(s) that cross a recording gap (EEG starts "
            + ", ".join(f"{t:g}" for t in dropped_gap) + " s)",
            starts_s=list(dropped_gap),
        ))  # fmt: skip
    starts = starts[keep]
    check_nonempty(
        "eeg", starts, f"{spec_eeg.window_s:g} s window of continuous recording",
        hint="every window crosses a recording gap (BAD_ACQ_SKIP)",
    )
    # A few windows at a time from the recording: no full-length copy (peak memory, item 13).
    windows = raw_windows(work, first_samples[keep], spec_eeg.window_samples)
    timings["window"] = time.perf_counter() - tic

    report = EEGReport(
        channels=dataclasses.replace(step.channels, amplitude_uv_median=round(float(np.median(amplitude)), 3)),
        ica=ica,
        line_noise=LineNoiseReport(
            freq=freq, source=source,
            share_before=None if share_before is None else round(share_before, 4),
            share_after=None if share_after is None else round(share_after, 4),
        ),  # fmt: skip
        reference=f"average of {len(good)} channels" if spec_eeg.reference == "average" else "as recorded",
        bad_spans=tuple(sorted({d for d in ann.description if d.upper().startswith("BAD") and d.upper() != GAP})),
        windows_dropped_gap=dropped_gap,
        resampled_from=None if file_sfreq == spec_eeg.sfreq else file_sfreq,
        decimated_by=int(round(file_sfreq / sfreq)),
        baseline_s=float(baseline_s),
        n_windows=int(len(windows)),
        duration_s=float(duration),
        timings={k: round(v, 4) for k, v in timings.items()},
        notes=tuple(notes),
        trace=None if before is None else make_trace(before, trace_data(work, spec_eeg), spec_eeg, ica),
    )
    return EEGWindows(data=windows, starts=starts, flags=flags, info=report.to_dict()), report


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
    check_array("data", data, shape=(len(ch_names), "samples"), hint="one channel per name")
    types = list(ch_types) if ch_types is not None else ["eeg"] * len(ch_names)
    check_same_length(("ch_names", "ch_types"), (ch_names, types))
    info = mne.create_info(list(ch_names), float(sfreq), types)
    scale = 1e-6 if unit == "uV" else 1.0
    return mne.io.RawArray(data * scale, info, verbose=MNE_QUIET)


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
