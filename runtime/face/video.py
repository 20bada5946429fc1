"""Reading face video: probe its geometry and frame rate, and stream the frames nearest given times.

Frames are chosen by TIME (the frame whose timestamp is nearest each requested time), never by
chunking decoded frames, so videos at 20, 25, 29.97 or 50 fps give the same instants for the
same EEG windows. The video is streamed once and never held in memory.

Time convention: ``video_time = eeg_time + offset_s``, i.e. ``offset_s`` is the video time at
EEG t = 0 (positive when the video started recording before the EEG).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._check import MilmerInputError, check_path_exists, check_positive, check_suffix

__all__ = [
    "VIDEO_SUFFIXES",
    "VideoInfo",
    "FrameAt",
    "probe_video",
    "sample_times",
    "iter_frames_at",
    "check_offset",
]

#: Containers the runtime accepts (anything OpenCV's FFmpeg backend decodes in them works).
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm")

# A header frame rate outside this range is treated as missing (some WebM/MKV files from browser
# recorders report 0 or 1000 fps); the rate is then measured from the frame timestamps.
_PLAUSIBLE_FPS = (1.0, 480.0)

# A frame is decoded to RGB (retrieve) only when the next requested time lies within this many
# frame intervals after it: enough for the nearest-frame decision on constant-rate video with
# timestamp jitter, while skipped frames cost only grab().
_RETRIEVE_WITHIN_FRAMES = 1.5


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learned: frame rate (Hz), frame count, duration (s), size (px)."""

    fps: float
    n_frames: int
    duration_s: float
    width: int
    height: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FrameAt(NamedTuple):
    """One answer of :func:`iter_frames_at`.

    index:     position of the request in ``times``
    frame:     (H, W, 3) uint8 RGB, read-only; None when the time lies outside the video
    timestamp: video time (s) of the frame returned; NaN when ``frame`` is None
    """

    index: int
    frame: np.ndarray | None
    timestamp: float


def check_offset(offset_s: float) -> float:
    """Return ``offset_s`` (video time at EEG t = 0) if it is a finite number of seconds."""
    if isinstance(offset_s, bool) or not isinstance(offset_s, numbers.Real) or not math.isfinite(offset_s):
        raise MilmerInputError(
            f"Invalid value for 'offset_s': expected a finite number of seconds, got {offset_s!r}."
        )
    return offset_s


def _open(path: str | os.PathLike[str]) -> Any:
    """Validate ``path`` and return an opened ``cv2.VideoCapture``."""
    import cv2

    p = check_path_exists("video", path)
    check_suffix("video", p, VIDEO_SUFFIXES)
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise MilmerInputError(
            f"Invalid value for 'video': cannot open {p.name!r} (corrupt file or unsupported codec)."
        )
    return cap


def _frame_time(cap: Any, fps: float, prev: float | None) -> float:
    """Timestamp (s) of the frame just grabbed, from its presentation time when the backend has one.

    Falls back to ``prev + 1 / fps`` when the reported time is missing or does not increase (some
    backends report 0 for every frame), so timestamps are always strictly increasing.
    """
    import cv2

    t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
    if prev is None:
        return t if math.isfinite(t) and t >= 0 else 0.0
    if not (math.isfinite(t) and t > prev):
        return prev + 1.0 / fps
    return t


def _fps_from_timestamps(n: int, first: float, last: float) -> float | None:
    """Mean frame rate over ``n`` frames spanning ``first..last`` seconds, or None if unmeasurable."""
    if n < 2 or not last > first:
        return None
    return (n - 1) / (last - first)


def probe_video(path: str | os.PathLike[str], *, count_frames: bool = False) -> VideoInfo:
    """Frame rate, frame count, duration and size of a video; checks that it decodes.

    The header's frame rate and count are used when plausible (fps within 1-480 Hz, count > 0).
    Otherwise, or with ``count_frames=True``, the video is streamed once (grab only) and the
    count and rate come from the frames' own timestamps: ``fps = (n - 1) / (t_last - t_first)``.
    ``duration_s = n_frames / fps`` (the last frame is shown for one interval).

    Raises MilmerInputError (parameter 'video') for a missing file, an unsupported suffix, a file
    that cannot be opened or whose first frame cannot be decoded, a video without frames, and a
    frame rate that cannot be determined.
    """
    import cv2

    cap = _open(path)
    name = Path(path).name
    try:
        header_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        header_n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if not cap.grab():
            raise MilmerInputError(f"Invalid value for 'video': {name!r} has no decodable frames.")
        ok, first = cap.retrieve()
        if not ok or first is None:
            raise MilmerInputError(f"Invalid value for 'video': cannot decode the first frame of {name!r}.")
        height, width = first.shape[:2]
        header_ok = _PLAUSIBLE_FPS[0] <= header_fps <= _PLAUSIBLE_FPS[1] and header_n > 0
        if header_ok and not count_frames:
            return VideoInfo(header_fps, header_n, header_n / header_fps, width, height)

        # Count by streaming, keeping the backend's raw presentation times of the first and last frame.
        t_first = t_last = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        n = 1
        while cap.grab():
            t_last = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            n += 1
    finally:
        cap.release()
    measured = _fps_from_timestamps(n, t_first, t_last)
    if header_ok:
        # The header rate is right for constant-rate video; the count is what was decoded.
        fps = header_fps
    elif measured is not None:
        fps = measured
    else:
        raise MilmerInputError(
            f"Invalid value for 'video': cannot determine the frame rate of {name!r} (header says "
            f"{header_fps!r} fps, {n} frame(s) decoded without usable timestamps)."
        )
    return VideoInfo(fps, n, n / fps, width, height)


def sample_times(window_starts: np.ndarray, window_s: float, n_frames: int) -> np.ndarray:
    """Evenly spaced instants inside each window: centres of ``n_frames`` equal sub-intervals.

    window_starts: (W,) seconds.  Returns (W, n_frames) float64,
    ``start + (i + 0.5) * window_s / n_frames``.
    """
    starts = np.asarray(window_starts, dtype=np.float64)
    if starts.ndim != 1 or not np.all(np.isfinite(starts)):
        raise MilmerInputError(
            f"Invalid value for 'window_starts': expected a 1-D array of finite seconds, got shape {starts.shape}."
        )
    check_positive("window_s", window_s)
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames <= 0:
        raise MilmerInputError(f"Invalid value for 'n_frames': expected an integer > 0, got {n_frames!r}.")
    offsets = (np.arange(n_frames, dtype=np.float64) + 0.5) * (window_s / n_frames)
    return starts[:, None] + offsets[None, :]


def iter_frames_at(
    path: str | os.PathLike[str],
    times: np.ndarray,
    offset_s: float = 0.0,
    *,
    info: VideoInfo | None = None,
) -> Iterator[FrameAt]:
    """Stream the video once, yielding the frame nearest each requested time.

    times:    (N,) non-decreasing EEG times in seconds; the frame sought is the one whose
              timestamp is nearest ``times[i] + offset_s`` (``offset_s`` = video time at EEG
              t = 0). Ties go to the earlier frame. Several requests may get the same frame.
    info:     the video's :class:`VideoInfo` if already probed (else it is probed here).

    Yields :class:`FrameAt` ``(index, frame, timestamp)`` in request order. The video covers
    ``[t_first, t_last + 1 / fps)`` (each frame is shown for one interval); a request outside
    that range (before the start, or past the end, including frames a truncated file lacks) gets
    ``frame=None`` and ``timestamp=NaN``, and the caller decides what to do with it.

    Frames are skipped with ``grab()`` and converted to RGB (``retrieve()``) only near a
    requested time, so only one or two decoded frames are alive at a time. The yielded arrays
    are read-only; a duplicated request yields the same array object.
    """
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or not np.all(np.isfinite(times)):
        raise MilmerInputError(
            f"Invalid value for 'times': expected a 1-D array of finite seconds, got shape {times.shape}."
        )
    if times.size > 1 and np.any(np.diff(times) < 0):
        raise MilmerInputError("Invalid value for 'times': expected non-decreasing seconds, got an unsorted array.")
    check_offset(offset_s)
    if info is None:
        info = probe_video(path)
    else:
        _open(path).release()  # fail now, not at the first next(), on a bad file
    return _stream(path, times + offset_s, info)


def _stream(path: str | os.PathLike[str], vt: np.ndarray, info: VideoInfo) -> Iterator[FrameAt]:
    """Generator behind :func:`iter_frames_at`; ``vt`` are sorted video times (validated)."""
    import cv2

    interval = 1.0 / info.fps
    missing = math.nan

    def rgb(cap: Any) -> np.ndarray:
        ok, bgr = cap.retrieve()
        if not ok or bgr is None:
            raise MilmerInputError(f"Invalid value for 'video': cannot decode a frame of {Path(path).name!r}.")
        out = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        out.flags.writeable = False
        return out

    cap = _open(path)
    try:
        i, n = 0, vt.size
        prev_t: float | None = None
        prev_frame: np.ndarray | None = None
        while i < n and cap.grab():
            t = _frame_time(cap, info.fps, prev_t)
            frame: np.ndarray | None = None
            while i < n and vt[i] <= t:
                if prev_t is None:
                    # The first frame: earlier requests are before the video starts.
                    if vt[i] < t:
                        yield FrameAt(i, None, missing)
                    else:
                        frame = frame if frame is not None else rgb(cap)
                        yield FrameAt(i, frame, t)
                elif vt[i] - prev_t <= t - vt[i] and prev_frame is not None:
                    yield FrameAt(i, prev_frame, prev_t)
                else:
                    # This frame is nearer (or the previous one was skipped: only possible on
                    # variable-rate video with a gap over _RETRIEVE_WITHIN_FRAMES intervals).
                    frame = frame if frame is not None else rgb(cap)
                    yield FrameAt(i, frame, t)
                i += 1
            if frame is None and i < n and vt[i] - t <= _RETRIEVE_WITHIN_FRAMES * interval:
                frame = rgb(cap)
            prev_t, prev_frame = t, frame
        # The stream ended: requests within the last frame's interval get it, the rest are past the end.
        while i < n:
            if prev_t is not None and prev_frame is not None and vt[i] < prev_t + interval:
                yield FrameAt(i, prev_frame, prev_t)
            else:
                yield FrameAt(i, None, missing)
            i += 1
    finally:
        cap.release()
