"""Face detectors on a real photo (runtime/face/detect.py): BlazeFace (ONNX) and OpenCV Haar."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.face.detect import BLAZEFACE_MODEL, BlazeFaceDetector, Box, OpenCVHaarDetector, make_detector
from milmer.runtime.spec import DETECTOR_SHA256, FaceSpec


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
    with pytest.raises(MilmerInputError, match=r"'min_confidence': expected a number in \(0, 1\), got 1.5"):
        make_detector("blazeface-short-range", 1.5)


def test_blazeface_hash_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    damaged = tmp_path / "blazeface_short_range.onnx"
    data = bytearray(BLAZEFACE_MODEL.read_bytes())
    data[-1] ^= 1
    damaged.write_bytes(bytes(data))
    msg = (
        r"Face detector 'blazeface-short-range': '.*blazeface_short_range.onnx' has SHA-256 [0-9a-f]{64}, "
        rf"but the spec records {DETECTOR_SHA256['blazeface-short-range']} \(FaceSpec"
    )
    with pytest.raises(MilmerInputError, match=msg):
        BlazeFaceDetector(model_path=damaged)
    with pytest.raises(MilmerInputError, match=r"its graph '.*missing.onnx' is missing; reinstall milmer"):
        BlazeFaceDetector(model_path=tmp_path / "missing.onnx")


def test_shipped_graph_matches_the_spec_hash() -> None:
    assert hashlib.sha256(BLAZEFACE_MODEL.read_bytes()).hexdigest() == FaceSpec().detector_sha256
    assert FaceSpec(detector="opencv-haar").detector_sha256 is None


def test_blazeface_options_are_checked() -> None:
    with pytest.raises(MilmerInputError, match="'device': expected one of 'cpu', 'cuda', 'tensorrt', got 'gpu'"):
        BlazeFaceDetector(device="gpu")  # type: ignore[arg-type]
    with pytest.raises(MilmerInputError, match="'max_batch': expected an integer >= 1, got 0"):
        BlazeFaceDetector(max_batch=0)
    with pytest.raises(MilmerInputError, match="'device': expected one of 'cpu', got 'cuda'"):
        make_detector("opencv-haar", device="cuda")


def test_blazeface_on_a_missing_gpu_provider_says_so() -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(MilmerInputError, match="'--device': 'cuda' needs onnxruntime's CUDAExecutionProvider"):
        BlazeFaceDetector(device="cuda")
    with pytest.raises(MilmerInputError, match="'--device': 'tensorrt' needs onnxruntime's TensorrtExecutionProvider"):
        make_detector("blazeface-short-range", device="tensorrt")


def test_default_detector_never_imports_mediapipe() -> None:
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from skimage import data\n"
        "from milmer.runtime.face.detect import make_detector\n"
        "from milmer.runtime.spec import FaceSpec\n"
        "with make_detector(FaceSpec().detector) as det:\n"
        "    box = det.detect(data.astronaut())\n"
        "print(type(det).__name__, box is not None, sorted(m for m in sys.modules if m.startswith('mediapipe')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "BlazeFaceDetector True []"


def test_batch_equals_single_calls_exactly(blazeface: BlazeFaceDetector, astronaut: np.ndarray) -> None:
    frames = [
        astronaut,
        np.ascontiguousarray(astronaut[90:310, 190:410]),  # the face cut at the edges
        np.full((240, 320, 3), 40, np.uint8),  # nothing
        np.ascontiguousarray(astronaut[:300]),  # wide
        np.ascontiguousarray(astronaut[:, 100:400]),  # tall
    ]
    batch = blazeface.detect_batch(frames)
    assert [len(faces) for faces in batch] == [1, 1, 0, 1, 1]
    assert batch == [blazeface.detect_batch([f])[0] for f in frames]
    assert [faces[0] if faces else None for faces in batch] == [blazeface.detect(f) for f in frames]
    assert blazeface.detect_batch(np.stack([astronaut, astronaut])) == [batch[0], batch[0]]
    assert blazeface.detect_batch([]) == []
    # Batches larger than max_batch are split: same answers.
    with BlazeFaceDetector(max_batch=2) as small:
        assert small.detect_batch(frames) == batch


def test_letterbox_removal_on_non_square_frames(blazeface: BlazeFaceDetector, astronaut: np.ndarray) -> None:
    # The same face in a wide and a tall crop of the photo comes back in each crop's own pixels:
    # the full photo's box [177.6, 82.9, 272.9, 178.2], shifted by the crop's origin.
    (wide,) = blazeface.detect_batch([np.ascontiguousarray(astronaut[:300])])[0]
    np.testing.assert_allclose([wide.x0, wide.y0, wide.x1, wide.y1], [174.2, 76.6, 274.4, 176.8], atol=0.5)
    (tall,) = blazeface.detect_batch([np.ascontiguousarray(astronaut[:, 100:400])])[0]
    np.testing.assert_allclose([tall.x0, tall.y0, tall.x1, tall.y1], [79.3, 81.4, 176.4, 178.5], atol=0.5)
    assert (wide.score, tall.score) == (pytest.approx(0.923, abs=0.002), pytest.approx(0.946, abs=0.002))


def test_blazeface_finds_several_faces_best_first(blazeface: BlazeFaceDetector, astronaut: np.ndarray) -> None:
    # Two copies of the face side by side, the right one darkened: two faces, the brighter first.
    face = astronaut[40:230, 130:330]  # (190, 200, 3)
    frame = np.zeros((240, 440, 3), np.uint8)
    frame[25:215, 10:210] = face
    frame[25:215, 230:430] = (face * 0.6).astype(np.uint8)
    faces = blazeface.detect_batch([frame])[0]
    assert len(faces) == 2
    assert faces[0].score >= faces[1].score > 0.5
    assert [f.x0 < 220 for f in faces] == [True, False]
    assert faces[0].keypoints is not None and len(faces[0].keypoints) == 6


def test_detect_rejects_non_image(blazeface: BlazeFaceDetector) -> None:
    with pytest.raises(MilmerInputError, match=r"'frame_rgb': expected an \(H, W, 3\) uint8 RGB array, got float32"):
        blazeface.detect(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(MilmerInputError, match=r"got uint8 \(8, 8\)"):
        blazeface.detect(np.zeros((8, 8), np.uint8))
    with pytest.raises(MilmerInputError, match=r"Invalid value for 'frames\[1\]': expected an \(H, W, 3\) uint8"):
        blazeface.detect_batch([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 4), np.uint8)])
    with pytest.raises(MilmerInputError, match=r"'frames': expected a sequence of \(H, W, 3\) uint8 RGB arrays, got 3"):
        blazeface.detect_batch(3)  # type: ignore[arg-type]


def test_box_clip() -> None:
    assert Box(-5, -2, 50, 300, 0.8).clip(40, 100) == Box(0, 0, 40, 100, 0.8)
    kp = ((-3.0, 4.0),) * 6
    assert Box(-5, -2, 50, 300, 0.8, kp).clip(40, 100) == Box(0, 0, 40, 100, 0.8, kp)
    assert Box(50, 0, 60, 10).clip(40, 100) is None


def test_detector_modules_import_lazily() -> None:
    # ONNX Runtime and OpenCV load when a detector is made, never on import; onnx/tflite never.
    code = (
        "import sys\n"
        "import milmer.runtime.face.detect, milmer.runtime.face.blazeface\n"
        "heavy = ('cv2', 'onnxruntime', 'onnx', 'tflite', 'mediapipe')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_detector_built_in_the_background_is_make_detectors(astronaut: np.ndarray) -> None:
    """DetectorBuild returns the detector make_detector makes (same boxes, exactly), raises its
    errors unchanged from result(), and closes it."""
    from milmer.runtime.face.detect import DetectorBuild

    build = DetectorBuild("blazeface-short-range", 0.5)
    det = build.result()
    assert isinstance(det, BlazeFaceDetector) and build.result() is det and build.name == "blazeface-short-range"
    with make_detector("blazeface-short-range", 0.5) as direct:
        assert det.detect_batch([astronaut]) == direct.detect_batch([astronaut])
    build.close()
    build.close()  # idempotent
    assert det._runner is None
    with pytest.raises(RuntimeError, match=r"DetectorBuild used after close\(\)"):
        build.result()
    failed = DetectorBuild("mtcnn", 0.5)
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'detector': expected one of 'blazeface-short-range', 'opencv-haar', got 'mtcnn'\.$"):
        failed.result()
    failed.close()
