"""A recording in: check paths, probe the video, read and preprocess the EEG, align, select windows.

The one "recording in" sequence: ``milmer preprocess`` (:func:`~.preprocess.preprocess_recording`)
and ``milmer-infer`` (:meth:`~.pipeline.Pipeline.run`) both call :func:`open_recording`, then take
the face crops of :attr:`Recording.windows` from the video. Every rule about what a recording
must be (channels, units, reference, gaps, bad channels, DEAP trials) lives below it, in
``runtime/eeg/``; what it changed or doubts is in :attr:`Recording.notes` and the windows' flags.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .check import MilmerInputError, requires_error
from .coverage import Coverage, CoveragePredicate, select_windows, window_coverage
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
        raise requires_error("--trial", options.trial, "a DEAP .dat file (only those hold several trials)", repr(path.name))
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
