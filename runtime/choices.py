"""The choices for backend, device and precision, their types and their one check, importable
without numpy.

``milmer --help`` must load no numpy, and importing :mod:`.backends` loads it, so the help text
is built from these names. :mod:`.backends.registry` builds the same lists from its runner
table, and ``tests/runtime/backends/test_registry.py`` checks that the two agree: adding a
backend adds its entry here and in the registry's table.

Checked once, at the boundary: a command's request object (``milmer.app``) and the runtime's
public entry points (:func:`~.model_dir.load_model_dir`, :class:`~.pipeline.Pipeline`,
:func:`~.backends.registry.make_runner`) call :func:`check_backend`, :func:`check_device`,
:func:`check_precision` or :func:`check_graph_precision` on what they are given; the layers below
take the typed values (:data:`Backend`, :data:`Device`, :data:`InferPrecision`,
:data:`GraphPrecision`) and trust them.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from .check import check_option

__all__ = [
    "BACKEND_NAMES", "DEVICES", "PRECISIONS", "PRECISION_CHOICES", "INFER_PRECISION_HELP", "DETECTORS",
    "DEFAULT_BAG_PROFILE", "Backend", "Device", "GraphPrecision", "InferPrecision", "check_backend",
    "check_device", "check_graph_precision", "check_precision",
]  # fmt: skip

#: ``--backend``: 'auto' or one backend of the registry's table.
Backend = Literal["auto", "ort", "trt", "openvino"]
#: ``--device``: 'auto' or a device some backend runs on.
Device = Literal["auto", "cpu", "cuda", "tensorrt"]
#: The precision of a model folder's graph files.
GraphPrecision = Literal["fp32", "fp16", "int8"]
#: ``--precision``: a graph precision, 'bf16' (the fp32 graphs computed in bfloat16) or 'auto'.
InferPrecision = Literal["auto", "fp32", "bf16", "fp16", "int8"]

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


def check_backend(value: Any, name: str = "backend") -> Backend:
    """``value`` if it is 'auto' or a backend of :data:`BACKEND_NAMES`, else MilmerInputError naming ``name``."""
    return cast(Backend, check_option(name, value, ("auto", *BACKEND_NAMES)))


def check_device(value: Any, name: str = "device") -> Device:
    """``value`` if it is one of :data:`DEVICES`, else MilmerInputError naming ``name``."""
    return cast(Device, check_option(name, value, DEVICES))


def check_precision(value: Any, name: str = "precision") -> InferPrecision:
    """``value`` if it is one of :data:`PRECISION_CHOICES` (what ``--precision`` takes)."""
    return cast(InferPrecision, check_option(name, value, PRECISION_CHOICES))


def check_graph_precision(value: Any, name: str = "precision") -> GraphPrecision:
    """``value`` if it is one of :data:`PRECISIONS` (the graph files a model folder may hold)."""
    return cast(GraphPrecision, check_option(name, value, PRECISIONS))
