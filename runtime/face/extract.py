"""Face crops for EEG windows: sample frames by time, detect, crop, in one pass over the video.

For each EEG window, ``frames_per_window`` instants are sampled (:func:`sample_times`), the
nearest video frames are decoded (``video_time = eeg_time + offset_s``), the face is detected and
cropped by the spec's rule. Rules for frames without a face:

- a frame where the detector finds nothing reuses the box of the nearest (in time) frame of the
  same window that has one; it is flagged ``found=False``;
- a window where no frame has a face is cropped to the centred square of each whole frame (the
  subject usually sits in the middle); all its frames are flagged ``found=False``;
- a requested time outside the video (before its start or past its end) gets a black crop,
  ``found=False``, counted in ``frames_before_video_start`` / ``frames_past_video_end``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._check import MilmerInputError, check_positive
from ..spec import FaceSpec
from ..windows import FaceWindows
from .crop import center_square_box, crop_pad_resize, expand_box
from .detect import Box, FaceDetector, make_detector
from .video import VideoInfo, check_offset, iter_frames_at, probe_video, sample_times

__all__ = ["FaceWindow", "FaceExtractionStats", "iter_face_windows", "extract_faces"]


class FaceWindow(NamedTuple):
    """The crops of one EEG window.

    index:      window index (position in ``window_starts``)
    crops:      (F, S, S, 3) uint8 RGB
    found:      (F,) bool, True where the detector found a face in that frame
    timestamps: (F,) float64 video time (s) of each frame used; NaN outside the video
    """

    index: int
    crops: np.ndarray
    found: np.ndarray
    timestamps: np.ndarray


@dataclass
class FaceExtractionStats:
    """Counts and timings gathered while :func:`iter_face_windows` runs.

    ``frames_without_face`` counts decoded frames without a detection; requested times outside
    the video are counted only in ``frames_before_video_start`` / ``frames_past_video_end``.
    """

    frames_total: int = 0
    frames_without_face: int = 0
    windows_without_face: int = 0
    frames_past_video_end: int = 0
    frames_before_video_start: int = 0
    timings: dict[str, float] = field(default_factory=lambda: {"decode": 0.0, "detect": 0.0, "crop": 0.0})


@dataclass
class _WindowBuffer:
    """Frames of one window gathered until all ``F`` requests have been answered."""

    n: int
    frames: list[np.ndarray | None] = field(init=False)
    boxes: list[Box | None] = field(init=False)
    timestamps: np.ndarray = field(init=False)
    answered: int = 0

    def __post_init__(self) -> None:
        self.frames = [None] * self.n
        self.boxes = [None] * self.n
        self.timestamps = np.full(self.n, np.nan)

    @property
    def complete(self) -> bool:
        return self.answered == self.n


def iter_face_windows(
    video_path: str | os.PathLike[str],
    window_starts: np.ndarray,
    spec_face: FaceSpec,
    window_s: float,
    *,
    offset_s: float = 0.0,
    detector: FaceDetector | None = None,
    video_info: VideoInfo | None = None,
    stats: FaceExtractionStats | None = None,
) -> Iterator[FaceWindow]:
    """Stream the face crops of each EEG window, in window order (see the module docstring).

    window_starts: (W,) EEG times (s) of the windows' starts; ``window_s`` their length.
    offset_s:      video time at EEG t = 0.
    detector:      a detector to use (its ``name`` must be ``spec_face.detector``; the caller
                   closes it); by default one is made for this video and closed at the end.
    stats:         filled in with counts and timings while iterating.

    Only the frames of windows not yet complete are held (one window's frames for
    non-overlapping, increasing starts). Input errors are raised here, before iterating.
    """
    if not isinstance(spec_face, FaceSpec):
        raise MilmerInputError(f"Invalid value for 'spec_face': expected a FaceSpec, got {type(spec_face).__name__}.")
    check_positive("window_s", window_s)
    check_offset(offset_s)
    if detector is not None and detector.name != spec_face.detector:
        raise MilmerInputError(
            f"Invalid value for 'detector': the spec's crops come from {spec_face.detector!r}, "
            f"got a {detector.name!r} detector."
        )
    times = sample_times(window_starts, window_s, spec_face.frames_per_window)  # (W, F) EEG time
    info = video_info if video_info is not None else probe_video(video_path)
    video_times = times + offset_s
    if times.size and not np.any((video_times >= 0) & (video_times < info.duration_s)):
        raise MilmerInputError(
            f"Invalid value for 'offset_s': with offset_s={offset_s!r} the frames sampled from the "
            f"windows lie at video time {video_times.min():.3f}-{video_times.max():.3f} s, which misses "
            f"the whole video (0-{info.duration_s:.3f} s of {Path(video_path).name!r})."
        )
    stats = stats if stats is not None else FaceExtractionStats()
    return _iter_windows(video_path, times, spec_face, offset_s, detector, info, stats)


def _iter_windows(
    video_path: str | os.PathLike[str],
    times: np.ndarray,
    spec_face: FaceSpec,
    offset_s: float,
    detector: FaceDetector | None,
    info: VideoInfo,
    stats: FaceExtractionStats,
) -> Iterator[FaceWindow]:
    """Generator behind :func:`iter_face_windows` (inputs validated). times: (W, F) EEG seconds."""
    n_windows, n_per = times.shape
    flat = times.ravel()
    order = np.argsort(flat, kind="stable")  # overlapping windows interleave in video time
    owns_detector = detector is None
    det = detector if detector is not None else make_detector(spec_face.detector, spec_face.min_confidence)
    buffers: dict[int, _WindowBuffer] = {}
    next_window = 0
    # Overlapping windows can ask for the same frame: detect it once (video time -> best face).
    known: dict[float, Box | None] = {}
    try:
        frames = iter_frames_at(video_path, flat[order], offset_s, info=info)
        while next_window < n_windows:
            t0 = time.perf_counter()
            item = next(frames, None)
            stats.timings["decode"] += time.perf_counter() - t0
            assert item is not None, "iter_frames_at answers every request"
            w, f = divmod(int(order[item.index]), n_per)
            buf = buffers.setdefault(w, _WindowBuffer(n_per))
            if item.frame is None:
                if flat[order[item.index]] + offset_s < 0:
                    stats.frames_before_video_start += 1
                else:
                    stats.frames_past_video_end += 1
            else:
                buf.frames[f], buf.timestamps[f] = item.frame, item.timestamp
            buf.answered += 1
            while next_window in buffers and buffers[next_window].complete:
                t0 = time.perf_counter()
                _detect_window(det, buffers[next_window], known)
                stats.timings["detect"] += time.perf_counter() - t0
                # Later requests are at or after this frame's time; pending windows may hold earlier ones.
                pending = [t for b in buffers.values() for t in b.timestamps if not math.isnan(t)]
                oldest = min(pending + [item.timestamp if item.frame is not None else math.inf])
                known = {t: box for t, box in known.items() if t >= oldest}
                t0 = time.perf_counter()
                window = _crop_window(next_window, buffers.pop(next_window), spec_face, stats)
                stats.timings["crop"] += time.perf_counter() - t0
                yield window
                next_window += 1
    finally:
        if owns_detector:
            det.close()


def _detect_window(det: FaceDetector, buf: _WindowBuffer, known: dict[float, Box | None]) -> None:
    """Fill ``buf.boxes`` with the best face of each decoded frame: the frames not in ``known``
    (by video time) go to the detector in one batch, and are added to ``known``."""
    todo: dict[float, np.ndarray] = {}
    for frame, t in zip(buf.frames, buf.timestamps):
        if frame is not None and float(t) not in known:
            todo.setdefault(float(t), frame)
    if todo:
        for t, faces in zip(todo, det.detect_batch(list(todo.values()))):
            known[t] = faces[0] if faces else None
    for f, frame in enumerate(buf.frames):
        if frame is not None:
            buf.boxes[f] = known[float(buf.timestamps[f])]


def _crop_window(index: int, buf: _WindowBuffer, spec_face: FaceSpec, stats: FaceExtractionStats) -> FaceWindow:
    """Apply the crop rule (and the no-face rules of the module docstring) to one window."""
    size = spec_face.frame_size
    crops = np.zeros((buf.n, size, size, 3), np.uint8)  # black where there is no frame
    found = np.array([b is not None for b in buf.boxes])
    detected = [g for g in range(buf.n) if buf.boxes[g] is not None]
    for f, frame in enumerate(buf.frames):
        if frame is None:
            continue
        height, width = frame.shape[:2]
        if detected:
            # Nearest detection in time; ties go to the earlier frame.
            nearest = min(detected, key=lambda d: (abs(buf.timestamps[d] - buf.timestamps[f]), buf.timestamps[d]))
            box = expand_box(buf.boxes[nearest], spec_face.box_expand, width=width, height=height)
        else:
            box = center_square_box(width, height)
        crops[f] = crop_pad_resize(frame, box, size)
    n_decoded = sum(frame is not None for frame in buf.frames)
    stats.frames_total += buf.n
    stats.frames_without_face += n_decoded - len(detected)
    stats.windows_without_face += int(not detected)
    return FaceWindow(index, crops, found, buf.timestamps)


def extract_faces(
    video_path: str | os.PathLike[str],
    window_starts: np.ndarray,
    spec_face: FaceSpec,
    window_s: float,
    *,
    offset_s: float = 0.0,
    progress: bool = False,
    video_info: VideoInfo | None = None,
) -> FaceWindows:
    """All windows' crops from :func:`iter_face_windows`, as :class:`FaceWindows`.

    ``info`` holds: detector, frames_total, frames_without_face, windows_without_face,
    frames_past_video_end, frames_before_video_start, offset_s, video (fps, n_frames,
    duration_s, width, height) and timings (decode, detect, crop: seconds).
    ``progress=True`` shows a progress bar on stderr.
    """
    info = video_info if video_info is not None else probe_video(video_path)  # callers may have probed
    stats = FaceExtractionStats()
    windows = iter_face_windows(
        video_path, window_starts, spec_face, window_s, offset_s=offset_s, video_info=info, stats=stats
    )
    n_windows, n_per, size = len(np.asarray(window_starts)), spec_face.frames_per_window, spec_face.frame_size
    frames = np.zeros((n_windows, n_per, size, size, 3), np.uint8)
    found = np.zeros((n_windows, n_per), bool)
    timestamps = np.full((n_windows, n_per), np.nan)

    def store(window: FaceWindow) -> None:
        frames[window.index] = window.crops
        found[window.index] = window.found
        timestamps[window.index] = window.timestamps

    if progress:
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True)) as bar:
            task = bar.add_task(f"Faces in {Path(video_path).name}", total=n_windows)
            for window in windows:
                store(window)
                bar.advance(task)
    else:
        for window in windows:
            store(window)
    return FaceWindows(
        frames=frames,
        found=found,
        timestamps=timestamps,
        info={
            "detector": spec_face.detector,
            "frames_total": stats.frames_total,
            "frames_without_face": stats.frames_without_face,
            "windows_without_face": stats.windows_without_face,
            "frames_past_video_end": stats.frames_past_video_end,
            "frames_before_video_start": stats.frames_before_video_start,
            "offset_s": float(offset_s),
            "video": info.to_dict(),
            "timings": dict(stats.timings),
        },
    )
