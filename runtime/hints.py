"""The one place that spells the command which makes a missing model file."""

from __future__ import annotations

__all__ = ["export_hint"]

_PRECISION_FLAGS = {"fp32": "", "fp16": " --fp16", "int8": " --int8 static"}


def export_hint(precision: str | None = None, *, trt: bool = False) -> str:
    """``milmer export CKPT --out DIR [--trt] [--fp16|--int8 static]`` for ``precision``."""
    flags = (" --trt" if trt else "") + _PRECISION_FLAGS.get(precision or "fp32", "")
    return f"milmer export CKPT --out DIR{flags}"
