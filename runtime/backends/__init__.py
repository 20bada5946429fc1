"""Inference backends behind one interface (see :mod:`.base`), chosen by :func:`make_runner`.

Importing this package is cheap: ONNX Runtime, OpenVINO, TensorRT and CUDA are imported only when a runner
is created or activated.
"""

from .base import PRECISIONS, Device, Precision, Runner, TensorMeta
from .openvino import OpenVinoRunner
from .ort import OrtRunner
from .registry import (
    AUTO_ORDER,
    BACKENDS,
    DEVICES,
    Backend,
    Choice,
    auto_candidates,
    choose,
    make_runner,
    resolve_backend,
)
from .trt import TrtRunner

__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "Backend",
    "Choice",
    "DEVICES",
    "Device",
    "PRECISIONS",
    "Precision",
    "OpenVinoRunner",
    "OrtRunner",
    "Runner",
    "TensorMeta",
    "TrtRunner",
    "auto_candidates",
    "choose",
    "make_runner",
    "resolve_backend",
]
