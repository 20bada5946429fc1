"""Input validation in the style of MNE's ``mne/utils/check.py``.

Errors raised for users name the parameter, the allowed values and what was received.
:class:`MilmerInputError` marks a problem with the user's input (bad file, bad option); the CLI
turns it into exit code 2 without a traceback. Anything else is an internal error (exit 1).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "MilmerInputError",
    "check_option",
    "check_positive",
    "check_path_exists",
    "check_suffix",
    "check_keys",
]


class MilmerInputError(ValueError):
    """The user's input (a file, an option, a recording) cannot be used as given."""


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


def check_path_exists(name: str, path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as a :class:`Path`; raise if it does not exist or is not a file."""
    p = Path(path)
    if not p.exists():
        raise MilmerInputError(f"Invalid value for {name!r}: file not found: {str(p)!r}.")
    if not p.is_file():
        raise MilmerInputError(f"Invalid value for {name!r}: expected a file, got directory {str(p)!r}.")
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
