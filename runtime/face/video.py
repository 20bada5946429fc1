"""Reading face video with PyAV (FFmpeg): probe its real timing, stream upright frames nearest given times.

The public face of two modules: :mod:`.probe` (timing, size, rotation; one pass over the packets)
and :mod:`.decode` (frames nearest requested times); the window sampling rules live here.

Everything about time comes from the frames' own presentation timestamps (PTS), never from the
container header: a file cut short (a recorder that crashed, a copy that stopped) ends where its
frames end; a webcam that delivered 24 fps under a 30 fps header keeps its real times; a dropout
shows as a gap. Frames are turned upright by the stream's display matrix (phones store portrait
video landscape with a 90/180/270 degree rotation tag). Each frame keeps its own size, so a
resolution change mid-stream (a camera switch) loses no pixels.

Frames are chosen by TIME (the frame whose timestamp is nearest each requested time, looking
back as well as forward), so videos at 20, 25, 29.97 or 50 fps give the same instants for the
same EEG windows. The video is streamed once and never held in memory: one decoded frame is
kept for the look-back, and only requested frames are converted to RGB.

Time convention: video time 0 is the first frame's timestamp. The functions here take
``video_time = eeg_time + offset_s`` (``offset_s``: the video time at EEG t = 0, positive when the
video started first); a recording's full mapping (container timeline, rates, pauses) is its
:class:`~..timebase.Alignment` (:mod:`..sync`), which the face path asks for video times.
"""

from __future__ import annotations

import numpy as np

from ..check import check_array, check_finite, check_int, check_positive
from .decode import FrameAt, iter_frames_at
from .probe import (
    TIMING_TOLERANCE_FRAMES,
    VIDEO_SUFFIXES,
    VideoInfo,
    display_matrix_orientation,
    display_matrix_rotation,
    probe_video,
    quiet_libav,
)

__all__ = [
    "VIDEO_SUFFIXES",
    "TIMING_TOLERANCE_FRAMES",
    "VideoInfo",
    "FrameAt",
    "probe_video",
    "quiet_libav",
    "sample_times",
    "covered_windows",
    "iter_frames_at",
    "check_offset",
    "display_matrix_orientation",
    "display_matrix_rotation",
]


def check_offset(offset_s: float) -> float:
    """Return ``offset_s`` (video time (s) at EEG t = 0) as a float if it is a finite number."""
    return check_finite("offset_s", offset_s)


def sample_times(window_starts: np.ndarray, window_s: float, n_frames: int) -> np.ndarray:
    """Evenly spaced instants inside each window: centres of ``n_frames`` equal sub-intervals.

    window_starts: (W,) seconds.  Returns (W, n_frames) float64,
    ``start + (i + 0.5) * window_s / n_frames``.
    """
    starts = np.asarray(window_starts, dtype=np.float64)
    check_array("window_starts", starts, shape=("W",), finite=True, what="a 1-D array of finite seconds")
    check_positive("window_s", window_s)
    n_frames = check_int("n_frames", n_frames, low=1)
    offsets = (np.arange(n_frames, dtype=np.float64) + 0.5) * (window_s / n_frames)
    return starts[:, None] + offsets[None, :]


def covered_windows(
    window_starts: np.ndarray, window_s: float, frames_per_window: int, video_duration_s: float, offset_s: float = 0.0
) -> np.ndarray:
    """(W,) bool: True where every frame sampled from the window (:func:`sample_times`) lies in the video.

    A window is covered when its sampled instants are, not its whole span: a 60 s recording at
    29.97 fps measures 59.993 s, and its last 3 s window samples up to 59.85 s, which the video
    holds. Video time ``t`` is inside when ``0 <= t < video_duration_s`` (:class:`VideoInfo`'s
    real duration, which ends one interval after the last frame).
    """
    check_offset(offset_s)
    t = sample_times(window_starts, window_s, frames_per_window) + offset_s  # (W, F) video time
    return np.all((t >= 0.0) & (t < video_duration_s), axis=1)
