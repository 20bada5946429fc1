"""One EEG window's face crops, frame by frame: flags, detection, the crop rule, the warnings.

Shared by recordings on file (:mod:`.extract`) and live streams (:mod:`..live.faces`): the
per-frame flags (:data:`FRAME_FLAGS`), the buffer of a window's frames until all are answered,
one batched detection of the frames still waiting (the subject followed by a
:class:`~.track.SubjectTracker`), the crop rule with its no-face fallbacks (see
:mod:`.extract`'s docstring) and the sentences of a finished extraction (:func:`face_notes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..spec import FaceSpec
from .crop import center_square_box, crop_pad_resize, expand_box
from .detect import Box
from .track import SubjectTracker, all_faces
from .video import TIMING_TOLERANCE_FRAMES, VideoInfo

__all__ = [
    "FRAME_NO_FACE",
    "FRAME_TIMING_OFF",
    "FRAME_SEVERAL_FACES",
    "FRAME_OUTSIDE_VIDEO",
    "FRAME_FLAGS",
    "FaceWarning",
    "FaceWindow",
    "FaceExtractionStats",
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


def _image_checks(frame: np.ndarray, stats: FaceExtractionStats) -> None:
    """Count dark and grayscale frames (on every 4th pixel: cheap)."""
    small = frame[::4, ::4].astype(np.float32)  # (h/4, w/4, 3)
    y = float((small @ np.array([0.299, 0.587, 0.114], np.float32)).mean())
    chroma = float(np.abs(small[..., 0] - small[..., 1]).mean() + np.abs(small[..., 1] - small[..., 2]).mean())
    stats.frames_checked += 1
    stats.frames_dark += int(y < _DARK_LUMA)
    stats.frames_gray += int(chroma < _GRAY_CHROMA)


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
