"""Face detectors behind one small interface: ``detect_batch(frames) -> list[list[Box]]`` (all
faces per frame, best first) and ``detect(frame) -> Box | None`` (the most confident face).

Each detector is a subclass of :class:`FaceDetector` that implements one ``_detect_*_impl``
and imports its library in ``__init__``. :func:`make_detector` picks one by the spec's name from a
table; adding a detector adds a class and a table entry. A model is only valid with crops made
by the detector its spec names, so a missing library is an error, never a silent fallback.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal

import numpy as np

from ..check import MilmerInputError, check_array, check_int, check_number, check_option, check_sequence
from ..spec import DETECTOR_SHA256, DETECTORS

__all__ = [
    "Box",
    "FaceDetector",
    "BlazeFaceDetector",
    "OpenCVHaarDetector",
    "BLAZEFACE_MODEL",
    "BLAZEFACE_DEVICES",
    "check_model_file",
    "make_detector",
    "DetectorBuild",
]

#: The BlazeFace short-range graph shipped in the package.
BLAZEFACE_MODEL = Path(__file__).with_name("models") / "blazeface_short_range.onnx"
#: Where BlazeFace runs: ONNX Runtime's CPU, CUDA or TensorRT execution provider.
BLAZEFACE_DEVICES: tuple[str, ...] = ("cpu", "cuda", "tensorrt")


@dataclass(frozen=True)
class Box:
    """A face box in pixel coordinates: ``x0 <= x < x1``, ``y0 <= y < y1`` (edges, not centres).

    score:     the detector's confidence (BlazeFace: probability in [0, 1]; Haar: the cascade's
               level weight, larger is more certain but unbounded)
    keypoints: BlazeFace's 6 landmarks ``(x, y)`` in pixels, in the order of
               ``blazeface.KEYPOINT_NAMES`` (eyes, nose tip, mouth, ear tragions; they may lie
               outside the frame); ``None`` for detectors without landmarks
    """

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    keypoints: tuple[tuple[float, float], ...] | None = None

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def clip(self, width: int, height: int) -> Box | None:
        """This box clipped to a ``width`` x ``height`` image; None if nothing is left.

        Keypoints are kept as they are."""
        x0, x1 = min(max(self.x0, 0.0), width), min(max(self.x1, 0.0), width)
        y0, y1 = min(max(self.y0, 0.0), height), min(max(self.y1, 0.0), height)
        if x1 - x0 < 1.0 or y1 - y0 < 1.0:
            return None
        return Box(x0, y0, x1, y1, self.score, self.keypoints)


def _check_frame(name: str, frame_rgb: object) -> np.ndarray:
    check_array(name, frame_rgb, shape=("H", "W", 3), dtype=np.uint8, nonempty=True, what="an (H, W, 3) uint8 RGB array")
    return np.ascontiguousarray(frame_rgb)


class FaceDetector(ABC):
    """Finds faces in RGB frames. Use as a context manager or call close().

    :meth:`detect_batch` returns every face of every frame, best first; :meth:`detect` the most
    confident face of one frame. A detector implements one of ``_detect_batch_impl`` (frames at
    once), ``_detect_all_impl`` (all faces of one frame) or ``_detect_impl`` (the best face only).
    """

    #: The name a spec uses for this detector (``FaceSpec.detector``).
    name: ClassVar[str]

    def detect(self, frame_rgb: np.ndarray) -> Box | None:
        """frame_rgb: (H, W, 3) uint8 RGB. Returns the best face box (clipped to the frame) or None."""
        faces = self._detect_clipped([_check_frame("frame_rgb", frame_rgb)])[0]
        return faces[0] if faces else None

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Box]]:
        """All faces of each frame, best (highest score) first, boxes clipped to their frame.

        frames: a sequence of (H_i, W_i, 3) uint8 RGB arrays (sizes may differ), or one
        (N, H, W, 3) uint8 array. Returns N lists (empty where no face was found); a face is
        found in a frame the same way whatever else is in the batch.
        """
        if isinstance(frames, np.ndarray) and frames.ndim == 4:
            frames = list(frames)
        checked = check_sequence("frames", frames, item=_check_frame, what="a sequence of (H, W, 3) uint8 RGB arrays")
        return self._detect_clipped(list(checked))

    def _detect_clipped(self, frames: list[np.ndarray]) -> list[list[Box]]:
        if not frames:
            return []
        results = self._detect_batch_impl(frames)
        assert len(results) == len(frames), (len(results), len(frames))
        out = []
        for frame, boxes in zip(frames, results):
            clipped = (b.clip(frame.shape[1], frame.shape[0]) for b in boxes)
            out.append(sorted((b for b in clipped if b is not None), key=lambda b: -b.score))
        return out

    def _detect_batch_impl(self, frames: list[np.ndarray]) -> list[list[Box]]:
        """frames: (H, W, 3) uint8 RGB, C-contiguous. Each frame's boxes in pixels (may overhang)."""
        return [self._detect_all_impl(frame) for frame in frames]

    def _detect_all_impl(self, frame_rgb: np.ndarray) -> list[Box]:
        """All boxes of one frame in pixels (may overhang). Default: :meth:`_detect_impl`'s one."""
        box = self._detect_impl(frame_rgb)
        return [] if box is None else [box]

    def _detect_impl(self, frame_rgb: np.ndarray) -> Box | None:
        """frame_rgb: (H, W, 3) uint8 RGB, C-contiguous. The best box in pixels (may overhang)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement _detect_batch_impl, _detect_all_impl or _detect_impl."
        )

    def close(self) -> None:
        """Release the detector's resources (idempotent)."""

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class BlazeFaceDetector(FaceDetector):
    """BlazeFace short-range (MediaPipe 0.10.21's ``face_detection_short_range``) as an ONNX graph.

    The graph (``models/blazeface_short_range.onnx``, see :mod:`milmer.export.blazeface_onnx`)
    runs through the Runner backends (ONNX Runtime on ``device`` 'cpu', 'cuda' or 'tensorrt'),
    frames batched; the letterbox, anchor decoding and weighted non-maximum suppression are
    MediaPipe's, in numpy (:mod:`.blazeface`). Its SHA-256 must equal ``spec.DETECTOR_SHA256``.

    Made for faces within ~2 m of the camera: it misses faces narrower than ~1/8 of the frame's
    longer side (the astronaut photo's 95 px face: found in a 768 px square frame, not in an
    896 px one). One instance per video: loading the graph costs far more than a detection.

    min_confidence: minimum face score in (0, 1) (MediaPipe's ``min_detection_confidence``)
    device:         'cpu', 'cuda' or 'tensorrt' (ONNX Runtime's execution providers; TensorRT
                    builds an engine per batch size it meets and caches it in ``trt_cache_dir``)
    max_batch:      frames per graph call in :meth:`detect_batch` (bounds memory)
    intra_op_num_threads: ONNX Runtime CPU threads (``None``: the cores this process may use)
    trt_cache_dir:  TensorRT engine cache (``None``: ``$MILMER_HOME/ort-trt/blazeface``, not
                    beside the graph, which may lie in a read-only install)
    model_path:     another copy of the graph (it must have the same SHA-256)
    """

    name: ClassVar[str] = "blazeface-short-range"

    def __init__(
        self,
        min_confidence: float = 0.5,
        *,
        device: Literal["cpu", "cuda", "tensorrt"] = "cpu",
        max_batch: int = 64,
        intra_op_num_threads: int | None = None,
        trt_cache_dir: str | os.PathLike[str] | None = None,
        model_path: str | os.PathLike[str] | None = None,
    ) -> None:
        check_number("min_confidence", min_confidence, low=0, high=1, low_open=True, high_open=True)
        check_option("device", device, BLAZEFACE_DEVICES)
        check_int("max_batch", max_batch, low=1)
        from ..backends.registry import build_runner
        from . import blazeface

        path = Path(model_path) if model_path is not None else BLAZEFACE_MODEL
        check_model_file(self.name, path)
        self.min_confidence = float(min_confidence)
        self.device = device
        self.max_batch = max_batch
        ort_options: dict[str, Any] = {"intra_op_num_threads": intra_op_num_threads}
        if device == "tensorrt":
            from ..home import milmer_home

            default_cache = milmer_home() / "ort-trt" / "blazeface"
            ort_options["trt_cache_dir"] = trt_cache_dir if trt_cache_dir is not None else default_cache
        self._runner: Any = build_runner("ort", path, device=device, precision="fp32", options={"ort": ort_options})
        self._runner.activate()
        self._anchors = blazeface.ssd_anchors()

    def _detect_batch_impl(self, frames: list[np.ndarray]) -> list[list[Box]]:
        from . import blazeface

        if self._runner is None:
            raise RuntimeError("BlazeFaceDetector used after close().")
        results: list[list[Box]] = []
        for start in range(0, len(frames), self.max_batch):
            chunk = frames[start : start + self.max_batch]
            tensors, pads = blazeface.letterbox_batch(chunk)  # (n, 3, 128, 128), (n, 2)
            out = self._runner.infer({"input": tensors})
            regressors, classificators = out["regressors"], out["classificators"]  # (n, 896, 16), (n, 896, 1)
            for i, frame in enumerate(chunk):
                found = blazeface.decode(regressors[i], classificators[i], self._anchors, self.min_confidence)
                faces = blazeface.unletterbox(blazeface.weighted_nms(found), *pads[i])
                results.append(_to_boxes(faces, width=frame.shape[1], height=frame.shape[0]))
        return results

    def close(self) -> None:
        if self._runner is not None:
            self._runner.deactivate()
            self._runner = None


def _to_boxes(faces: Any, *, width: int, height: int) -> list[Box]:
    """:class:`.blazeface.Detections` in [0, 1] frame units -> pixel :class:`Box` es."""
    scale = np.array([width, height], np.float64)
    boxes = faces.boxes.astype(np.float64).reshape(-1, 2, 2) * scale  # (K, 2 corners, xy)
    keypoints = faces.keypoints.astype(np.float64) * scale  # (K, 6, xy)
    return [
        Box(*map(float, boxes[k].reshape(4)), float(faces.scores[k]),
            tuple((float(x), float(y)) for x, y in keypoints[k]))
        for k in range(len(faces))
    ]  # fmt: skip


def check_model_file(detector: str, path: Path) -> None:
    """Raise unless ``path`` exists and has the SHA-256 the spec records for ``detector``."""
    expected = DETECTOR_SHA256[detector]
    if not path.is_file():
        raise MilmerInputError(
            f"Face detector {detector!r}: its graph {str(path)!r} is missing; reinstall milmer "
            "(the graph ships in the package)."
        )
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        raise MilmerInputError(
            f"Face detector {detector!r}: {str(path)!r} has SHA-256 {actual}, but the spec records "
            f"{expected} (FaceSpec / spec.DETECTOR_SHA256); the file is damaged or from another "
            "conversion. Reinstall milmer, or rebuild it with `python -m milmer.export.blazeface_onnx`."
        )


class OpenCVHaarDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade (chosen explicitly; CPU only).

    Faces are ordered by the cascade's level weight (``Box.score``). The cascade has
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

    def _detect_all_impl(self, frame_rgb: np.ndarray) -> list[Box]:
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
        weights = np.asarray(weights, np.float64).reshape(-1)
        found = [Box(float(x), float(y), float(x + w), float(y + h), float(s))
                 for (x, y, w, h), s in zip(np.asarray(boxes).reshape(-1, 4), weights)]  # fmt: skip
        return sorted(found, key=lambda b: -b.score)


# Spec name -> constructor taking (min_confidence, device). Keys must match spec.DETECTORS.
_FACTORIES: dict[str, Callable[[float, str], FaceDetector]] = {
    BlazeFaceDetector.name: lambda min_confidence, device: BlazeFaceDetector(min_confidence, device=device),  # type: ignore[arg-type]
    OpenCVHaarDetector.name: lambda min_confidence, device: OpenCVHaarDetector(),
}
assert set(_FACTORIES) == set(DETECTORS), "every detector a spec may name needs a factory"


def make_detector(name: str, min_confidence: float = 0.5, *, device: str = "cpu") -> FaceDetector:
    """The detector a spec names (``FaceSpec.detector``).

    min_confidence: applies to BlazeFace (the Haar cascade has no probability)
    device:         BlazeFace: 'cpu', 'cuda' or 'tensorrt'; the Haar cascade runs on 'cpu' only
    """
    check_option("detector", name, DETECTORS)
    check_option("device", device, BLAZEFACE_DEVICES if name == BlazeFaceDetector.name else ("cpu",))
    return _FACTORIES[name](min_confidence, device)


class DetectorBuild:
    """:func:`make_detector` run in a background thread, so the caller does other work meanwhile.

    Building the detector is start-up cost on the way to the first face window: BlazeFace's
    graph is hashed, ONNX Runtime imported (OpenVINO runs the model on x86 CPUs, so nothing
    else imported it yet) and a session made: 0.1-0.5 s, cold. :class:`~..pipeline.Pipeline`
    starts it before the EEG is preprocessed (single-threaded), so a second core builds it.

    :meth:`result` waits for the detector and returns it, or raises the error the build raised
    (unchanged, as :func:`make_detector` would have); :meth:`close` waits and closes it. The
    detector is the one :func:`make_detector` returns, so its detections are too.
    """

    def __init__(self, name: str, min_confidence: float = 0.5, *, device: str = "cpu") -> None:
        import threading

        self.name = name
        self._detector: FaceDetector | None = None
        self._error: BaseException | None = None
        self._closed = False

        def build() -> None:
            try:
                self._detector = make_detector(name, min_confidence, device=device)
            except BaseException as err:  # re-raised by result() in the thread that uses it
                self._error = err

        self._thread = threading.Thread(target=build, name="milmer-detector", daemon=True)
        self._thread.start()

    def result(self) -> FaceDetector:
        """The detector, once built (waits); raises what :func:`make_detector` raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        if self._closed or self._detector is None:
            raise RuntimeError("DetectorBuild used after close().")
        return self._detector

    def close(self) -> None:
        """Wait for the build and close the detector (idempotent)."""
        self._thread.join()
        self._closed = True
        if self._detector is not None:
            self._detector.close()
            self._detector = None
