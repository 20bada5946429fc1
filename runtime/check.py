"""Input validation in the style of MNE's ``mne/utils/check.py``.

Errors raised for users name the parameter, the allowed values and what was received, in one
shape: ``Invalid value for 'name': expected <what is allowed>, got <what was received>[; <the way
forward>].`` The helpers below write it (paths: :mod:`.check_paths`, re-exported here); a caller
passes ``hint=`` where it knows the way forward. :class:`MilmerInputError` (:mod:`.errors`) marks
a problem with the user's input (bad file, bad option); the CLI turns it into exit code 2 without
a traceback. Anything else is an internal error (exit 1).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from typing import Any, Literal

from .check_paths import (
    check_dir_or_absent,
    check_input_pair,
    check_path_exists,
    check_suffix,
    check_writable_dir,
    check_writable_file,
    read_error,
)
from .check_members import check_subset, check_unique
from .check_setup import check_requires, requires_error
from .errors import MilmerExternalError, MilmerInputError, invalid_value as _error

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
    "check_bool",
    "check_compare",
    "check_equal",
    "check_exclusive",
    "check_same_length",
    "check_nonempty",
    "check_sequence",
    "check_array",
    "check_writable_dir",
    "check_writable_file",
    "read_error",
    "parse_ints",
    "check_subset",
    "check_unique",
    "check_whole",
    "check_requires",
    "requires_error",
]

def check_option(
    name: str, value: Any, allowed: Iterable[Any], *, among: str | None = None, hint: str | None = None
) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise
    ``Invalid value for 'backend': expected one of 'auto', 'ort', got 'tensorrtt'.``; ``among``
    says where the allowed values come from when they are found, not fixed:
    ``... expected one of the precisions in 'model' ('fp32'), got 'fp16'.`` (``none`` when empty).

    >>> check_option("backend", "ort", ("auto", "ort", "trt"))
    'ort'
    """
    allowed = tuple(allowed)
    if value not in allowed:
        listed = ", ".join(repr(a) for a in allowed)
        expected = f"one of {among} ({listed or 'none'})" if among else f"one of {listed}"
        raise _error(name, f"expected {expected}, got {value!r}", hint)
    return value


def _int_bounds(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"an integer in [{low}, {high}]"
    if low is not None:
        return f"an integer >= {low}"
    return "an integer" if high is None else f"an integer <= {high}"


def check_int(
    name: str,
    value: Any,
    *,
    low: int | None = None,
    high: int | None = None,
    allow_none: bool = False,
    hint: str | None = None,
) -> Any:
    """Return ``value`` as an ``int`` if it is an integer (numpy's too, never a bool) within
    ``[low, high]`` (either bound may be None), else raise
    ``Invalid value for 'batch': expected an integer >= 1, got 0.`` (``an integer in [1, 65535]``,
    as a command line's own range check writes it).
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
        raise _error(name, f"expected {_int_bounds(low, high)}{none}, got {value!r}", hint)
    return int(value)


def check_bool(name: str, value: Any, *, hint: str | None = None) -> bool:
    """Return ``value`` if it is a bool, else raise ``... expected True or False, got 'yes'.``"""
    if not isinstance(value, bool):
        raise _error(name, f"expected True or False, got {value!r}", hint)
    return value


def check_finite(name: str, value: Any, *, hint: str | None = None) -> float:
    """Return ``value`` as a float if it is a finite real number (not a bool), else raise
    ``... expected a finite number, got nan.``"""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok:
        raise _error(name, f"expected a finite number, got {value!r}", hint)
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
    finite: bool = False,
    unit: str = "a number",
    hint: str | None = None,
) -> Any:
    """Return ``value`` if it is a real number (not a bool, not NaN) within the bounds, else raise
    ``Invalid value for 'name': expected a number in (0, 1], got 2.`` (``low_open`` /
    ``high_open`` exclude the bound; either bound may be None: ``expected a number >= 0``).
    ``finite`` also refuses +-inf (``a finite number >= 0``); ``unit`` replaces "a number"
    (``seconds > 0``, ``a rate in Hz > 0``); ``allow_none`` lets None through.
    """
    if allow_none and value is None:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and value == value
    ok = ok and not (finite and not math.isfinite(value))
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
        what = f"a finite {unit[2:]}" if finite and unit.startswith("a ") else unit
        none = " or None" if allow_none else ""
        raise _error(name, f"expected {what}{bound}{none}, got {value!r}", hint)
    return value


def check_positive(name: str, value: float, *, allow_zero: bool = False, hint: str | None = None) -> float:
    """Raise unless ``value`` is a finite number > 0 (or >= 0 with ``allow_zero``):
    ``... expected a number > 0, got 0.``"""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = value >= 0 if allow_zero else value > 0
        ok = ok and value == value and value not in (float("inf"),)
    if not ok:
        raise _error(name, f"expected a number {'>= 0' if allow_zero else '> 0'}, got {value!r}", hint)
    return value


def check_whole(
    name: str | Sequence[str], value: Any, rate: float, what: str, *, tol: float = 1e-6, hint: str | None = None
) -> Any:
    """Return ``value`` (seconds, > 0) if it spans a whole number of ``what`` at ``rate`` (to
    ``tol`` of one), else raise ``Invalid value for 'eeg.window_s': expected seconds > 0 that are a
    whole number of samples at 128 Hz (a multiple of 1/128 s), got 0.3.``"""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok or abs(value * rate - round(value * rate)) >= tol:
        step = "whole seconds" if rate == 1 else f"a multiple of 1/{rate:g} s"
        raise _error(name, f"expected seconds > 0 that are a whole number of {what} at {rate:g} Hz ({step}), got {value!r}", hint)
    return value


_WORDS = {
    "<": "less than", "<=": "at most", ">": "more than", ">=": "at least", "!=": "other than",
    "divides": "a divisor of",
}  # fmt: skip


def check_compare(
    name: str,
    value: Any,
    op: Literal["<", "<=", ">", ">=", "!=", "divides"],
    other_name: str,
    other: Any,
    *,
    hint: str | None = None,
) -> Any:
    """Return ``value`` if ``value op other`` holds, else raise naming the other field and its value:
    ``Invalid value for 'warmup_epochs': expected less than epochs = 100, got 100.``
    (``divides``: ``... expected a divisor of d_model = 60, got 7.``)"""
    holds = {
        "<": lambda: value < other, "<=": lambda: value <= other, ">": lambda: value > other,
        ">=": lambda: value >= other, "!=": lambda: value != other, "divides": lambda: other % value == 0,
    }[op]()  # fmt: skip
    if not holds:
        raise _error(name, f"expected {_WORDS[op]} {other_name} = {other!r}, got {value!r}", hint)
    return value


def check_equal(name: str, value: Any, expected: Any, *, why: str | None = None, hint: str | None = None) -> Any:
    """Return ``value`` if it equals ``expected``, else raise
    ``Invalid value for 'class_names': expected ('low', 'high') (label scheme 'valence2'), got ('a',).``;
    ``why`` says where the expected value comes from."""
    if value != expected:
        raise _error(name, f"expected {expected!r}{f' ({why})' if why else ''}, got {value!r}", hint)
    return value


def check_exclusive(name: str, value: Any, other_name: str, other: Any, *, hint: str | None = None) -> None:
    """Raise if both ``value`` and ``other`` are given (not None):
    ``Invalid value for '--model': '--model' and '--server' exclude each other, got 'm' and 'http://h:8000'.``"""
    if value is not None and other is not None:
        raise _error(name, f"{name!r} and {other_name!r} exclude each other, got {value!r} and {other!r}", hint)


def check_same_length(names: Sequence[str], values: Sequence[Any], *, hint: str | None = None) -> int:
    """Return the common length of ``values`` (sized objects), else raise
    ``Invalid values for 'y_true'/'y_pred': expected the same length, got 3 and 4.``"""
    lengths = [len(v) for v in values]
    if len(set(lengths)) > 1:
        got = ", ".join(map(str, lengths[:-1])) + f" and {lengths[-1]}"
        raise _error(tuple(names), f"expected the same length, got {got}", hint)
    return lengths[0] if lengths else 0


def _article(word: str) -> str:
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def check_type(
    name: str,
    value: Any,
    types: type | tuple[type, ...],
    what: str | None = None,
    *,
    nonempty: bool = False,
    hint: str | None = None,
) -> Any:
    """Return ``value`` if it is an instance of ``types`` (a bool is no ``int`` here), else raise
    ``Invalid value for 'name': expected <what>, got <type name>.``; ``what`` defaults to the
    type names (``a FaceSpec``, ``a str or a Path``). ``nonempty`` also refuses an empty value
    (``... expected a non-empty path string, got ''.``).
    """
    kinds = types if isinstance(types, tuple) else (types,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    wanted = what or " or ".join(_article(t.__name__) for t in kinds)
    if not ok:
        raise _error(name, f"expected {wanted}, got {type(value).__name__}", hint)
    if nonempty and len(value) == 0:
        raise _error(name, f"expected {wanted}, got {value!r}", hint)
    return value


def parse_ints(name: str, text: str, *, length: int | None = None, what: str | None = None) -> tuple[int, ...]:
    """The integers of a comma-separated option (``"1,8,16"``), else raise
    ``Invalid value for '--batch-sizes': expected comma-separated integers, got '1,a'.``;
    ``length`` also requires that many (``what``: ``three integers MIN,OPT,MAX``)."""
    try:
        values = tuple(int(p) for p in text.split(","))
    except ValueError:
        values = None
    if values is None or (length is not None and len(values) != length):
        raise _error(name, f"expected {what or 'comma-separated integers'}, got {text!r}")
    return values


def check_nonempty(
    name: str, value: Sized, what: str, *, at_least: int = 1, why: str | None = None, hint: str | None = None
) -> Any:
    """Return ``value`` if it holds at least ``at_least`` items, else raise
    ``Invalid value for 'records': expected at least one trial, got none.``
    (``at_least=2``, ``what="subjects"``, ``why="protocol 'loso'"``: ``... expected at least 2
    subjects (protocol 'loso'), got 1: [3].``)"""
    if len(value) < at_least:
        wanted = f"one {what}" if at_least == 1 else f"{at_least} {what}"
        got = "none" if len(value) == 0 else f"{len(value)}: {value!r}"
        raise _error(name, f"expected at least {wanted}{f' ({why})' if why else ''}, got {got}", hint)
    return value


def check_sequence(
    name: str,
    value: Any,
    *,
    item: Callable[[str, Any], Any] | None = None,
    length: int | None = None,
    nonempty: bool = False,
    unique: bool = False,
    what: str | None = None,
    hint: str | None = None,
) -> tuple[Any, ...]:
    """Return ``value`` as a tuple if it is a list or tuple (never a str) of ``length`` items
    (``nonempty``: at least one; ``unique``: no repeats), else raise
    ``Invalid value for 'eeg.channels': expected a non-empty list of unique values, got [].``;
    ``what`` replaces the description. ``item(f"{name}[i]", v)`` checks each item (its own
    message names the position: ``'subjects[1]': expected an integer >= 1, got 0``) and its
    result is kept."""
    ok = isinstance(value, Sequence) and not isinstance(value, (str, bytes))
    ok = ok and (length is None or len(value) == length) and not (nonempty and len(value) == 0)
    ok = ok and not (unique and len(set(value)) != len(value))
    if not ok:
        if what is None:
            size = f"{length} " if length is not None else ""
            what = f"a {'non-empty ' if nonempty else ''}list of {size}{'unique ' if unique else ''}values"
        raise _error(name, f"expected {what}, got {value!r}", hint)
    if item is None:
        return tuple(value)
    return tuple(item(f"{name}[{i}]", v) for i, v in enumerate(value))


def _shape_text(shape: Sequence[Any]) -> str:
    dims = ["..." if d is Ellipsis else ("*" if d is None else str(d)) for d in shape]
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


def _array_article(words: str) -> str:
    # "an (H, W, 3) array", "a (B, 8, ...) array": the article follows the first symbol as read aloud.
    first = words.lstrip("(").split(",")[0].split(")")[0]
    spoken_vowel = first in tuple("AEFHILMNORSX") or first.startswith(("8", "11", "18"))
    return f"an {words}" if spoken_vowel or (not words.startswith("(") and words[:1] in "aeiou") else f"a {words}"


def check_array(
    name: str,
    value: Any,
    *,
    shape: Sequence[int | str | None] | None = None,
    dtype: Any = None,
    finite: bool = False,
    nonempty: bool = False,
    nondecreasing: bool = False,
    low: float | None = None,
    high: float | None = None,
    what: str | None = None,
    hint: str | None = None,
) -> Any:
    """Return ``value`` if it is a numpy array of ``shape`` and ``dtype``, else raise
    ``Invalid value for 'frame': expected an (H, W, 3) uint8 array, got float32 (2, 3).``

    ``shape`` lists the axes: an int is a fixed size, a str (``"H"``) or None any size, a leading
    ``...`` any number of leading axes. ``nonempty``: no axis of size 0 (``got shape (0, 3)``);
    ``finite``: no NaN or Inf (``got NaN or Inf in 3 values``); ``nondecreasing``: a 1-D array
    sorted ascending; ``low``/``high``: every value within (``expected values in [0, 2], got
    values from 0 to 3``). ``what`` replaces the description (``a 1-D array of finite seconds``).
    """
    import numpy as np  # here, not at the top: the command-line help loads this module without numpy

    desc = what
    if desc is None:
        parts = [_shape_text(shape)] if shape is not None else []
        parts += [str(np.dtype(dtype))] if dtype is not None else []
        desc = _array_article(" ".join([*parts, "array"]))
    if not isinstance(value, np.ndarray):
        raise _error(name, f"expected {desc}, got {type(value).__name__}", hint)
    ok = dtype is None or value.dtype == np.dtype(dtype)
    if ok and shape is not None:
        dims = list(shape)
        lead = bool(dims) and dims[0] is Ellipsis
        dims = dims[1:] if lead else dims
        ok = value.ndim >= len(dims) if lead else value.ndim == len(dims)
        tail = value.shape[value.ndim - len(dims):] if ok else ()
        ok = ok and all(not isinstance(d, int) or d == n for d, n in zip(dims, tail))
    if not ok:
        raise _error(name, f"expected {desc}, got {value.dtype} {value.shape}", hint)
    if nonempty and 0 in value.shape:
        raise _error(name, f"expected {desc} with no empty axis, got shape {value.shape}", hint)
    if finite:
        bad = int(value.size - np.count_nonzero(np.isfinite(value)))
        if bad:
            raise _error(name, f"expected finite numbers, got NaN or Inf in {bad} value{'' if bad == 1 else 's'}", hint)
    if nondecreasing and value.size > 1 and np.any(np.diff(value.ravel()) < 0):
        raise _error(name, "expected non-decreasing values, got an unsorted array", hint)
    if value.size and (low is not None or high is not None):
        lo, hi = value.min(), value.max()
        if (low is not None and lo < low) or (high is not None and hi > high):
            bound = f"in [{low:g}, {high:g}]" if low is not None and high is not None else (
                f">= {low:g}" if low is not None else f"<= {high:g}"
            )
            raise _error(name, f"expected values {bound}, got values from {lo:g} to {hi:g}", hint)
    return value


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
