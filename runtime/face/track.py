"""Follow one subject through a recording when the detector sees several faces.

A detector answers every face of a frame (``detect_all(frame) -> list[Box]``). The subject is
chosen once, at the first frame with a face: the largest face, weighted towards the frame's
centre. After that, each frame's subject is the face that continues the track: its centre
within ``max_shift`` face sizes of the last subject box (plus ``shift_per_s`` face sizes per
second since it was last seen, so a subject who moved while unseen is found again) and its size
within a factor ``max_scale``; the nearest such face wins. A frame where no face continues the
track has no subject face (the crop then reuses a box, see ``extract``), so a second person
never replaces the subject within a window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..check import MilmerInputError, check_positive
from .detect import Box

__all__ = ["MultiFaceDetector", "all_faces", "initial_subject", "SubjectTracker"]


@runtime_checkable
class MultiFaceDetector(Protocol):
    """A detector that returns every face of a frame, most confident first."""

    def detect_all(self, frame_rgb: np.ndarray) -> list[Box]: ...


def all_faces(detector: Any, frame_rgb: np.ndarray) -> list[Box]:
    """Every face ``detector`` finds in ``frame_rgb`` ((H, W, 3) uint8 RGB), as boxes in pixels.

    Uses, in this order, ``detector.detect_all(frame)``, ``detector.detect_batch([frame])[0]``
    (the all-faces form of :class:`~.detect.FaceDetector`) or ``detector.detect(frame)`` (one
    best face, so a second person cannot be seen, only refused by the track).
    """
    detect_all = getattr(detector, "detect_all", None)
    if callable(detect_all):
        return list(detect_all(frame_rgb))
    detect_batch = getattr(detector, "detect_batch", None)
    if callable(detect_batch):
        return list(detect_batch([frame_rgb])[0])
    box = detector.detect(frame_rgb)
    return [] if box is None else [box]


def _centre(box: Box) -> tuple[float, float]:
    return 0.5 * (box.x0 + box.x1), 0.5 * (box.y0 + box.y1)


def _size(box: Box) -> float:
    """A face's linear size (px): the geometric mean of its width and height."""
    return math.sqrt(max(box.width, 0.0) * max(box.height, 0.0))


def initial_subject(boxes: Sequence[Box], width: int, height: int) -> Box | None:
    """The subject among a frame's faces: the largest area, weighted towards the centre.

    Score = ``area * (1 - d / 2)`` with ``d`` the distance of the box centre from the frame
    centre over half the frame's diagonal (0 at the centre, 1 in a corner), so a centred face
    beats an off-centre one of up to twice its area. None when ``boxes`` is empty.
    """
    if not boxes:
        return None
    cx, cy, half_diag = width / 2.0, height / 2.0, 0.5 * math.hypot(width, height)

    def score(box: Box) -> float:
        bx, by = _centre(box)
        d = min(1.0, math.hypot(bx - cx, by - cy) / half_diag)
        return box.width * box.height * (1.0 - 0.5 * d)

    return max(boxes, key=score)


class SubjectTracker:
    """One subject's face through a recording (see the module docstring).

    Call :meth:`update` with each frame's faces in time order; it returns the subject's box in
    that frame or None.
    """

    def __init__(self, *, max_shift: float = 1.0, shift_per_s: float = 0.5, max_scale: float = 1.5) -> None:
        check_positive("max_shift", max_shift)
        check_positive("shift_per_s", shift_per_s)
        if not max_scale > 1:
            raise MilmerInputError(f"Invalid value for 'max_scale': expected a number > 1, got {max_scale!r}.")
        self.max_shift, self.shift_per_s, self.max_scale = float(max_shift), float(shift_per_s), float(max_scale)
        self.last: Box | None = None
        self.last_t = math.nan

    def update(self, boxes: Sequence[Box], t: float, width: int, height: int) -> Box | None:
        """The subject's face among ``boxes`` (one frame's faces, at video time ``t``), or None."""
        if self.last is None:
            chosen = initial_subject(boxes, width, height)
        else:
            chosen = self._continue(boxes, t)
        if chosen is not None:
            self.last, self.last_t = chosen, t
        return chosen

    def _continue(self, boxes: Sequence[Box], t: float) -> Box | None:
        assert self.last is not None
        size = _size(self.last)
        lx, ly = _centre(self.last)
        dt = abs(t - self.last_t) if math.isfinite(self.last_t) else 0.0
        reach = (self.max_shift + self.shift_per_s * dt) * size
        best, best_d = None, math.inf
        for box in boxes:
            s = _size(box)
            if s <= 0 or not (1.0 / self.max_scale <= s / size <= self.max_scale):
                continue
            bx, by = _centre(box)
            d = math.hypot(bx - lx, by - ly)
            if d <= reach and d < best_d:
                best, best_d = box, d
        return best
