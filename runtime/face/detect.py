"""Face detectors behind one small interface: ``detect(frame) -> Box | None``.

Each detector is a subclass of :class:`FaceDetector` that implements ``_detect_impl`` and
imports its library in ``__init__``. :func:`make_detector` picks one by the spec's name from a
table; adding a detector adds a class and a table entry. A model is only valid with crops made
by the detector its spec names, so a missing library is an error, never a silent fallback.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from .._check import MilmerInputError, check_option
from ..spec import DETECTORS

__all__ = ["Box", "FaceDetector", "BlazeFaceDetector", "OpenCVHaarDetector", "make_detector"]


@dataclass(frozen=True)
class Box:
    """A face box in pixel coordinates: ``x0 <= x < x1``, ``y0 <= y < y1`` (edges, not centres).

    score: the detector's confidence (BlazeFace: probability in [0, 1]; Haar: the cascade's
    level weight, larger is more certain but unbounded).
    """

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def clip(self, width: int, height: int) -> Box | None:
        """This box clipped to a ``width`` x ``height`` image; None if nothing is left."""
        x0, x1 = min(max(self.x0, 0.0), width), min(max(self.x1, 0.0), width)
        y0, y1 = min(max(self.y0, 0.0), height), min(max(self.y1, 0.0), height)
        if x1 - x0 < 1.0 or y1 - y0 < 1.0:
            return None
        return Box(x0, y0, x1, y1, self.score)


class FaceDetector(ABC):
    """Finds the most confident face in an RGB frame. Use as a context manager or call close()."""

    #: The name a spec uses for this detector (``FaceSpec.detector``).
    name: ClassVar[str]

    def detect(self, frame_rgb: np.ndarray) -> Box | None:
        """frame_rgb: (H, W, 3) uint8 RGB. Returns the best face box (clipped to the frame) or None."""
        is_array = isinstance(frame_rgb, np.ndarray)
        if not is_array or frame_rgb.dtype != np.uint8 or frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
            got = f"{frame_rgb.dtype} {frame_rgb.shape}" if is_array else type(frame_rgb).__name__
            raise MilmerInputError(
                f"Invalid value for 'frame_rgb': expected an (H, W, 3) uint8 RGB array, got {got}."
            )
        box = self._detect_impl(np.ascontiguousarray(frame_rgb))
        return None if box is None else box.clip(frame_rgb.shape[1], frame_rgb.shape[0])

    @abstractmethod
    def _detect_impl(self, frame_rgb: np.ndarray) -> Box | None:
        """frame_rgb: (H, W, 3) uint8 RGB, C-contiguous. The best box in pixels (may overhang)."""

    def close(self) -> None:
        """Release the detector's resources (idempotent)."""

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class BlazeFaceDetector(FaceDetector):
    """mediapipe's BlazeFace short-range model (``model_selection=0``), bundled in mediapipe 0.10.21.

    Made for faces within ~2 m of the camera; it finds nothing when the face is under about a
    third of the frame's shorter side. One instance per video: building the graph costs far more
    than a detection (~1-1.5 ms on a laptop CPU).
    """

    name: ClassVar[str] = "blazeface-short-range"

    def __init__(self, min_confidence: float = 0.5) -> None:
        if not 0 < min_confidence < 1:
            raise MilmerInputError(
                f"Invalid value for 'min_confidence': expected in (0, 1), got {min_confidence!r}."
            )
        try:
            from mediapipe.python.solutions import face_detection
        except ImportError as err:
            raise MilmerInputError(
                f"Face detector 'blazeface-short-range' needs mediapipe ({err}). Install "
                "mediapipe==0.10.21 (the last release that bundles the model), or choose detector "
                "'opencv-haar' explicitly (a model trained on BlazeFace crops may then do worse)."
            ) from None
        self.min_confidence = float(min_confidence)
        self._model: Any = face_detection.FaceDetection(
            model_selection=0, min_detection_confidence=self.min_confidence
        )

    def _detect_impl(self, frame_rgb: np.ndarray) -> Box | None:
        if self._model is None:
            raise RuntimeError("BlazeFaceDetector used after close().")
        result = self._model.process(frame_rgb)
        if not result.detections:
            return None
        best = max(result.detections, key=lambda d: d.score[0])
        rel = best.location_data.relative_bounding_box
        h, w = frame_rgb.shape[:2]
        return Box(
            rel.xmin * w, rel.ymin * h, (rel.xmin + rel.width) * w, (rel.ymin + rel.height) * h, float(best.score[0])
        )

    def close(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None


class OpenCVHaarDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade, for machines without mediapipe (chosen explicitly).

    Returns the detection with the largest cascade level weight (``Box.score``). The cascade has
    no probability, so a spec's ``min_confidence`` does not apply; ``min_neighbors`` is its knob.
    """

    name: ClassVar[str] = "opencv-haar"

    def __init__(self, *, scale_factor: float = 1.1, min_neighbors: int = 5, min_size_frac: float = 0.1) -> None:
        import cv2

        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if self._cascade.empty():
            raise MilmerInputError(
                "Face detector 'opencv-haar' needs OpenCV's bundled haarcascade_frontalface_default.xml, "
                "which this OpenCV build lacks; install opencv-python-headless."
            )
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size_frac = min_size_frac

    def _detect_impl(self, frame_rgb: np.ndarray) -> Box | None:
        import cv2

        gray = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
        side = max(1, int(self.min_size_frac * min(gray.shape)))
        boxes, _, weights = self._cascade.detectMultiScale3(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(side, side),
            outputRejectLevels=True,
        )
        if len(boxes) == 0:
            return None
        best = int(np.argmax(np.asarray(weights).reshape(-1)))
        x, y, w, h = (float(v) for v in boxes[best])
        return Box(x, y, x + w, y + h, float(np.asarray(weights).reshape(-1)[best]))


# Spec name -> constructor taking min_confidence. Keys must match spec.DETECTORS.
_FACTORIES: dict[str, Callable[[float], FaceDetector]] = {
    BlazeFaceDetector.name: lambda min_confidence: BlazeFaceDetector(min_confidence),
    OpenCVHaarDetector.name: lambda min_confidence: OpenCVHaarDetector(),
}
assert set(_FACTORIES) == set(DETECTORS), "every detector a spec may name needs a factory"


def make_detector(name: str, min_confidence: float = 0.5) -> FaceDetector:
    """The detector a spec names (``FaceSpec.detector``); ``min_confidence`` applies to BlazeFace."""
    check_option("detector", name, DETECTORS)
    return _FACTORIES[name](min_confidence)
