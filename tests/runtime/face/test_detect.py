"""Face detectors on a real photo (runtime/face/detect.py)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from milmer.runtime._check import MilmerInputError
from milmer.runtime.face.detect import BlazeFaceDetector, Box, OpenCVHaarDetector, make_detector


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()  # (512, 512, 3) uint8 RGB


def test_blazeface_finds_the_face_in_the_photo(blazeface: BlazeFaceDetector, astronaut: np.ndarray) -> None:
    box = blazeface.detect(astronaut)
    assert box is not None
    np.testing.assert_allclose([box.x0, box.y0, box.x1, box.y1], [177.6, 82.9, 272.9, 178.2], atol=2.0)
    assert box.score == pytest.approx(0.922, abs=0.01)
    assert box.score > 0.9


def test_blazeface_finds_nothing_in_an_even_frame(blazeface: BlazeFaceDetector) -> None:
    assert blazeface.detect(np.full((240, 320, 3), 40, np.uint8)) is None


def test_blazeface_box_is_clipped_to_the_frame(blazeface: BlazeFaceDetector, astronaut: np.ndarray) -> None:
    # The face cut at the top and left edges: the model's box overhangs by ~10-15 px there.
    box = blazeface.detect(np.ascontiguousarray(astronaut[90:310, 190:410]))
    assert box is not None
    assert (box.x0, box.y0) == (0.0, 0.0)
    np.testing.assert_allclose([box.x1, box.y1], [85.7, 86.4], atol=2.0)


def test_haar_finds_the_face_in_the_photo(astronaut: np.ndarray) -> None:
    with OpenCVHaarDetector() as haar:
        box = haar.detect(astronaut)
        assert haar.detect(np.full((240, 320, 3), 40, np.uint8)) is None
    assert box is not None
    np.testing.assert_allclose([box.x0, box.y0, box.x1, box.y1], [177, 66, 272, 161], atol=3.0)
    assert box.score > 0


def test_make_detector_by_spec_name() -> None:
    with make_detector("opencv-haar") as det:
        assert isinstance(det, OpenCVHaarDetector) and det.name == "opencv-haar"
    with make_detector("blazeface-short-range", 0.7) as det:
        assert isinstance(det, BlazeFaceDetector) and det.min_confidence == 0.7
    msg = "'detector': expected one of 'blazeface-short-range', 'opencv-haar', got 'yolo'"
    with pytest.raises(MilmerInputError, match=msg):
        make_detector("yolo")
    with pytest.raises(MilmerInputError, match=r"'min_confidence': expected in \(0, 1\), got 1.5"):
        make_detector("blazeface-short-range", 1.5)


def test_blazeface_without_mediapipe_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "mediapipe" or m.startswith("mediapipe.")] + ["mediapipe"]:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import mediapipe...` fail
    msg = r"needs mediapipe.*Install mediapipe==0\.10\.21.*choose detector 'opencv-haar' explicitly"
    with pytest.raises(MilmerInputError, match=msg):
        make_detector("blazeface-short-range")


def test_detect_rejects_non_image(blazeface: BlazeFaceDetector) -> None:
    with pytest.raises(MilmerInputError, match=r"'frame_rgb': expected an \(H, W, 3\) uint8 RGB array, got float32"):
        blazeface.detect(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(MilmerInputError, match=r"got uint8 \(8, 8\)"):
        blazeface.detect(np.zeros((8, 8), np.uint8))


def test_box_clip() -> None:
    assert Box(-5, -2, 50, 300, 0.8).clip(40, 100) == Box(0, 0, 40, 100, 0.8)
    assert Box(50, 0, 60, 10).clip(40, 100) is None
