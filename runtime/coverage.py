"""Which EEG windows a video covers: video time from EEG time, windows dropped at either end.

:func:`window_coverage` decides it (the whole span, or every sampled frame, inside the video, by
the recording's :class:`~.timebase.Alignment` or a plain offset); :class:`Coverage` holds the
answer and words it for the user; :func:`select_windows` keeps the covered windows. Used by
:func:`~.recording.open_recording` and :func:`~.preprocess.preprocess_recording`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .check import MilmerInputError, check_nonempty
from .errors import invalid_value
from .windows import EEGWindows

if TYPE_CHECKING:
    from .timebase import Alignment

__all__ = ["Coverage", "CoveragePredicate", "select_windows", "window_coverage"]


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
        video_starts, ends = alignment.eeg_to_video(starts), alignment.eeg_to_video(starts + window_s)
        if frames_per_window is not None:
            vt = alignment.eeg_to_video(sample_times(starts, window_s, frames_per_window))  # (W, F)
            with np.errstate(invalid="ignore"):
                covered = np.all(np.isfinite(vt) & (vt >= 0.0) & (vt < video_duration_s), axis=1)
        else:
            with np.errstate(invalid="ignore"):
                covered = (np.isfinite(video_starts) & np.isfinite(ends) & (video_starts >= 0)
                           & (ends <= video_duration_s + 1e-6))
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
        eeg_s = eeg_windows.info.get("duration_s", float("nan"))
        # Offsets that put the video beside at least one window (no pauses, rates as nominal).
        low, high = -float(starts[-1]), video_duration_s - window_s - float(starts[0])
        if alignment is not None and alignment.offset_source == "option" and not low <= alignment.offset_s <= high:
            # The user's --offset is the cause: name it, with the range that would work.
            fits = (f"offsets from about {low:+.1f} to {high:+.1f} s cover at least one window" if high >= low
                    else f"the video is shorter than one {window_s:g} s window, so no offset can")
            raise invalid_value(
                "--offset", f"got {alignment.offset_s:g} s, which puts the video ({video_duration_s:.1f} s) "
                f"beside no {window_s:g} s EEG window (EEG {eeg_s:.1f} s)",
                f"{fits}; --offset is the video time (s) at EEG t = 0, or leave it out to use the recordings' evidence",
            )
        how = f"alignment: {alignment.summary()}" if alignment is not None else f"offset {offset_s:+.1f} s"
        check_nonempty(
            "video", np.flatnonzero(covered), f"{window_s:g} s EEG window it covers",
            hint=f"the video is {video_duration_s:.1f} s ({how}), the EEG "
            f"{eeg_s:.1f} s: check --offset, the video time (s) at EEG t = 0",
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
