"""Optional packages: which extra installs each, and the user-facing error when one is missing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .check import MilmerInputError

__all__ = ["OPTIONAL_MODULES", "missing_package_error", "missing_dependency_error", "missing_dependency_as_input_error"]


#: Optional modules -> how to install them (the package extra, or the wheel for a platform).
OPTIONAL_MODULES: dict[str, str] = {
    "torch": "`pip install \"milmer[training]\"` (PyTorch, for `milmer train` and `milmer demo`; `milmer export` needs `milmer[export]`)",
    "transformers": "`pip install \"milmer[training]\"` (the Swin backbone, for training and export)",
    "onnxruntime": (
        "ONNX Runtime runs the model: `pip install \"milmer[cpu]\"` (or `milmer[gpu]`; on a "
        "Jetson NVIDIA's onnxruntime-gpu wheel for JetPack)"
    ),
    "openvino": "`pip install \"milmer[openvino]\"`",
    "tensorrt": "`pip install \"milmer[trt]\"` (on a Jetson, TensorRT comes with JetPack)",
    "cuda": "`pip install \"milmer[trt]\"` (cuda-python)",
    "picard": "`pip install python-picard` (the ICA solver)",
    "sklearn": "`pip install scikit-learn` (FastICA)",
    "matplotlib": "`pip install \"milmer[plots]\"`",
    "edfio": "`pip install edfio` (EDF export)",
    "tritonclient": "`pip install \"tritonclient[http]\"`",
    "pytriton": "`pip install \"milmer[serve]\"`",
    "pyxdf": "`pip install \"milmer[xdf]\"` (or `pip install pyxdf`)",
    "mffpy": "`pip install mffpy` (EGI .mff recordings)",
    "pymatreader": "`pip install pymatreader` (MATLAB 7.3 .set files)",
}


def missing_package_error(module: str, *, needed_for: str = "what you asked", hint: str | None = None) -> MilmerInputError:
    """``Missing dependency: the Python package 'pyxdf' is not installed; it is needed for reading
    .xdf. Install it: `pip install "milmer[xdf]"` (or `pip install pyxdf`).`` (``hint``: another way
    forward, appended). ``module`` must be one of :data:`OPTIONAL_MODULES`."""
    tail = f" Or {hint.rstrip('.')}." if hint else ""
    return MilmerInputError(
        f"Missing dependency: the Python package {module!r} is not installed; it is needed for "
        f"{needed_for}. Install it: {OPTIONAL_MODULES[module]}.{tail}"
    )


def missing_dependency_error(err: ImportError) -> MilmerInputError | None:
    """A :class:`MilmerInputError` for an optional package that is not installed (the user's
    setup, not a bug): it names the package and how to install it. None for a module that is
    not one of :data:`OPTIONAL_MODULES` (a missing core module is a broken install: a bug)."""
    name = getattr(err, "name", None) or ""
    top = name.split(".", 1)[0]
    if top not in OPTIONAL_MODULES:
        return None
    return MilmerInputError(
        f"Missing dependency: the Python package {top!r} is not installed ({err}); it is needed "
        f"for what you asked. Install it: {OPTIONAL_MODULES[top]}."
    )


@contextmanager
def missing_dependency_as_input_error() -> Iterator[None]:
    """Turn an ImportError of an optional package (:func:`missing_dependency_error`) into a
    :class:`MilmerInputError`; any other ImportError passes unchanged."""
    try:
        yield
    except ImportError as err:
        user_error = missing_dependency_error(err)
        if user_error is None:
            raise
        raise user_error from err
