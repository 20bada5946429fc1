"""Backend table and :func:`make_runner`.

Adding a backend adds a file with a :class:`~.base.Runner` subclass and one entry in
:data:`BACKENDS` (and, if ``'auto'`` should consider it, in :data:`AUTO_ORDER`).
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Mapping
from typing import Any, Literal

from .._check import MilmerInputError, check_option
from .base import PRECISIONS, Precision, Runner
from .openvino import OpenVinoRunner
from .ort import OrtRunner
from .trt import TrtRunner

__all__ = ["Backend", "BACKENDS", "AUTO_ORDER", "DEVICES", "resolve_backend", "make_runner"]

log = logging.getLogger(__name__)

Backend = Literal["auto", "ort", "trt", "openvino"]

#: backend name -> runner class.
BACKENDS: dict[str, type[Runner]] = {"ort": OrtRunner, "trt": TrtRunner, "openvino": OpenVinoRunner}
#: The order in which ``backend='auto'`` tries backends: the first that can run wins, except that
#: with ``device='auto'`` a backend whose default device is a GPU goes before the CPU-only ones
#: (ONNX Runtime's CUDA provider before OpenVINO; OpenVINO before ONNX Runtime on an x86 CPU).
AUTO_ORDER: tuple[str, ...] = ("trt", "openvino", "ort")
#: Every device some backend runs on, plus 'auto'.
DEVICES: tuple[str, ...] = ("auto", *dict.fromkeys(d for cls in BACKENDS.values() for d in cls.DEVICES))


def _check_options(options: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    options = dict(options or {})
    unknown = [k for k in options if k not in BACKENDS]
    if unknown:
        allowed = ", ".join(repr(b) for b in BACKENDS)
        raise MilmerInputError(
            f"Invalid value for 'options': keys are backend names ({allowed}), got {unknown[0]!r}."
        )
    return {k: dict(v) for k, v in options.items()}


def resolve_backend(
    model_path: str | os.PathLike[str],
    *,
    device: str = "auto",
    precision: Precision = "fp32",
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The backend ``'auto'`` picks: the first of :data:`AUTO_ORDER` that runs on ``device`` and
    can run ``model_path`` here (TensorRT needs TensorRT, a CUDA device and a fitting engine;
    OpenVINO an x86 CPU and the ``openvino`` package). With ``device='auto'`` GPU backends go first."""
    check_option("device", device, DEVICES)
    options = _check_options(options)
    reasons = []
    candidates = [(name, BACKENDS[name].default_device() if device == "auto" else device) for name in AUTO_ORDER]
    candidates.sort(key=lambda c: c[1] == "cpu")  # stable: GPU devices first, then AUTO_ORDER
    for name, wanted in candidates:
        cls = BACKENDS[name]
        if wanted not in cls.DEVICES:
            reasons.append(f"{name}: does not run on {device!r}")
            continue
        reason = cls.unavailable_reason(model_path, device=wanted, precision=precision, **options.get(name, {}))
        if reason is None:
            return name
        log.info("backend 'auto' skips %r: %s", name, reason)
        reasons.append(f"{name}: {reason}")
    raise MilmerInputError(
        f"No backend can run {os.fspath(model_path)!r} on device {device!r}: " + " | ".join(reasons)
    )


def make_runner(
    backend: Backend,
    model_path: str | os.PathLike[str],
    *,
    device: str = "auto",
    precision: Precision = "fp32",
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Runner:
    """A (not yet active) runner for ``model_path``; use it as ``with make_runner(...) as r:``.

    backend:   'ort', 'trt', 'openvino', or 'auto' (TensorRT when it can run here, else ONNX
               Runtime's CUDA provider, else OpenVINO on an x86 CPU, else ONNX Runtime)
    device:    'auto' (the backend's best: CUDA where available), 'cpu', 'cuda' or 'tensorrt'
               (ONNX Runtime's TensorRT provider)
    precision: the graph's precision ('fp32', 'fp16', 'int8')
    options:   per-backend keyword arguments, e.g. ``{'ort': {'intra_op_num_threads': 2},
               'trt': {'engine_dir': 'engines'}, 'openvino': {'inference_precision': 'bf16'}}``;
               only the chosen backend's are used
    """
    check_option("backend", backend, ("auto", *BACKENDS))
    check_option("device", device, DEVICES)
    check_option("precision", precision, PRECISIONS)
    options = _check_options(options)
    if backend == "auto":
        backend = resolve_backend(model_path, device=device, precision=precision, options=options)  # type: ignore[assignment]
    cls = BACKENDS[backend]
    if device == "auto":
        device = cls.default_device()
    if device not in cls.DEVICES:
        allowed = ", ".join(repr(d) for d in ("auto", *cls.DEVICES))
        raise MilmerInputError(
            f"Invalid value for 'device': backend {backend!r} runs on {allowed}, got {device!r}."
        )
    kwargs = options.get(backend, {})
    try:
        inspect.signature(cls).bind(model_path, device=device, precision=precision, **kwargs)
    except TypeError as err:
        raise MilmerInputError(f"Invalid value for 'options[{backend!r}]': {err}.") from None
    return cls(model_path, device=device, precision=precision, **kwargs)
