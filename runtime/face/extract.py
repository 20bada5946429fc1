"""Face crops for EEG windows: sample frames by time, detect, follow one subject, crop, in one pass.

For each EEG window, ``frames_per_window`` instants are sampled (:func:`sample_times`), the
nearest video frames are decoded (video times from the recording's :class:`~..timebase.Alignment`,
or ``video_time = eeg_time + offset_s`` without one), every face is detected
(each window's new frames in one ``detect_batch`` call), one subject is followed through the recording (:class:`~.track.SubjectTracker`: a second person
in view is never cropped instead of the subject) and its face is cropped by the spec's rule.
Rules for frames without the subject's face:

- a frame where the subject is not found reuses the box of the nearest (in time) frame of the
  same window that has one; it is flagged ``found=False`` (:data:`FRAME_NO_FACE`);
- a window where no frame has a face is cropped to the centred square of each whole frame (the
  subject usually sits in the middle); all its frames are flagged ``found=False``;
- a requested time outside the video (before its start or past its end) gets a black crop,
  ``found=False``, counted in ``frames_before_video_start`` / ``frames_past_video_end``.

Each frame also carries flags (:data:`FRAME_FLAGS`): no face, timing off (the nearest frame is
more than 1.5 frame intervals from the requested time: a gap in the video), several faces,
outside the video. At the end of the stream a :class:`FaceWarning` is issued for each problem
found (windows without a face, several people, timing, truncated video, frame-rate mismatch,
dark or grayscale video), with a hint; the same sentences are in ``stats.notes``.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import scratch
from ..check import check_equal, check_nonempty, check_positive, check_type
from ..spec import FaceSpec
from ..windows import FaceWindows
from .detect import Box, DetectorBuild, make_detector
from .track import SubjectTracker
from .video import TIMING_TOLERANCE_FRAMES, VideoInfo, check_offset, iter_frames_at, probe_video, sample_times
from .window_crops import (
    FRAME_FLAGS,
    FRAME_NO_FACE,
    FRAME_OUTSIDE_VIDEO,
    FRAME_SEVERAL_FACES,
    FRAME_TIMING_OFF,
    FaceExtractionStats,
    FaceWarning,
    FaceWindow,
    _crop_window,
    _detect_pending,
    _WindowBuffer,
    face_notes,
)

if TYPE_CHECKING:
    from ..timebase import Alignment

__all__ = [
    "FRAME_NO_FACE",
    "FRAME_TIMING_OFF",
    "FRAME_SEVERAL_FACES",
    "FRAME_OUTSIDE_VIDEO",
    "FRAME_FLAGS",
    "FaceWarning",
    "FaceWindow",
    "FaceExtractionStats",
    "iter_face_windows",
    "extract_faces",
    "face_notes",
]

# Windows of crops written between two releases of a scratch-backed crop array (24 MB at the
# paper's sizes).
_RELEASE_EVERY = 16


def iter_face_windows(
    video_path: str | os.PathLike[str],
    window_starts: np.ndarray,
    spec_face: FaceSpec,
    window_s: float,
    *,
    offset_s: float = 0.0,
    detector: Any = None,
    video_info: VideoInfo | None = None,
    stats: FaceExtractionStats | None = None,
    tracker: SubjectTracker | None = None,
    alignment: Alignment | None = None,
) -> Iterator[FaceWindow]:
    """Stream the face crops of each EEG window, in window order (see the module docstring).

    window_starts: (W,) EEG times (s) of the windows' starts; ``window_s`` their length.
    offset_s:      video time at EEG t = 0 (ignored with ``alignment``).
    alignment:     the recording's clocks (:class:`~..timebase.Alignment`): the sampled EEG times
                   become video times through it (rates, pauses, container timeline).
    detector:      a detector to use (a :class:`~.detect.FaceDetector`, or anything with
                   ``detect_all(frame) -> list[Box]`` and a ``name``; the name must be
                   ``spec_face.detector``; the caller closes it); by default one is made for this
                   video and closed at the end. A :class:`~.detect.DetectorBuild` (a detector
                   being built in the background) is waited for and closed at the end.
    stats:         filled in with counts, notes and timings while iterating.
    tracker:       how the subject is followed (default :class:`~.track.SubjectTracker()`).

    Only the frames of windows not yet complete are held (one window's frames for
    non-overlapping, increasing starts). Input errors are raised here, before iterating; the
    :class:`FaceWarning` s after the last window.
    """
    check_type("spec_face", spec_face, FaceSpec)
    check_positive("window_s", window_s)
    if alignment is None:
        check_offset(offset_s)
    if detector is not None:
        check_equal("detector", getattr(detector, "name", type(detector).__name__), spec_face.detector,
                    why="the detector the spec's crops come from")
    times = sample_times(window_starts, window_s, spec_face.frames_per_window)  # (W, F) EEG time
    info = video_info if video_info is not None else probe_video(video_path)
    if alignment is not None:
        # A time inside a pause of the video has no frame: sent before the start, answered "outside".
        video_times = np.nan_to_num(alignment.eeg_to_video(times), nan=-1.0)
        offset_s = alignment.offset_s
    else:
        video_times = times + offset_s
    if times.size:
        check_nonempty(
            "offset_s", np.flatnonzero((video_times >= 0) & (video_times < info.duration_s)),
            f"frame time inside the video (0-{info.duration_s:.3f} s of {Path(video_path).name!r})",
            hint=f"with offset_s={offset_s!r} the frames sampled from the windows lie at video time "
            f"{video_times.min():.3f}-{video_times.max():.3f} s",
        )
    stats = stats if stats is not None else FaceExtractionStats()
    tracker = tracker if tracker is not None else SubjectTracker()
    return _iter_windows(video_path, video_times, spec_face, detector, info, stats, tracker)


def _iter_windows(
    video_path: str | os.PathLike[str],
    times: np.ndarray,
    spec_face: FaceSpec,
    detector: Any,
    info: VideoInfo,
    stats: FaceExtractionStats,
    tracker: SubjectTracker,
) -> Iterator[FaceWindow]:
    """Generator behind :func:`iter_face_windows` (inputs validated). times: (W, F) VIDEO seconds."""
    n_windows, n_per = times.shape
    flat = times.ravel()
    order = np.argsort(flat, kind="stable")  # overlapping windows interleave in video time
    # A DetectorBuild (started by the caller) is waited for here and closed with the stream.
    owns_detector = detector is None or isinstance(detector, DetectorBuild)
    if isinstance(detector, DetectorBuild):
        try:
            det = detector.result()
        except BaseException:
            detector.close()
            raise
    else:
        det = detector if detector is not None else make_detector(spec_face.detector, spec_face.min_confidence)
    tolerance = TIMING_TOLERANCE_FRAMES * info.interval_s
    buffers: dict[int, _WindowBuffer] = {}
    next_window = 0
    # Overlapping windows can ask for the same frame: detect (and track) it once
    # (video time -> (the subject's box or None, number of faces)).
    known: dict[float, tuple[Box | None, int]] = {}
    try:
        frames = iter_frames_at(video_path, flat[order], 0.0, info=info)
        while next_window < n_windows:
            t0 = time.perf_counter()
            item = next(frames, None)
            stats.timings["decode"] += time.perf_counter() - t0
            assert item is not None, "iter_frames_at answers every request"
            w, f = divmod(int(order[item.index]), n_per)
            buf = buffers.setdefault(w, _WindowBuffer(n_per))
            if item.frame is None:
                buf.flags[f] = FRAME_OUTSIDE_VIDEO | FRAME_NO_FACE
                if flat[order[item.index]] < 0:
                    stats.frames_before_video_start += 1
                else:
                    stats.frames_past_video_end += 1
            else:
                buf.frames[f], buf.timestamps[f] = item.frame, item.timestamp
                if abs(item.error_s) > tolerance:
                    buf.flags[f] |= FRAME_TIMING_OFF
                    stats.frames_timing_off += 1
                    stats.max_timing_error_s = max(stats.max_timing_error_s, abs(float(item.error_s)))
            buf.answered += 1
            while next_window in buffers and buffers[next_window].complete:
                t0 = time.perf_counter()
                _detect_pending(det, buffers, known, tracker, stats)
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
    stats.notes = face_notes(stats, info, spec_face.detector)
    for note in stats.notes:
        warnings.warn(note, FaceWarning, stacklevel=2)


def extract_faces(
    video_path: str | os.PathLike[str],
    window_starts: np.ndarray,
    spec_face: FaceSpec,
    window_s: float,
    *,
    offset_s: float = 0.0,
    progress: bool = False,
    video_info: VideoInfo | None = None,
    detector: Any = None,
    alignment: Alignment | None = None,
) -> FaceWindows:
    """All windows' crops from :func:`iter_face_windows`, as :class:`FaceWindows`.

    ``info`` holds: detector, the counts of :class:`FaceExtractionStats` (frames_total,
    frames_without_face, windows_without_face, frames_several_faces, frames_timing_off, ...),
    notes (the :class:`FaceWarning` sentences), offset_s, video (:class:`VideoInfo` fields) and
    timings (decode, detect, crop: seconds). ``progress=True`` shows a progress bar on stderr.
    """
    info = video_info if video_info is not None else probe_video(video_path)  # callers may have probed
    stats = FaceExtractionStats()
    windows = iter_face_windows(
        video_path, window_starts, spec_face, window_s, offset_s=offset_s, video_info=info, stats=stats,
        detector=detector, alignment=alignment,
    )
    n_windows, n_per, size = len(np.asarray(window_starts)), spec_face.frames_per_window, spec_face.frame_size
    # (W, F, S, S, 3): 1.5 MB per window at the paper's sizes, 1.8 GB per hour of recording; a
    # scratch file when large (:mod:`..scratch`), its pages handed back every few windows.
    frames = scratch.zeros(
        (n_windows, n_per, size, size, 3), np.uint8, what="its face crops (about 1.8 GB per hour of recording)"
    )
    found = np.zeros((n_windows, n_per), bool)
    timestamps = np.full((n_windows, n_per), np.nan)
    flags = np.zeros((n_windows, n_per), np.uint8)

    def store(window: FaceWindow) -> None:
        frames[window.index] = window.crops
        found[window.index] = window.found
        timestamps[window.index] = window.timestamps
        flags[window.index] = window.flags
        if window.index % _RELEASE_EVERY == _RELEASE_EVERY - 1:
            scratch.release(frames)

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
    scratch.release(frames)
    return FaceWindows(
        frames=frames,
        found=found,
        timestamps=timestamps,
        flags=flags,
        info={
            "detector": spec_face.detector,
            **stats.counts(),
            "notes": list(stats.notes),
            "offset_s": float(alignment.offset_s if alignment is not None else offset_s),
            **({"alignment": alignment.to_dict()} if alignment is not None else {}),
            "video": info.to_dict(),
            "timings": dict(stats.timings),
        },
    )
