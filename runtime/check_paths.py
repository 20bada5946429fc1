"""Checks of paths given by the user (files, folders, suffixes, an input pair), in the message
shape of :mod:`milmer.runtime.check`; re-exported there."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from .errors import MilmerInputError, invalid_value as _error

__all__ = [
    "check_path_exists",
    "check_dir_or_absent",
    "check_writable_dir",
    "check_writable_file",
    "check_suffix",
    "read_error",
    "check_input_pair",
]


def check_path_exists(
    name: str, path: str | os.PathLike[str], kind: Literal["file", "dir"] = "file", *, hint: str | None = None
) -> Path:
    """Return ``path`` as a :class:`Path`; raise if it does not exist
    (``... file not found: 'x.edf'.``) or is not a ``kind`` ('file' or 'dir')."""
    p = Path(path)
    noun = "file" if kind == "file" else "directory"
    if not p.exists():
        raise _error(name, f"{noun} not found: {str(p)!r}", hint)
    if kind == "file" and not p.is_file():
        raise _error(name, f"expected a file, got directory {str(p)!r}", hint)
    if kind == "dir" and not p.is_dir():
        raise _error(name, f"expected a directory, got file {str(p)!r}", hint)
    return p


def check_dir_or_absent(
    name: str, path: str | os.PathLike[str], *, empty: bool = False, hint: str | None = None,
    place_hint: str | None = None,
) -> Path:
    """Return ``path`` as a :class:`Path` if it can be an output folder: a folder, or one that can
    be created under the nearest existing folder (nothing is created). Else raise
    ``... 'x' exists and is not a folder.``, ``... cannot create 'f/run': 'f' is a file, not a
    folder.`` or ``... cannot write 'out/run': 'out' is not writable.`` with ``place_hint`` (default
    ``hint``); ``empty`` also refuses a folder that holds anything: ``... folder 'x' is not empty;
    <hint>.`` (so a hint offering ``--overwrite`` is given only where that option helps)."""
    p = Path(path)
    place_hint = hint if place_hint is None else place_hint
    if p.exists() and not p.is_dir():
        raise _error(name, f"{str(p)!r} exists and is not a folder", place_hint)
    _check_creatable(name, p, place_hint)
    if empty and p.is_dir() and any(p.iterdir()):
        raise _error(name, f"folder {str(p)!r} is not empty", hint)
    return p


def check_writable_dir(name: str, path: str | os.PathLike[str], *, hint: str | None = None) -> Path:
    """Return ``path`` as a :class:`Path` if it is a folder that can be written, or one that can be
    created under the nearest existing folder (:func:`check_dir_or_absent`; nothing is created)."""
    return check_dir_or_absent(name, path, hint=hint)


def check_writable_file(name: str, path: str | os.PathLike[str], *, hint: str | None = None) -> Path:
    """Return ``path`` as a :class:`Path` if it is an output FILE that can be written: not a folder,
    and its folder exists and is writable or can be created under the nearest existing folder
    (nothing is created); else raise ``... cannot create 'f/x.json': 'f' is a file, not a
    folder.`` Run before any slow work, so a bad output path is refused at once, not after it."""
    p = Path(path)
    if p.is_dir():
        raise _error(name, f"{str(p)!r} is a folder; expected a file name", hint)
    _check_creatable(name, p, hint)
    return p


def _check_creatable(name: str, p: Path, hint: str | None) -> None:
    """The nearest existing ancestor of ``p`` (or ``p`` itself) is a writable folder."""
    base = p.absolute()
    while not base.exists() and base != base.parent:
        base = base.parent
    if base == p.absolute() and p.is_file():
        base = base.parent  # an existing file to be replaced: its folder must be writable
    if not base.is_dir():
        raise _error(name, f"cannot create {str(p)!r}: {_shown(base, p)!r} is a file, not a folder", hint)
    if not os.access(base, os.W_OK | os.X_OK):
        raise _error(name, f"cannot write {str(p)!r}: {_shown(base, p)!r} is not writable", hint)


def _shown(base: Path, p: Path) -> str:
    """``base`` as the user wrote it: the matching prefix of ``p`` when ``p`` is relative."""
    for parent in (p, *p.parents):
        if parent.absolute() == base:
            return str(parent)
    return str(base)


def check_suffix(name: str, path: Path, allowed: Iterable[str], *, hint: str | None = None) -> str:
    """Return the lower-cased suffix of ``path`` if it is one of ``allowed``, else raise
    ``... unsupported file type '.txt' for 'x.txt'; expected one of '.png'.``"""
    allowed = tuple(allowed)
    suffix = Path(path).suffix.lower()
    if suffix not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise _error(name, f"unsupported file type {suffix or '(none)'!r} for {Path(path).name!r}; expected one of {options}", hint)
    return suffix


def read_error(
    name: str, path: str | os.PathLike[str], err: BaseException, *, what: str = "file", hint: str | None = None
) -> MilmerInputError:
    """The error for a file that exists but cannot be read (raise it ``from err``):
    ``Invalid value for 'eeg': the EDF file 'x.edf' could not be read (ValueError: bad header).``"""
    return _error(name, f"the {what} {str(path)!r} could not be read ({type(err).__name__}: {err})", hint)


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
