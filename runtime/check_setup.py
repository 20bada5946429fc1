"""Checks that a chosen value can run on this setup (a package, a CPU feature, a GPU, the files a
model directory holds), in the message shape of :mod:`milmer.runtime.check`; re-exported there.

``... for '--precision': 'bf16' needs a CPU with native bfloat16 arithmetic, got one without
avx512_bf16 or amx_bf16; use --precision fp32.`` The value was well formed; what it needs
is absent here, and the hint says what to change (the value, or the setup).
"""

from __future__ import annotations

from typing import Any

from .errors import MilmerInputError, invalid_value as _error

__all__ = ["check_requires", "requires_error"]


def requires_error(name: str, value: Any, needs: str, got: str, *, hint: str | None = None) -> MilmerInputError:
    """The error for ``value`` of ``name`` needing ``needs``, which this setup lacks (``got``: what
    is there instead): ``... for '--device': 'cuda' needs onnxruntime's
    CUDAExecutionProvider, got only 'CPUExecutionProvider'; <hint>.`` For callers that report a
    reason instead of raising (a backend's ``unavailable_reason``)."""
    return _error(name, f"{value!r} needs {needs}, got {got}", hint)


def check_requires(name: str, value: Any, needs: str, present: bool, got: str, *, hint: str | None = None) -> Any:
    """Return ``value`` if what it ``needs`` is ``present`` here, else raise
    :func:`requires_error` (``got``: what this setup has instead).

    >>> check_requires("--trt", True, "a CUDA GPU", True, "none")
    True
    """
    if not present:
        raise requires_error(name, value, needs, got, hint=hint)
    return value
