"""Input validation in the style of MNE's ``mne/utils/check.py``.

Errors raised for users name the parameter, the allowed values and what was received.
:class:`MilmerInputError` marks a problem with the user's input (bad file, bad option); the CLI
turns it into exit code 2 without a traceback. Anything else is an internal error (exit 1).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "MilmerInputError",
    "check_option",
    "check_int",
    "check_positive",
    "check_type",
    "check_finite",
    "check_number",
    "check_path_exists",
    "check_dir_or_absent",
    "check_suffix",
    "check_keys",
    "MilmerExternalError",
    "check_input_pair",
    "OPTIONAL_MODULES",
    "missing_dependency_error",
    "missing_dependency_as_input_error",
]


class MilmerInputError(ValueError):
    """The user's input (a file, an option, a recording) cannot be used as given."""


class MilmerExternalError(RuntimeError):
    """A fault outside milmer stopped the work (a server went away or did not answer in time, the
    disk is full): the message names the cause; the command-line tools exit 1 without calling it a bug."""


def check_option(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise naming all three.

    >>> check_option("backend", "ort", ("auto", "ort", "trt"))
    'ort'
    """
    allowed = tuple(allowed)
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise MilmerInputError(
            f"Invalid value for {name!r}: expected one of {options}, got {value!r}."
        )
    return value


def _int_bounds(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"an integer in {low}-{high}"
    if low is not None:
        return f"an integer >= {low}"
    return "an integer" if high is None else f"an integer <= {high}"


def check_int(
    name: str, value: Any, *, low: int | None = None, high: int | None = None, allow_none: bool = False
) -> Any:
    """Return ``value`` as an ``int`` if it is an integer (numpy's too, never a bool) within
    ``[low, high]`` (either bound may be None), else raise naming the bounds and the value.
    ``allow_none`` lets None through (returned as is).

    >>> check_int("batch", 4, low=1)
    4
    """
    if allow_none and value is None:
        return None
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    ok = ok and (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        none = " or None" if allow_none else ""
        raise MilmerInputError(f"Invalid value for {name!r}: expected {_int_bounds(low, high)}{none}, got {value!r}.")
    return int(value)


def check_finite(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite real number (not a bool), else raise."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok:
        raise MilmerInputError(f"Invalid value for {name!r}: expected a finite number, got {value!r}.")
    return float(value)


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
) -> Any:
    """Return ``value`` if it is a real number (not a bool, not NaN) within the bounds, else raise
    ``Invalid value for 'name': expected a number in (0, 1], got 2.`` (``low_open`` /
    ``high_open`` exclude the bound; either bound may be None: ``expected a number >= 0``).
    ``allow_none`` lets None through.
    """
    if allow_none and value is None:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and value == value
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        if low is not None and high is not None:
            bound = f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            bound = f" {'>' if low_open else '>='} {low:g}"
        elif high is not None:
            bound = f" {'<' if high_open else '<='} {high:g}"
        else:
            bound = ""
        none = " or None" if allow_none else ""
        raise MilmerInputError(f"Invalid value for {name!r}: expected a number{bound}{none}, got {value!r}.")
    return value


def _article(word: str) -> str:
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def check_type(name: str, value: Any, types: type | tuple[type, ...], what: str | None = None) -> Any:
    """Return ``value`` if it is an instance of ``types`` (a bool is no ``int`` here), else raise
    ``Invalid value for 'name': expected <what>, got <type name>.``; ``what`` defaults to the
    type names (``a FaceSpec``, ``a str or a Path``).
    """
    kinds = types if isinstance(types, tuple) else (types,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok:
        wanted = what or " or ".join(_article(t.__name__) for t in kinds)
        raise MilmerInputError(f"Invalid value for {name!r}: expected {wanted}, got {type(value).__name__}.")
    return value


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Raise unless ``value`` is a finite number > 0 (or >= 0 with ``allow_zero``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = value >= 0 if allow_zero else value > 0
        ok = ok and value == value and value not in (float("inf"),)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise MilmerInputError(f"Invalid value for {name!r}: expected a number {bound}, got {value!r}.")
    return value


def check_path_exists(
    name: str, path: str | os.PathLike[str], kind: Literal["file", "dir"] = "file"
) -> Path:
    """Return ``path`` as a :class:`Path`; raise if it does not exist or is not a ``kind``
    ('file' or 'dir')."""
    p = Path(path)
    noun = "file" if kind == "file" else "directory"
    if not p.exists():
        raise MilmerInputError(f"Invalid value for {name!r}: {noun} not found: {str(p)!r}.")
    if kind == "file" and not p.is_file():
        raise MilmerInputError(f"Invalid value for {name!r}: expected a file, got directory {str(p)!r}.")
    if kind == "dir" and not p.is_dir():
        raise MilmerInputError(f"Invalid value for {name!r}: expected a directory, got file {str(p)!r}.")
    return p


def check_dir_or_absent(name: str, path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as a :class:`Path` if it is a folder or does not exist yet (an output
    folder), else raise ``... exists and is not a folder``."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise MilmerInputError(f"Invalid value for {name!r}: {str(p)!r} exists and is not a folder.")
    return p


def check_suffix(name: str, path: Path, allowed: Iterable[str]) -> str:
    """Return the lower-cased suffix of ``path`` if it is one of ``allowed``."""
    allowed = tuple(allowed)
    suffix = path.suffix.lower()
    if suffix not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise MilmerInputError(
            f"Invalid value for {name!r}: unsupported file type {suffix or '(none)'!r} "
            f"for {path.name!r}; expected one of {options}."
        )
    return suffix


def check_keys(
    what: str,
    data: Mapping[str, Any],
    allowed: Sequence[str],
    *,
    required: Sequence[str] | None = None,
    prefix: str = "",
) -> None:
    """Raise if ``data`` has keys outside ``allowed`` or lacks any of ``required`` (default: all).

    ``what`` names the document ("model spec"); ``prefix`` is prepended to every key in the
    message (``"face."`` for a nested section).
    """
    required = allowed if required is None else required
    partial = set(required) != set(allowed)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        some = "some of " if partial else ""
        raise MilmerInputError(
            f"Invalid {what}: unknown key(s) {', '.join(prefix + k for k in unknown)}; "
            f"expected {some}{', '.join(prefix + k for k in allowed)}."
        )
    missing = sorted(set(required) - set(data))
    if missing:
        qualifier = "required " if partial else ""
        raise MilmerInputError(f"Invalid {what}: missing {qualifier}key(s) {', '.join(prefix + k for k in missing)}.")


def check_input_pair(
    video: str | os.PathLike[str],
    eeg: str | os.PathLike[str],
    video_suffixes: Sequence[str],
    eeg_suffixes: Sequence[str],
    *,
    usage: str = "milmer-infer VIDEO EEG",
    eeg_kind: Literal["file", "dir"] = "file",
) -> tuple[Path, Path]:
    """Both inputs exist and have their kind's suffix (the EEG a ``eeg_kind``: an EGI ``.mff``
    recording is a folder); arguments given the wrong way round (an EEG file as the video and a
    video as the EEG) are named as swapped, with the command in the right order. Cheap: run
    before any model or recording is loaded."""
    v, e = Path(video), Path(eeg)
    v_suffix, e_suffix = v.suffix.lower(), e.suffix.lower()
    if v_suffix in eeg_suffixes and e_suffix in video_suffixes:
        raise MilmerInputError(
            f"Invalid value for 'video': {v.name!r} is an EEG file and {e.name!r} (given as the EEG) "
            f"is a video: the arguments look swapped. The order is `{usage}`: rerun with "
            f"{str(e)!r} first and {str(v)!r} second."
        )
    check_path_exists("video", v)
    check_path_exists("eeg", e, eeg_kind)
    if v_suffix in eeg_suffixes:
        raise MilmerInputError(
            f"Invalid value for 'video': {v.name!r} is an EEG file, not a video; the order is "
            f"`{usage}` (video types: {', '.join(video_suffixes)})."
        )
    if e_suffix in video_suffixes:
        raise MilmerInputError(
            f"Invalid value for 'eeg': {e.name!r} is a video, not an EEG recording; the order is "
            f"`{usage}` (EEG types: {', '.join(eeg_suffixes)})."
        )
    check_suffix("video", v, video_suffixes)
    check_suffix("eeg", e, eeg_suffixes)
    return v, e


#: Optional modules -> how to install them (the package extra, or the wheel for a platform).
OPTIONAL_MODULES: dict[str, str] = {
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
}


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
