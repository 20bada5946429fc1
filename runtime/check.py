"""Input validation in the style of MNE's ``mne/utils/check.py``.

Errors raised for users name the parameter, the allowed values and what was received.
:class:`MilmerInputError` marks a problem with the user's input (bad file, bad option); the CLI
turns it into exit code 2 without a traceback. Anything else is an internal error (exit 1).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
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
