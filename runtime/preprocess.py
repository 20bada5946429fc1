"""Video + EEG recording -> what the model sees: ``milmer preprocess``.

The one preprocessing path: the runtime pipeline and the training cache both call the EEG and
face functions used here, so training and serving cannot drift.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._check import MilmerInputError
from ._io import atomic_dir, write_json_atomic
from .spec import ModelSpec
from .windows import EEGWindows, FaceWindows

if TYPE_CHECKING:
    from .eeg.preprocess import ICATrace

__all__ = ["Coverage", "Preprocessed", "preprocess_recording", "window_coverage", "write_preprocessed"]


@dataclass
class Preprocessed:
    """Both modalities of one recording, aligned window by window."""

    eeg: EEGWindows
    faces: FaceWindows
    report: dict[str, Any] = field(default_factory=dict)
    ica_trace: ICATrace | None = None  # before/after-ICA excerpt, with keep_trace=True


@dataclass(frozen=True)
class Coverage:
    """Which EEG windows the video covers; video time = EEG time + ``offset_s``.

    covered: (W,) bool, True where the window's whole span lies inside the video. The EEG
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
        """The covered windows only (data copied, ``info`` shared)."""
        return EEGWindows(
            data=np.ascontiguousarray(eeg_windows.data[self.covered]),
            starts=eeg_windows.starts[self.covered],
            info=eeg_windows.info,
        )

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


def window_coverage(
    eeg_windows: EEGWindows,
    window_s: float,
    video_duration_s: float,
    offset_s: float = 0.0,
    *,
    frames_per_window: int | None = None,
) -> Coverage:
    """Which of ``eeg_windows`` a video of ``video_duration_s`` seconds (its real end) covers.

    With ``frames_per_window``, a window is covered when all its sampled frames lie inside the
    video (:func:`~.face.video.covered_windows`: a 60 s recording at 29.97 fps measures 59.993 s
    and still covers its last 3 s window); without it, when its whole span does.
    Raises MilmerInputError when the video covers none of them.
    """
    starts = np.asarray(eeg_windows.starts, dtype=np.float64)
    if frames_per_window is not None:
        from .face.video import covered_windows

        covered = covered_windows(starts, window_s, frames_per_window, video_duration_s, offset_s)
    else:
        ends = starts + window_s + offset_s
        covered = (starts + offset_s >= 0) & (ends <= video_duration_s + 1e-6)
    if not covered.any():
        raise MilmerInputError(
            f"Invalid value for 'video': the video ({video_duration_s:.1f} s, offset {offset_s:+.1f} s) "
            f"does not cover any {window_s:g} s EEG window "
            f"(EEG: {eeg_windows.info.get('duration_s', float('nan')):.1f} s)."
        )
    return Coverage(
        covered=covered,
        starts=starts,
        window_s=float(window_s),
        video_duration_s=float(video_duration_s),
        offset_s=float(offset_s),
        eeg_duration_s=float(eeg_windows.info.get("duration_s", float(starts[-1] + window_s))),
    )


def preprocess_recording(
    video: str | os.PathLike[str],
    eeg: str | os.PathLike[str],
    spec: ModelSpec | None = None,
    *,
    offset_s: float = 0.0,
    baseline_s: float = 0.0,
    progress: bool = False,
    keep_trace: bool = False,
) -> Preprocessed:
    """Run the EEG and face paths on one recording.

    Parameters
    ----------
    video, eeg : paths of the face video and the EEG file (EDF/BDF/FIF/BrainVision).
    offset_s : video time (s) at EEG t = 0.
    baseline_s : seconds at the start of the EEG to drop (DEAP's pre-trial baseline is 3 s).

    Returns windows ``eeg.data (W, C, T)`` and ``faces.frames (W, F, S, S, 3)`` for the windows
    the video covers; windows past the end of the video are dropped and reported.
    """
    from ._check import check_path_exists
    from .eeg.io import read_raw
    from .eeg.preprocess import preprocess_raw
    from .face.extract import extract_faces
    from .face.video import probe_video

    spec = spec or ModelSpec()
    check_path_exists("video", video)
    check_path_exists("eeg", eeg)
    t0 = time.perf_counter()
    info = probe_video(video)  # fail fast on a bad video before the slow EEG work
    raw = read_raw(eeg)
    t_read = time.perf_counter() - t0
    if keep_trace:
        eeg_windows, trace = preprocess_raw(raw, spec.eeg, baseline_s=baseline_s, keep_trace=True)
    else:
        eeg_windows, trace = preprocess_raw(raw, spec.eeg, baseline_s=baseline_s), None

    coverage = window_coverage(
        eeg_windows, spec.eeg.window_s, info.duration_s, offset_s, frames_per_window=spec.face.frames_per_window
    )
    dropped = coverage.n_dropped
    eeg_windows = coverage.select(eeg_windows)
    t1 = time.perf_counter()
    faces = extract_faces(
        video, eeg_windows.starts, spec.face, spec.eeg.window_s, offset_s=offset_s, progress=progress,
        video_info=info,
    )
    t_face = time.perf_counter() - t1
    report = {
        "video": str(video),
        "eeg": str(eeg),
        "offset_s": offset_s,
        "baseline_s": baseline_s,
        "n_windows": int(len(eeg_windows.starts)),
        "windows_dropped_outside_video": dropped,
        "eeg_info": eeg_windows.info,
        "face_info": faces.info,
        "timings_s": {
            "read_eeg": round(t_read, 4),
            **{f"eeg_{k}": round(v, 4) for k, v in eeg_windows.info.get("timings", {}).items()},
            **{f"face_{k}": round(v, 4) for k, v in faces.info.get("timings", {}).items()},
            "face_total": round(t_face, 4),
            "total": round(time.perf_counter() - t0, 4),
        },
        "spec": spec.to_dict(),
    }
    return Preprocessed(eeg=eeg_windows, faces=faces, report=report, ica_trace=trace)


def write_preprocessed(
    result: Preprocessed, out: str | os.PathLike[str], *, overwrite: bool = False, n_montage: int = 4
) -> Path:
    """Write ``windows.npz``, ``report.json``, ``faces.png`` and ``eeg_ica.png`` into ``out``.

    The folder appears only when everything was written (no partial output on failure).
    """
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        np.savez(
            tmp / "windows.npz",
            eeg=result.eeg.data,
            faces=result.faces.frames,
            starts=result.eeg.starts,
            face_found=result.faces.found,
            window_has_face=result.faces.window_has_face,
            frame_times=result.faces.timestamps,
            **({"frame_flags": result.faces.flags} if result.faces.flags is not None else {}),
        )
        from .face.plots import save_montage

        save_montage(result.faces, tmp / "faces.png", max_windows=n_montage, window_starts=result.eeg.starts)
        if result.ica_trace is not None:
            from .eeg.plots import plot_ica_before_after

            plot_ica_before_after(result.ica_trace, tmp / "eeg_ica.png")
        write_json_atomic(tmp / "report.json", result.report)
    return out
