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


def check_dir_or_absent(name: str, path: str | os.PathLike[str], *, empty: bool = False, hint: str | None = None) -> Path:
    """Return ``path`` as a :class:`Path` if it is a folder or does not exist yet (an output
    folder), else raise ``... 'x' exists and is not a folder.``; ``empty`` also refuses a folder
    that holds anything: ``... folder 'x' is not empty; <hint>.``"""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise _error(name, f"{str(p)!r} exists and is not a folder", hint)
    if empty and p.is_dir() and any(p.iterdir()):
        raise _error(name, f"folder {str(p)!r} is not empty", hint)
    return p


def check_writable_dir(name: str, path: str | os.PathLike[str], *, hint: str | None = None) -> Path:
    """Return ``path`` as a :class:`Path` if it is a folder that can be written, or one that can be
    created under the nearest existing folder (nothing is created); else raise
    ``... cannot write 'out/run': 'out' is not writable.``"""
    p = Path(path)
    check_dir_or_absent(name, p, hint=hint)
    base = p.absolute()
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise _error(name, f"cannot create {str(p)!r}: {str(base)!r} is a file, not a folder", hint)
    if not os.access(base, os.W_OK | os.X_OK):
        raise _error(name, f"cannot write {str(p)!r}: {str(base)!r} is not writable", hint)
    return p


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
