"""Decoding a face video with PyAV (FFmpeg): stream upright frames nearest given times.

Frames are chosen by TIME (the frame whose timestamp is nearest each requested time, looking
back as well as forward), so videos at 20, 25, 29.97 or 50 fps give the same instants for the
same EEG windows. The video is streamed once and never held in memory: one decoded frame is
kept for the look-back, and only requested frames are converted to RGB. Each frame keeps its own
size, so a resolution change mid-stream (a camera switch) loses no pixels.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from ..check import check_array, check_finite
from .colour import frame_to_rgb
from .probe import VideoInfo, _frame_orientation, _open, _seconds, _stream_of, probe_video, quiet_libav

__all__ = ["FrameAt", "iter_frames_at"]



class FrameAt(NamedTuple):
    """One answer of :func:`iter_frames_at`.

    index:     position of the request in ``times``
    frame:     (H, W, 3) uint8 RGB, upright, read-only; None when the time lies outside the video.
               H and W are the frame's own (they change when the resolution changes mid-stream)
    timestamp: video time (s) of the frame returned; NaN when ``frame`` is None
    error_s:   ``timestamp`` minus the requested video time (s); NaN when ``frame`` is None
    """

    index: int
    frame: np.ndarray | None
    timestamp: float
    error_s: float = math.nan


def iter_frames_at(
    path: str | os.PathLike[str],
    times: np.ndarray,
    offset_s: float = 0.0,
    *,
    info: VideoInfo | None = None,
) -> Iterator[FrameAt]:
    """Stream the video once, yielding the upright frame nearest each requested time.

    times:    (N,) non-decreasing EEG times in seconds; the frame sought is the one whose
              presentation timestamp is nearest ``times[i] + offset_s`` (``offset_s`` = video
              time at EEG t = 0), before or after it. Ties go to the earlier frame. Several
              requests may get the same frame.
    info:     the video's :class:`VideoInfo` if already probed (else it is probed here).

    Yields :class:`FrameAt` ``(index, frame, timestamp, error_s)`` in request order. The video
    covers ``[0, info.duration_s)``; a request outside it (before the start, or past the real
    end of a truncated file) gets ``frame=None`` and NaN times. After a gap the nearest frame may
    be far from the request: ``error_s`` says how far (flag it beyond
    :data:`TIMING_TOLERANCE_FRAMES` intervals).

    Only one decoded frame besides the current one is kept (for the look-back) and only
    requested frames are converted to RGB. The yielded arrays are read-only; a duplicated
    request yields the same array object.
    """
    times = np.asarray(times, dtype=np.float64)
    check_array("times", times, shape=("N",), finite=True, nondecreasing=True, what="a 1-D array of finite seconds")
    check_finite("offset_s", offset_s)
    if info is None:
        info = probe_video(path)
    else:
        _open(path).close()  # fail now, not at the first next(), on a bad file
    return _stream(path, times + offset_s, info)


#: Distances to two frames closer than this (s) are a tie (float rounding of sampled times).
_TIE_S = 1e-9


class _Decoded:
    """A decoded frame with its video time; converted to upright RGB once, on demand."""

    __slots__ = ("frame", "t", "_rgb", "_turns", "_mirror")

    def __init__(self, frame: Any, t: float, turns: int, mirror: bool = False) -> None:
        self.frame, self.t, self._rgb, self._turns, self._mirror = frame, t, None, turns, mirror

    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            out = frame_to_rgb(self.frame)  # (h, w, 3) as stored, the same on every CPU
            if self._mirror:
                out = out[:, ::-1]  # mirrored left-right first, then turned
            if self._turns or self._mirror:
                out = np.ascontiguousarray(np.rot90(out, self._turns))  # counter-clockwise
            out.flags.writeable = False
            self._rgb = out
            self.frame = None  # the RGB copy is all that is needed now
        return self._rgb


def _decoded_frames(path: str | os.PathLike[str], info: VideoInfo) -> Iterator[_Decoded]:
    """Every frame of the video in presentation order with strictly increasing video times.

    Corrupt packets (the cut-off end of a truncated file) are skipped, as are packets FFmpeg
    cannot decode; times are ``pts * time_base - info.start_s``; frames before ``start_s`` (a
    trim's pre-roll, decoded only as references) are dropped; a frame without a usable
    timestamp gets the previous one plus one interval.
    """
    import av

    container = _open(path)
    with quiet_libav(), contextlib.closing(container):
        stream = _stream_of(container)
        prev: float | None = None
        eps = 1e-6

        def timed(frames: Any) -> Iterator[_Decoded]:
            nonlocal prev
            for frame in frames:
                t = _seconds(frame.pts, frame.time_base)
                t = None if t is None else t - info.start_s
                if t is not None and t < -eps:
                    continue  # pre-roll before the first frame shown
                if prev is not None and (t is None or not t > prev):
                    t = prev + info.interval_s
                elif t is None:
                    t = 0.0
                prev = t
                degrees, mirror = _frame_orientation(frame)
                yield _Decoded(frame, t, (degrees // 90) % 4, mirror)

        for packet in container.demux(stream):
            if packet.is_corrupt:
                continue
            try:
                frames = packet.decode()  # the final empty packet flushes the decoder
            except av.error.FFmpegError:
                continue
            yield from timed(frames)


def _stream(path: str | os.PathLike[str], vt: np.ndarray, info: VideoInfo) -> Iterator[FrameAt]:
    """Generator behind :func:`iter_frames_at`; ``vt`` are sorted video times (validated)."""
    end = info.duration_s
    i, n = 0, vt.size

    def answer(k: int, d: _Decoded) -> FrameAt:
        return FrameAt(k, d.rgb(), d.t, d.t - vt[k])

    def missing(k: int) -> FrameAt:
        return FrameAt(k, None, math.nan, math.nan)

    # Requests before the video starts.
    while i < n and vt[i] < 0.0:
        yield missing(i)
        i += 1
    prev: _Decoded | None = None
    frames = _decoded_frames(path, info)
    try:
        for cur in frames:
            if i >= n or vt[i] >= end:
                break
            while i < n and vt[i] <= cur.t and vt[i] < end:
                # The nearest of the frame before the request and the one at/after it; a tie (up
                # to float rounding: 3.45 s lies 0.05000000000000027 s after 3.4 s) goes to the earlier.
                if prev is not None and vt[i] - prev.t <= cur.t - vt[i] + _TIE_S:
                    yield answer(i, prev)
                else:
                    yield answer(i, cur)
                i += 1
            prev = cur
        # The frames ended: requests up to the real end get the last frame; the rest are past it.
        while i < n:
            yield answer(i, prev) if prev is not None and vt[i] < end else missing(i)
            i += 1
    finally:
        frames.close()
