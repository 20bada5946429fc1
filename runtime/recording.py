"""A recording in: check paths, probe the video, read and preprocess the EEG, align, select windows.

The one "recording in" sequence: ``milmer preprocess`` (:func:`~.preprocess.preprocess_recording`)
and ``milmer-infer`` (:meth:`~.pipeline.Pipeline.run`) both call :func:`open_recording`, then take
the face crops of :attr:`Recording.windows` from the video. Every rule about what a recording
must be (channels, units, reference, gaps, bad channels, DEAP trials) lives below it, in
``runtime/eeg/``; what it changed or doubts is in :attr:`Recording.notes` and the windows' flags.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .check import MilmerInputError
from .eeg.preprocess import EEGInputOptions
from .eeg.report import EEGNote
from .spec import ModelSpec
from .windows import EEGWindows

if TYPE_CHECKING:
    import mne

    from .eeg.preprocess import ICATrace
    from .eeg.report import EEGReport
    from .eeg.timing import EEGTiming
    from .face.timing import VideoTiming
    from .face.video import VideoInfo
    from .timebase import Alignment

__all__ = [
    "DEAP_BASELINE_S",
    "Coverage",
    "CoveragePredicate",
    "Recording",
    "RecordingOptions",
    "check_recording_paths",
    "open_recording",
    "read_eeg",
    "read_eeg_timed",
    "align_recording",
    "select_windows",
    "window_coverage",
]

#: DEAP trials start with a 3 s pre-trial baseline, dropped by default for ``.dat`` input.
DEAP_BASELINE_S = 3.0


@dataclass(frozen=True)
class RecordingOptions:
    """Everything the user says about a recording (the CLI's recording options).

    offset_s:   the video's container-timeline time (s) at EEG t = 0 (``--offset``; positive: the
                video started first); None (``--offset auto``): from the evidence (:mod:`.sync`)
    baseline_s: seconds to drop at the EEG's start; None: 3 for a DEAP ``.dat`` trial, else 0
    trial:      DEAP presentation trial (``--trial``), required for ``.dat`` input
    eeg:        unit, channel map and interpolation options (:class:`~.eeg.preprocess.EEGInputOptions`)
    eeg_rate:   the EEG's true sampling rate (Hz) when its clock drifts (``--eeg-rate``)
    video_fps:  the video's true frame rate when its header is wrong (``--video-fps``)
    """

    offset_s: float | None = None
    baseline_s: float | None = None
    trial: int | None = None
    eeg: EEGInputOptions = field(default_factory=EEGInputOptions)
    eeg_rate: float | None = None
    video_fps: float | None = None

    def sync(self) -> Any:
        """The time options as :class:`~.sync.SyncOptions` (checked there)."""
        from .sync import SyncOptions

        return SyncOptions(self.offset_s, self.eeg_rate, self.video_fps)


@dataclass(frozen=True)
class Coverage:
    """Which EEG windows the video covers; video time = EEG time + ``offset_s``.

    covered: (W,) bool, True where the video covers the window (:func:`window_coverage`). The EEG
    windows are contiguous, so uncovered ones sit at the start (before the video starts) and/or
    at the end (past the video's end), never in between.
    """

    covered: np.ndarray
    starts: np.ndarray
    window_s: float
    video_duration_s: float
    offset_s: float
    eeg_duration_s: float
    alignment: Alignment | None = None

    def video_time(self, eeg_s: np.ndarray | float) -> np.ndarray:
        """Video local times (s) of EEG times (s), by the alignment (else ``+ offset_s``)."""
        if self.alignment is not None:
            return self.alignment.eeg_to_video(eeg_s)
        return np.asarray(eeg_s, dtype=np.float64) + self.offset_s

    @property
    def n_windows(self) -> int:
        return int(self.covered.size)

    @property
    def n_covered(self) -> int:
        return int(self.covered.sum())

    @property
    def n_dropped(self) -> int:
        return self.n_windows - self.n_covered

    @property
    def n_dropped_start(self) -> int:
        """Windows that begin before the video does."""
        with np.errstate(invalid="ignore"):
            return int(((self.video_time(self.starts) < 0) & ~self.covered).sum())

    @property
    def n_dropped_end(self) -> int:
        """Windows that end past the video's end."""
        return self.n_dropped - self.n_dropped_start

    @property
    def video_unused_end_s(self) -> float:
        """Seconds of video after the EEG's end (0 when the EEG runs as long or longer)."""
        end = float(self.video_time(self.eeg_duration_s))
        return max(0.0, self.video_duration_s - end) if math.isfinite(end) else 0.0

    def select(self, eeg_windows: EEGWindows) -> EEGWindows:
        """The covered windows only (data copied, ``info`` shared, flags kept)."""
        return eeg_windows.select(self.covered)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_windows": self.n_windows,
            "n_covered": self.n_covered,
            "n_dropped_start": self.n_dropped_start,
            "n_dropped_end": self.n_dropped_end,
            "video_duration_s": round(float(self.video_duration_s), 4),
            "eeg_duration_s": round(float(self.eeg_duration_s), 4),
            "offset_s": float(self.offset_s),
            "video_unused_end_s": round(self.video_unused_end_s, 4),
            **({"alignment": self.alignment.to_dict()} if self.alignment is not None else {}),
        }

    def describe(self) -> str | None:
        """A warning for recordings of unequal length (None when nothing is left out).

        Names the windows dropped on each side with their EEG times, and unused video past the
        EEG's end when it is at least one window long.
        """
        w = self.window_s
        parts = []
        if self.n_dropped_start:
            n = self.n_dropped_start
            first = float(self.starts[0])
            parts.append(
                f"dropped {n} window{'s' * (n != 1)} ({n * w:g} s) at the start "
                f"(EEG {first:.1f}-{first + n * w:.1f} s lies before the video starts)"
            )
        if self.n_dropped_end:
            n = self.n_dropped_end
            last_end = float(self.starts[-1]) + w
            parts.append(
                f"dropped {n} window{'s' * (n != 1)} ({n * w:g} s) at the end "
                f"(EEG {last_end - n * w:.1f}-{last_end:.1f} s lies past the video's end)"
            )
        if self.video_unused_end_s >= w:
            parts.append(
                f"the last {self.video_unused_end_s:.1f} s of video come after the EEG's end and are not used"
            )
        if not parts:
            return None
        kept = self.starts[self.covered]
        return (
            f"The video ({self.video_duration_s:.1f} s, offset {self.offset_s:+.1f} s) and the EEG "
            f"({self.eeg_duration_s:.1f} s) differ in length: predicting on the overlap only, "
            f"{self.n_covered} of {self.n_windows} windows (EEG {kept[0]:.1f}-{kept[-1] + w:.1f} s); "
            + "; ".join(parts)
            + "."
        )


#: ``video_covered(video_starts, video_ends) -> (W,) bool``: which windows (in VIDEO seconds)
#: the video covers, on top of the span or sampled-frames rule of :func:`window_coverage`.
CoveragePredicate = Callable[[np.ndarray, np.ndarray], np.ndarray]


def window_coverage(
    eeg_windows: EEGWindows,
    window_s: float,
    video_duration_s: float,
    offset_s: float = 0.0,
    *,
    frames_per_window: int | None = None,
    video_covered: CoveragePredicate | np.ndarray | None = None,
    alignment: Alignment | None = None,
) -> Coverage:
    """Which of ``eeg_windows`` a video of ``video_duration_s`` seconds (its real end) covers.

    With ``alignment`` (:class:`~.timebase.Alignment`), EEG times map to video times through it
    (rates, pauses, container timeline) and ``offset_s`` is ignored; a sampled instant in a pause
    of the video is outside it.

    With ``frames_per_window``, a window is covered when all its sampled frames lie inside the
    video (:func:`~.face.video.covered_windows`: a 60 s recording at 29.97 fps measures 59.993 s
    and still covers its last 3 s window); without it, when its whole span does. Where
    ``video_covered`` (a (W,) bool mask or a predicate on the windows' video times) is given, it
    must say so too.

    Raises MilmerInputError when the video covers none of them.
    """
    starts = np.asarray(eeg_windows.starts, dtype=np.float64)
    if alignment is not None:
        from .face.video import sample_times

        offset_s = alignment.offset_s
        if frames_per_window is not None:
            vt = alignment.eeg_to_video(sample_times(starts, window_s, frames_per_window))  # (W, F)
            with np.errstate(invalid="ignore"):
                covered = np.all(np.isfinite(vt) & (vt >= 0.0) & (vt < video_duration_s), axis=1)
        else:
            v0, v1 = alignment.eeg_to_video(starts), alignment.eeg_to_video(starts + window_s)
            with np.errstate(invalid="ignore"):
                covered = np.isfinite(v0) & np.isfinite(v1) & (v0 >= 0) & (v1 <= video_duration_s + 1e-6)
        video_starts, ends = alignment.eeg_to_video(starts), alignment.eeg_to_video(starts + window_s)
    elif frames_per_window is not None:
        from .face.video import covered_windows

        video_starts, ends = starts + offset_s, starts + window_s + offset_s
        covered = covered_windows(starts, window_s, frames_per_window, video_duration_s, offset_s)
    else:
        video_starts, ends = starts + offset_s, starts + window_s + offset_s
        covered = (starts + offset_s >= 0) & (ends <= video_duration_s + 1e-6)
    if video_covered is not None:
        extra = video_covered(video_starts, ends) if callable(video_covered) else video_covered
        covered &= np.asarray(extra, bool)
    if not covered.any():
        how = f"alignment: {alignment.summary()}" if alignment is not None else f"offset {offset_s:+.1f} s"
        raise MilmerInputError(
            f"Invalid value for 'video': the video ({video_duration_s:.1f} s, {how}) "
            f"does not cover any {window_s:g} s EEG window "
            f"(EEG: {eeg_windows.info.get('duration_s', float('nan')):.1f} s); check --offset, the video "
            "time (s) at EEG t = 0."
        )
    return Coverage(
        covered=covered,
        starts=starts,
        window_s=float(window_s),
        video_duration_s=float(video_duration_s),
        offset_s=float(offset_s),
        eeg_duration_s=float(eeg_windows.info.get("duration_s", float(starts[-1] + window_s))),
        alignment=alignment,
    )


def select_windows(
    eeg_windows: EEGWindows,
    window_s: float,
    video_duration_s: float,
    offset_s: float = 0.0,
    *,
    frames_per_window: int | None = None,
    video_covered: CoveragePredicate | np.ndarray | None = None,
    alignment: Alignment | None = None,
) -> tuple[EEGWindows, np.ndarray, Coverage]:
    """The windows to predict: those the video covers (:func:`window_coverage`).

    Returns the kept windows (flags kept), their indices (K,) among ``eeg_windows`` and the
    coverage. Per-window face flags are added by the face path after extraction.
    """
    coverage = window_coverage(
        eeg_windows, window_s, video_duration_s, offset_s, frames_per_window=frames_per_window,
        video_covered=video_covered, alignment=alignment,
    )
    return coverage.select(eeg_windows), np.flatnonzero(coverage.covered), coverage


def read_eeg(
    eeg: str | os.PathLike[str], options: RecordingOptions, notes: list[EEGNote]
) -> tuple[mne.io.BaseRaw, float, dict[str, Any]]:
    """The EEG as an MNE recording, the baseline to drop and what was read (:func:`read_eeg_timed`
    without the timing)."""
    raw, baseline, source, _ = read_eeg_timed(eeg, options, notes)
    return raw, baseline, source


def read_eeg_timed(
    eeg: str | os.PathLike[str], options: RecordingOptions, notes: list[EEGNote]
) -> tuple[mne.io.BaseRaw, float, dict[str, Any], EEGTiming]:
    """The EEG as an MNE recording, the baseline to drop, what was read and what it says about time.

    A DEAP ``sXX.dat`` gives trial ``options.trial`` (presentation order, mapped to the file's
    experiment order through ``participant_ratings.csv``); an ``.xdf`` (LabRecorder) and the other
    formats of :mod:`.eeg.formats` go there; anything else to :func:`~.eeg.io.read_raw`. MNE's
    warnings go to ``notes`` (:class:`~.eeg.report.EEGNote`, code 'reader-warning'). A BrainVision recording paused and resumed (several
    dated "New Segment" markers) is put on its true time axis (:func:`~.eeg.timing.place_segments`).
    """
    from .check import check_path_exists, check_suffix
    from .eeg.formats import FORMAT_SUFFIXES, eeg_path_kind, read_format, refuse_text_format
    from .eeg.io import EEG_SUFFIXES, read_raw
    from .eeg.timing import EEGTiming, brainvision_segments, meas_date_of, place_segments

    path = Path(eeg)
    accepted = (*EEG_SUFFIXES, ".dat", *FORMAT_SUFFIXES)
    refuse_text_format(check_path_exists("eeg", path, eeg_path_kind(path)), accepted)
    suffix = check_suffix("eeg", path, accepted)
    if suffix == ".dat":
        from .eeg.deap import deap_trial
        from .eeg.io import deap_trial_to_raw, load_deap_dat

        which = deap_trial(path, options.trial)
        dat = load_deap_dat(path)
        raw = deap_trial_to_raw(dat["data"][which.row][:40])
        baseline = DEAP_BASELINE_S if options.baseline_s is None else options.baseline_s
        source = {
            "format": "DEAP .dat",
            "subject": which.subject,
            "trial": which.trial,
            "experiment_id": which.experiment_id,
            "row": which.row,
            "ratings": dict(zip(("valence", "arousal", "dominance", "liking"), which.ratings)),
        }
        notes.append(EEGNote.of(
            "deap-trial",
            f"{path.name}: DEAP participant {which.subject}, trial {which.trial} (presentation order) = "
            f"experiment {which.experiment_id}, row {which.row} ({which.ratings_csv.name}); "
            f"the first {baseline:g} s (pre-trial baseline) dropped",
        ))  # fmt: skip
        return raw, baseline, source, EEGTiming()
    if options.trial is not None:
        raise MilmerInputError(
            f"Invalid value for '--trial': only DEAP .dat files hold several trials, got {path.name!r}."
        )
    if suffix in FORMAT_SUFFIXES:
        raw, timing = read_format(path, notes)
    else:
        lines: list[str] = []
        raw = read_raw(path, lines)
        notes.extend(EEGNote.of("reader-warning", line) for line in lines)
        start, start_source = meas_date_of(raw, suffix)
        segments: tuple[Any, ...] = ()
        if suffix == ".vhdr":
            markers = brainvision_segments(path)
            raw, segments, pauses = place_segments(raw, markers)
            undated = sum(m.date is None for m in markers[1:])
            dated = len(markers) - 1 - undated if markers and markers[0].date is not None else 0
            if dated > len(segments):
                notes.append(EEGNote.of(
                    "segments-unplaced",
                    f"{path.name}: {dated - len(segments)} dated New Segment marker(s) not placed (no pause before "
                    "them, a date before the previous segment's end, or a pause over an hour): taken to follow on",
                    count=dated - len(segments),
                ))  # fmt: skip
            if undated:
                notes.append(EEGNote.of(
                    "segments-undated",
                    f"{path.name}: {undated} later New Segment marker(s) carry no date: those segments are taken "
                    "to follow on without a pause (a recorder pause cannot be placed without its date)",
                    count=undated,
                ))  # fmt: skip
            if pauses:
                notes.append(EEGNote.of(
                    "recording-paused",
                    f"{path.name}: recording paused (BrainVision New Segment markers): {len(pauses)} pause(s) "
                    + ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in pauses)
                    + " put at their recorded times and marked BAD_ACQ_SKIP",
                    pauses_s=[[a, b] for a, b in pauses],
                ))  # fmt: skip
        timing = EEGTiming(start, start_source, segments)
    return raw, options.baseline_s or 0.0, {"format": suffix.lstrip(".")}, timing


@dataclass
class Recording:
    """A recording, checked and preprocessed, ready for the face path.

    windows:    the EEG windows the video covers (flags per window), ``indices`` (K,) their
                positions among all EEG windows
    coverage:   which windows the video covers and why others were dropped
    alignment:  the EEG and video clocks used to pair them (:class:`~.timebase.Alignment`)
    notes:      what the runtime changed or doubts (reader warnings, EDF+D gaps, recorder pauses,
                channels mapped/interpolated, reference electrode, line noise, dropped windows, ICA),
                each with a code and a severity (:class:`~.eeg.report.EEGNote`; ``str(note)`` is its text)
    eeg_report: the typed EEG preprocessing report
    """

    video: Path
    eeg: Path
    video_info: VideoInfo
    windows: EEGWindows
    indices: np.ndarray
    coverage: Coverage
    options: RecordingOptions
    baseline_s: float
    source: dict[str, Any]
    notes: list[EEGNote]
    timings: dict[str, float]
    trace: ICATrace | None = None
    alignment: Alignment | None = None
    video_timing: VideoTiming | None = None
    eeg_report: EEGReport | None = None

    @property
    def eeg_info(self) -> dict[str, Any]:
        return self.windows.info


def check_recording_paths(
    video: str | os.PathLike[str], eeg: str | os.PathLike[str], *, usage: str = "milmer-infer VIDEO EEG"
) -> tuple[Path, Path]:
    """Both paths exist and are of their kind (the video's and the EEG readers' suffixes);
    swapped arguments are named as such. Cheap: called before a model or recording loads."""
    from .check import check_input_pair
    from .eeg.formats import FORMAT_SUFFIXES, eeg_path_kind, refuse_text_format
    from .eeg.io import EEG_SUFFIXES
    from .face.video import VIDEO_SUFFIXES

    suffixes = (*EEG_SUFFIXES, *FORMAT_SUFFIXES, ".dat")
    refuse_text_format(Path(eeg), suffixes)  # OpenBCI/BrainFlow text: refused with the way to convert
    return check_input_pair(video, eeg, VIDEO_SUFFIXES, suffixes, usage=usage, eeg_kind=eeg_path_kind(eeg))


def open_recording(
    video: str | os.PathLike[str],
    eeg: str | os.PathLike[str],
    spec: ModelSpec,
    options: RecordingOptions | None = None,
    *,
    keep_trace: bool = False,
    video_covered: CoveragePredicate | np.ndarray | None = None,
) -> Recording:
    """Check, read, preprocess and align one recording (see the module docstring).

    Order: the time options and both paths, the video's probe and container timing (fails fast
    before the slow EEG work), the EEG read (:func:`read_eeg_timed`), the alignment of the two
    (:func:`~.sync.align`; its warnings as :class:`~.sync.AlignmentWarning`), the EEG
    preprocessed (:func:`~.eeg.preprocess.preprocess_raw`), the windows the video covers (:func:`select_windows`: those whose ``spec.face.frames_per_window``
    sampled frames lie in the video). Raises MilmerInputError for anything
    the recording cannot be used for, naming the option that helps.
    """
    from .eeg.preprocess import preprocess_eeg
    from .face.timing import probe_video_timing
    from .face.video import probe_video
    from .sync import AlignmentWarning, align

    options = options or RecordingOptions()
    sync_options = options.sync()  # checks --offset, --eeg-rate, --video-fps
    video_path, eeg_path = check_recording_paths(video, eeg, usage="VIDEO EEG")
    info = probe_video(video_path)
    video_timing = probe_video_timing(video_path, info)
    notes: list[EEGNote] = []
    tick = time.perf_counter()
    raw, baseline_s, source, eeg_timing = read_eeg_timed(eeg_path, options, notes)
    sfreq, eeg_duration = float(raw.info["sfreq"]), raw.n_times / float(raw.info["sfreq"])
    tock = time.perf_counter()
    # The time model needs only the files' facts: built (and its warnings given) before the slow part.
    alignment = align(sfreq, eeg_duration, eeg_timing, info, video_timing, sync_options)
    for message in alignment.warnings():  # shown by both commands as one line each
        warnings.warn(f"Alignment: {message}", AlignmentWarning, stacklevel=2)
    eeg_windows, report = preprocess_eeg(raw, spec.eeg, baseline_s=baseline_s, keep_trace=keep_trace, options=options.eeg)
    del raw
    timings = {"eeg_read": tock - tick, "eeg_preprocess": time.perf_counter() - tock}
    notes.extend(report.all_notes())
    if eeg_timing.details:
        source = {**source, **eeg_timing.details}
    kept, indices, coverage = select_windows(
        eeg_windows, spec.eeg.window_s, info.duration_s, alignment.offset_s,
        frames_per_window=spec.face.frames_per_window, video_covered=video_covered, alignment=alignment,
    )
    return Recording(
        video=video_path, eeg=eeg_path, video_info=info, windows=kept, indices=indices, coverage=coverage,
        options=options, baseline_s=baseline_s, source=source, notes=notes, timings=timings, trace=report.trace,
        alignment=alignment, video_timing=video_timing, eeg_report=report,
    )


def align_recording(
    video: str | os.PathLike[str], eeg: str | os.PathLike[str], options: RecordingOptions | None = None
) -> tuple[Alignment, list[EEGNote]]:
    """The alignment :func:`open_recording` would use, without preprocessing the EEG, and the
    reader's notes: a quick check of how a recording's streams are paired (:mod:`.sync`)."""
    from .face.timing import probe_video_timing
    from .face.video import probe_video
    from .sync import align

    options = options or RecordingOptions()
    sync_options = options.sync()
    info = probe_video(video)
    notes: list[EEGNote] = []
    raw, _, _, timing = read_eeg_timed(eeg, options, notes)
    sfreq = float(raw.info["sfreq"])
    return align(sfreq, raw.n_times / sfreq, timing, info, probe_video_timing(video, info), sync_options), notes
