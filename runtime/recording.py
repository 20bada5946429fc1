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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .check import MilmerInputError
from .eeg.preprocess import EEGInputOptions
from .spec import ModelSpec
from .windows import EEGWindows

if TYPE_CHECKING:
    import mne

    from .eeg.preprocess import ICATrace
    from .face.video import VideoInfo

__all__ = [
    "DEAP_BASELINE_S",
    "Coverage",
    "CoveragePredicate",
    "Recording",
    "RecordingOptions",
    "open_recording",
    "read_eeg",
    "select_windows",
    "window_coverage",
]

#: DEAP trials start with a 3 s pre-trial baseline, dropped by default for ``.dat`` input.
DEAP_BASELINE_S = 3.0


@dataclass(frozen=True)
class RecordingOptions:
    """Everything the user says about a recording (the CLI's recording options).

    offset_s:   video time (s) at EEG t = 0 (``--offset``; positive: the video started first)
    baseline_s: seconds to drop at the EEG's start; None: 3 for a DEAP ``.dat`` trial, else 0
    trial:      DEAP presentation trial (``--trial``), required for ``.dat`` input
    eeg:        unit, channel map and interpolation options (:class:`~.eeg.preprocess.EEGInputOptions`)
    """

    offset_s: float = 0.0
    baseline_s: float | None = None
    trial: int | None = None
    eeg: EEGInputOptions = field(default_factory=EEGInputOptions)


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
        return int(((self.starts + self.offset_s < 0) & ~self.covered).sum())

    @property
    def n_dropped_end(self) -> int:
        """Windows that end past the video's end."""
        return self.n_dropped - self.n_dropped_start

    @property
    def video_unused_end_s(self) -> float:
        """Seconds of video after the EEG's end (0 when the EEG runs as long or longer)."""
        return max(0.0, self.video_duration_s - self.offset_s - self.eeg_duration_s)

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
) -> Coverage:
    """Which of ``eeg_windows`` a video of ``video_duration_s`` seconds (its real end) covers.

    With ``frames_per_window``, a window is covered when all its sampled frames lie inside the
    video (:func:`~.face.video.covered_windows`: a 60 s recording at 29.97 fps measures 59.993 s
    and still covers its last 3 s window); without it, when its whole span does. Where
    ``video_covered`` (a (W,) bool mask or a predicate on the windows' video times) is given, it
    must say so too.

    Raises MilmerInputError when the video covers none of them.
    """
    starts = np.asarray(eeg_windows.starts, dtype=np.float64)
    ends = starts + window_s + offset_s
    if frames_per_window is not None:
        from .face.video import covered_windows

        covered = covered_windows(starts, window_s, frames_per_window, video_duration_s, offset_s)
    else:
        covered = (starts + offset_s >= 0) & (ends <= video_duration_s + 1e-6)
    if video_covered is not None:
        extra = video_covered(starts + offset_s, ends) if callable(video_covered) else video_covered
        covered &= np.asarray(extra, bool)
    if not covered.any():
        raise MilmerInputError(
            f"Invalid value for 'video': the video ({video_duration_s:.1f} s, offset {offset_s:+.1f} s) "
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
    )


def select_windows(
    eeg_windows: EEGWindows,
    window_s: float,
    video_duration_s: float,
    offset_s: float = 0.0,
    *,
    frames_per_window: int | None = None,
    video_covered: CoveragePredicate | np.ndarray | None = None,
) -> tuple[EEGWindows, np.ndarray, Coverage]:
    """The windows to predict: those the video covers (:func:`window_coverage`).

    Returns the kept windows (flags kept), their indices (K,) among ``eeg_windows`` and the
    coverage. Per-window face flags are added by the face path after extraction.
    """
    coverage = window_coverage(
        eeg_windows, window_s, video_duration_s, offset_s, frames_per_window=frames_per_window,
        video_covered=video_covered,
    )
    return coverage.select(eeg_windows), np.flatnonzero(coverage.covered), coverage


def read_eeg(
    eeg: str | os.PathLike[str], options: RecordingOptions, notes: list[str]
) -> tuple[mne.io.BaseRaw, float, dict[str, Any]]:
    """The EEG as an MNE recording, the baseline to drop and what was read.

    A DEAP ``sXX.dat`` gives trial ``options.trial`` (presentation order, mapped to the file's
    experiment order through ``participant_ratings.csv``); anything else goes to
    :func:`~.eeg.io.read_raw`. MNE's warnings go to ``notes``, one line each.
    """
    from .check import check_path_exists, check_suffix
    from .eeg.io import EEG_SUFFIXES, read_raw

    path = Path(eeg)
    check_suffix("eeg", check_path_exists("eeg", path), (*EEG_SUFFIXES, ".dat"))  # every type this reads
    if path.suffix.lower() == ".dat":
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
        notes.append(
            f"{path.name}: DEAP participant {which.subject}, trial {which.trial} (presentation order) = "
            f"experiment {which.experiment_id}, row {which.row} ({which.ratings_csv.name}); "
            f"the first {baseline:g} s (pre-trial baseline) dropped"
        )
        return raw, baseline, source
    if options.trial is not None:
        raise MilmerInputError(
            f"Invalid value for '--trial': only DEAP .dat files hold several trials, got {path.name!r}."
        )
    raw = read_raw(path, notes)
    return raw, options.baseline_s or 0.0, {"format": path.suffix.lower().lstrip(".")}


@dataclass
class Recording:
    """A recording, checked and preprocessed, ready for the face path.

    windows:    the EEG windows the video covers (flags per window), ``indices`` (K,) their
                positions among all EEG windows
    coverage:   which windows the video covers and why others were dropped
    notes:      what the runtime changed or doubts, one line each (reader warnings, EDF+D gaps,
                channels mapped/interpolated, reference electrode, line noise, dropped windows)
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
    notes: list[str]
    timings: dict[str, float]
    trace: ICATrace | None = None

    @property
    def eeg_info(self) -> dict[str, Any]:
        return self.windows.info


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

    Order: the offset and both paths, the video's probe (fails fast before the slow EEG work),
    the EEG read (:func:`read_eeg`), preprocessed (:func:`~.eeg.preprocess.preprocess_raw`),
    the windows the video covers (:func:`select_windows`: those whose ``spec.face.frames_per_window``
    sampled frames lie in the video). Raises MilmerInputError for anything
    the recording cannot be used for, naming the option that helps.
    """
    from .check import check_path_exists
    from .eeg.preprocess import preprocess_raw
    from .face.video import check_offset, probe_video

    options = options or RecordingOptions()
    check_offset(options.offset_s)
    video_path = check_path_exists("video", video)
    eeg_path = check_path_exists("eeg", eeg)
    info = probe_video(video_path)
    notes: list[str] = []
    tick = time.perf_counter()
    raw, baseline_s, source = read_eeg(eeg_path, options, notes)
    tock = time.perf_counter()
    trace = None
    if keep_trace:
        eeg_windows, trace = preprocess_raw(raw, spec.eeg, baseline_s=baseline_s, keep_trace=True, options=options.eeg)
    else:
        eeg_windows = preprocess_raw(raw, spec.eeg, baseline_s=baseline_s, options=options.eeg)
    del raw
    timings = {"eeg_read": tock - tick, "eeg_preprocess": time.perf_counter() - tock}
    notes.extend(eeg_windows.info.get("notes", []))
    notes.extend(summary_notes(eeg_windows.info))
    kept, indices, coverage = select_windows(
        eeg_windows, spec.eeg.window_s, info.duration_s, options.offset_s,
        frames_per_window=spec.face.frames_per_window, video_covered=video_covered,
    )
    return Recording(
        video=video_path, eeg=eeg_path, video_info=info, windows=kept, indices=indices, coverage=coverage,
        options=options, baseline_s=baseline_s, source=source, notes=notes, timings=timings, trace=trace,
    )


def summary_notes(info: dict[str, Any]) -> list[str]:
    """What preprocessing changed, one line each: channels mapped, interpolated, retyped,
    reference, line noise, ICA."""
    lines = []
    ch = info.get("channels", {})
    for how in ch.get("mapped_by", []):
        lines.append(f"channels mapped by {how}")
    for name, why in ch.get("retyped", {}).items():
        lines.append(f"channel {name}: {why}")
    if ch.get("interpolated"):
        lines.append(
            f"interpolated {len(ch['interpolated'])} channel(s) from their neighbours: "
            f"{', '.join(ch['interpolated'])} (every window is flagged)"
        )
    line = info.get("line_noise", {})
    if line.get("freq"):
        before, after = line.get("share_before"), line.get("share_after")
        shares = (f": {100 * before:.1f} % of the power before, {100 * after:.1f} % after"
                  if before is not None and after is not None else "")
        lines.append(f"line noise {line['freq']:g} Hz ({line['source']}) notched{shares}")
    if info.get("ica_n_components"):
        lines.append(
            f"ICA ({info['ica_n_components']} components, {'converged' if info.get('ica_converged') else 'did NOT converge'}): "
            f"removed {len(info.get('ica_excluded', []))} eye component(s) using {info.get('eog_source')}"
        )
    return lines
