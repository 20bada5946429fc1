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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..check import MilmerInputError, check_positive, check_type
from ..spec import FaceSpec
from ..windows import FaceWindows
from .crop import center_square_box, crop_pad_resize, expand_box
from .detect import Box, FaceDetector, make_detector
from .track import SubjectTracker, all_faces
from .video import (
    TIMING_TOLERANCE_FRAMES,
    VideoInfo,
    check_offset,
    iter_frames_at,
    probe_video,
    sample_times,
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

#: Per-frame flags (bits of ``FaceWindow.flags``). No face: the subject was not detected in the
#: frame (its crop reuses a box of the window, or the centred square, or is black outside the video).
FRAME_NO_FACE = 1
#: The frame used is more than ``TIMING_TOLERANCE_FRAMES`` intervals from the requested time.
FRAME_TIMING_OFF = 2
#: The detector saw more than one face in the frame (the subject was followed).
FRAME_SEVERAL_FACES = 4
#: The requested time lies outside the video (black crop).
FRAME_OUTSIDE_VIDEO = 8
#: Flag name -> bit, for reports.
FRAME_FLAGS: dict[str, int] = {
    "no_face": FRAME_NO_FACE,
    "timing_off": FRAME_TIMING_OFF,
    "several_faces": FRAME_SEVERAL_FACES,
    "outside_video": FRAME_OUTSIDE_VIDEO,
}

# Image checks on the frames used: mean luma (0-255) below this is "dark"; a mean absolute
# difference between colour channels below this is "grayscale".
_DARK_LUMA = 40.0
_GRAY_CHROMA = 5.0

#: What each detector can see, for the no-face hint.
_DETECTOR_RANGE = {
    "blazeface-short-range": "BlazeFace short-range finds faces within about 2 m of the camera, at least about a "
    "third of the frame's shorter side",
    "opencv-haar": "the Haar cascade finds upright frontal faces of at least 10 % of the frame's shorter side",
}


class FaceWarning(UserWarning):
    """Something about the faces or the video that the predictions depend on (see ``face_notes``)."""


class FaceWindow(NamedTuple):
    """The crops of one EEG window.

    index:      window index (position in ``window_starts``)
    crops:      (F, S, S, 3) uint8 RGB
    found:      (F,) bool, True where the subject's face was detected in that frame
    timestamps: (F,) float64 video time (s) of each frame used; NaN outside the video
    flags:      (F,) uint8 bits of :data:`FRAME_FLAGS` (None from callers that build windows
                themselves: then only ``found`` is known)
    """

    index: int
    crops: np.ndarray
    found: np.ndarray
    timestamps: np.ndarray
    flags: np.ndarray | None = None

    @property
    def has_face(self) -> bool:
        """At least one frame of the window shows the subject's face (else: no prediction)."""
        return bool(np.any(self.found))


@dataclass
class FaceExtractionStats:
    """Counts and timings gathered while :func:`iter_face_windows` runs.

    ``frames_without_face`` counts decoded frames without the subject's face; requested times
    outside the video are counted only in ``frames_before_video_start`` / ``frames_past_video_end``.
    ``frames_dark`` / ``frames_gray`` / ``frames_checked`` count distinct decoded frames.
    ``notes`` are the sentences issued as :class:`FaceWarning` at the end of the stream.
    """

    frames_total: int = 0
    frames_without_face: int = 0
    windows_total: int = 0
    windows_without_face: int = 0
    frames_past_video_end: int = 0
    frames_before_video_start: int = 0
    frames_several_faces: int = 0
    frames_timing_off: int = 0
    max_timing_error_s: float = 0.0
    frames_checked: int = 0
    frames_dark: int = 0
    frames_gray: int = 0
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=lambda: {"decode": 0.0, "detect": 0.0, "crop": 0.0})

    def counts(self) -> dict[str, Any]:
        """Every count (not timings or notes), JSON-able."""
        return {k: v for k, v in self.__dict__.items() if k not in ("notes", "timings")}


@dataclass
class _WindowBuffer:
    """Frames of one window gathered until all ``F`` requests have been answered."""

    n: int
    frames: list[np.ndarray | None] = field(init=False)
    boxes: list[Box | None] = field(init=False)
    timestamps: np.ndarray = field(init=False)
    flags: np.ndarray = field(init=False)
    detected: np.ndarray = field(init=False)  # (n,) bool: the frame's faces are known
    answered: int = 0

    def __post_init__(self) -> None:
        self.frames = [None] * self.n
        self.boxes = [None] * self.n
        self.timestamps = np.full(self.n, np.nan)
        self.flags = np.zeros(self.n, np.uint8)
        self.detected = np.zeros(self.n, bool)

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
                   video and closed at the end.
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
    if detector is not None and getattr(detector, "name", None) != spec_face.detector:
        raise MilmerInputError(
            f"Invalid value for 'detector': the spec's crops come from {spec_face.detector!r}, "
            f"got a {getattr(detector, 'name', type(detector).__name__)!r} detector."
        )
    times = sample_times(window_starts, window_s, spec_face.frames_per_window)  # (W, F) EEG time
    info = video_info if video_info is not None else probe_video(video_path)
    if alignment is not None:
        # A time inside a pause of the video has no frame: sent before the start, answered "outside".
        video_times = np.nan_to_num(alignment.eeg_to_video(times), nan=-1.0)
        offset_s = alignment.offset_s
    else:
        video_times = times + offset_s
    if times.size and not np.any((video_times >= 0) & (video_times < info.duration_s)):
        raise MilmerInputError(
            f"Invalid value for 'offset_s': with offset_s={offset_s!r} the frames sampled from the "
            f"windows lie at video time {video_times.min():.3f}-{video_times.max():.3f} s, which misses "
            f"the whole video (0-{info.duration_s:.3f} s of {Path(video_path).name!r})."
        )
    stats = stats if stats is not None else FaceExtractionStats()
    tracker = tracker if tracker is not None else SubjectTracker()
    return _iter_windows(video_path, video_times, spec_face, detector, info, stats, tracker)


def _image_checks(frame: np.ndarray, stats: FaceExtractionStats) -> None:
    """Count dark and grayscale frames (on every 4th pixel: cheap)."""
    small = frame[::4, ::4].astype(np.float32)  # (h/4, w/4, 3)
    y = float((small @ np.array([0.299, 0.587, 0.114], np.float32)).mean())
    chroma = float(np.abs(small[..., 0] - small[..., 1]).mean() + np.abs(small[..., 1] - small[..., 2]).mean())
    stats.frames_checked += 1
    stats.frames_dark += int(y < _DARK_LUMA)
    stats.frames_gray += int(chroma < _GRAY_CHROMA)


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
    owns_detector = detector is None
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


def _faces_batch(det: Any, frames: list[np.ndarray]) -> list[list[Box]]:
    """Every face of each frame: one ``detect_batch`` call for a :class:`~.detect.FaceDetector`,
    else :func:`~.track.all_faces` frame by frame (``detect_all`` / ``detect`` objects)."""
    if not callable(getattr(det, "detect_all", None)) and callable(getattr(det, "detect_batch", None)):
        return [list(faces) for faces in det.detect_batch(frames)]
    return [all_faces(det, frame) for frame in frames]


def _detect_pending(
    det: Any,
    buffers: dict[int, _WindowBuffer],
    known: dict[float, tuple[Box | None, int]],
    tracker: SubjectTracker,
    stats: FaceExtractionStats,
) -> None:
    """Detect every decoded frame not yet in ``known`` (by video time) in one batch, follow the
    subject through them in time order, and fill in the boxes and face flags of the waiting frames.

    Frames come in time order, so the frames waiting here are all later than those tracked before.
    """
    todo: dict[float, np.ndarray] = {}
    for buf in buffers.values():
        for f, frame in enumerate(buf.frames):
            if frame is not None and not buf.detected[f] and float(buf.timestamps[f]) not in known:
                todo.setdefault(float(buf.timestamps[f]), frame)
    if todo:
        times = sorted(todo)
        for t, boxes in zip(times, _faces_batch(det, [todo[t] for t in times])):
            height, width = todo[t].shape[:2]
            known[t] = (tracker.update(boxes, t, width, height), len(boxes))
            _image_checks(todo[t], stats)
    for buf in buffers.values():
        for f, frame in enumerate(buf.frames):
            if frame is None or buf.detected[f]:
                continue
            box, n_faces = known[float(buf.timestamps[f])]
            buf.boxes[f] = box
            if box is None:
                buf.flags[f] |= FRAME_NO_FACE
            if n_faces > 1:
                buf.flags[f] |= FRAME_SEVERAL_FACES
                stats.frames_several_faces += 1
            buf.detected[f] = True


def _crop_window(index: int, buf: _WindowBuffer, spec_face: FaceSpec, stats: FaceExtractionStats) -> FaceWindow:
    """Apply the crop rule (and the no-face rules of the module docstring) to one window."""
    size = spec_face.frame_size
    crops = np.zeros((buf.n, size, size, 3), np.uint8)  # black where there is no frame
    found = np.array([b is not None for b in buf.boxes])
    detected = [g for g in range(buf.n) if buf.boxes[g] is not None]
    for f, frame in enumerate(buf.frames):
        if frame is None:
            continue
        height, width = frame.shape[:2]  # each frame's own size: it may change mid-stream
        box = None
        if detected:
            # Nearest detection in time; ties go to the earlier frame.
            nearest = min(detected, key=lambda d: (abs(buf.timestamps[d] - buf.timestamps[f]), buf.timestamps[d]))
            nb = buf.boxes[nearest]
            assert nb is not None
            if nb.clip(width, height) is not None:
                box = expand_box(nb, spec_face.box_expand, width=width, height=height)
        if box is None:
            box = center_square_box(width, height)
        crops[f] = crop_pad_resize(frame, box, size)
    n_decoded = sum(frame is not None for frame in buf.frames)
    stats.frames_total += buf.n
    stats.frames_without_face += n_decoded - len(detected)
    stats.windows_total += 1
    stats.windows_without_face += int(not detected)
    return FaceWindow(index, crops, found, buf.timestamps, buf.flags)


def face_notes(stats: FaceExtractionStats, info: VideoInfo, detector: str) -> list[str]:
    """The warnings of a finished extraction: one sentence (with a hint) per problem found.

    Windows without the subject's face (they get no emotion prediction), frames with several
    faces, frames far from their requested time, the video's own notes (truncated file,
    header/timestamp frame-rate mismatch; :meth:`VideoInfo.notes` without the rotation), and
    mostly dark or grayscale frames.
    """
    notes = [n for n in info.notes() if "rotation tag" not in n and "gap of" not in n]
    decoded = stats.frames_total - stats.frames_past_video_end - stats.frames_before_video_start
    if stats.windows_without_face:
        hint = _DETECTOR_RANGE.get(detector, f"detector {detector!r}")
        notes.append(
            f"{stats.windows_without_face} of {stats.windows_total} windows have no face (none found in "
            f"{stats.frames_without_face} of {decoded} frames): they get no emotion prediction. Check the "
            f"lighting, the subject's distance ({hint}) and that the face is in view."
        )
    if stats.frames_several_faces:
        notes.append(
            f"{stats.frames_several_faces} of {decoded} frames show several faces: one subject (the largest, "
            "most central face at the start) is followed by position and size; check faces.png from "
            "`milmer preprocess`."
        )
    if stats.frames_timing_off:
        notes.append(
            f"{stats.frames_timing_off} of {decoded} frames are more than {TIMING_TOLERANCE_FRAMES:g} frame "
            f"intervals from their requested time (up to {stats.max_timing_error_s:.2f} s: a gap in the video, "
            "e.g. a webcam dropout); they are flagged 'timing_off'."
        )
    checked = stats.frames_checked
    if checked and stats.frames_dark * 2 > checked:
        notes.append(
            f"{stats.frames_dark} of {checked} frames are dark (mean brightness under {_DARK_LUMA:g} of 255): "
            "faces may be missed; more light on the face helps."
        )
    if checked and stats.frames_gray * 2 > checked:
        notes.append(
            f"{stats.frames_gray} of {checked} frames are grayscale: the model was trained on colour video, "
            "so its predictions may be less reliable."
        )
    return notes


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
    frames = np.zeros((n_windows, n_per, size, size, 3), np.uint8)
    found = np.zeros((n_windows, n_per), bool)
    timestamps = np.full((n_windows, n_per), np.nan)
    flags = np.zeros((n_windows, n_per), np.uint8)

    def store(window: FaceWindow) -> None:
        frames[window.index] = window.crops
        found[window.index] = window.found
        timestamps[window.index] = window.timestamps
        flags[window.index] = window.flags

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
