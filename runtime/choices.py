"""The CLI's choices for --backend, --device and --precision, importable without numpy.

``milmer --help`` must load no numpy, and importing :mod:`.backends` loads it, so the help text
is built from these names. :mod:`.backends.registry` builds the same lists from its runner
table, and ``tests/runtime/backends/test_registry.py`` checks that the two agree: adding a
backend adds its entry here and in the registry's table.
"""

from __future__ import annotations

__all__ = ["BACKEND_NAMES", "DEVICES", "PRECISIONS", "PRECISION_CHOICES", "INFER_PRECISION_HELP", "DETECTORS", "DEFAULT_BAG_PROFILE"]

#: backend -> what it is, in the registry's table order.
BACKEND_NAMES: dict[str, str] = {"ort": "ONNX Runtime", "trt": "TensorRT", "openvino": "OpenVINO"}
#: Every device some backend runs on, plus 'auto'.
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "tensorrt")
#: Graph precisions a model folder may hold.
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
#: ``milmer-infer --precision``: the graph precisions, plus bf16 (fp32 graphs computed in bfloat16
#: on OpenVINO) and auto (bf16 where the CPU has it and it agrees with fp32; see runtime/precision.py).
PRECISION_CHOICES: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16", "int8")
INFER_PRECISION_HELP = (
    "auto (default: fp32 graphs, computed in bf16 on a CPU with avx512_bf16/amx_bf16 when bf16 agrees "
    "with fp32 on this model, with a one-line note), fp32, bf16 (OpenVINO on such a CPU), fp16, int8."
)
#: Face detectors a spec may name (``--detector``). ``blazeface-short-range`` is MediaPipe 0.10.21's
#: short-range BlazeFace, run as the ONNX graph shipped in ``runtime/face/models``; ``opencv-haar`` is
#: OpenCV's bundled frontal-face cascade.
DETECTORS: tuple[str, ...] = ("blazeface-short-range", "opencv-haar")
#: ``--trt-profile`` default, (min, opt, max) bags per call: 1 to 32, tuned for 8 (the runtime's GPU
#: default batch, 16 bags, and a recording's last, shorter batch all fall inside it).
DEFAULT_BAG_PROFILE: tuple[int, int, int] = (1, 8, 32)
