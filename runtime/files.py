"""Atomic output: a command that fails leaves no partial file or folder behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .check import MilmerInputError, check_dir_or_absent, check_path_exists

__all__ = ["atomic_dir", "check_out_dir", "atomic_file", "write_json_atomic", "write_text_atomic", "read_json_file"]


def check_out_dir(out: str | os.PathLike[str], *, overwrite: bool = False, name: str = "out") -> Path:
    """Raise unless ``out`` can become an output folder: it does not exist, is an empty folder, or
    ``overwrite`` is set. ``name`` is what the message calls it (``'--out'`` on a command line).

    Commands call it before their work, so a taken folder, a file in its place or a parent that is
    a file or not writable is refused at once, not after it.
    """
    # --overwrite replaces a folder's contents, never a file: offered only for a folder that is not empty.
    return check_dir_or_absent(
        name, out, empty=not overwrite, hint="choose another folder or pass --overwrite",
        place_hint="give a new or empty folder in a writable place",
    )


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike[str], *, overwrite: bool = False, name: str = "out") -> Iterator[Path]:
    """Yield a temporary sibling of ``out``; move it to ``out`` only if the block succeeds.

    ``out`` must not exist, be an empty folder, or ``overwrite`` must be set (its old contents
    are then replaced only after the new ones are complete); :func:`check_out_dir` with ``name``.
    """
    out = check_out_dir(out, overwrite=overwrite, name=name)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    _chmod_like_new(tmp, 0o777)  # mkdtemp makes 0700; the result should look like a mkdir
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    _chmod_like_new(tmp, 0o666)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def read_json_file(path: str | os.PathLike[str], *, param: str, what: str) -> Any:
    """Parse the JSON file ``path``; a missing file or bad JSON names ``param``/``what``."""
    path = check_path_exists(param, path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise MilmerInputError(f"Invalid {what}: {str(path)!r} is not valid JSON ({err}).") from None


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")
    return Path(path)


def _chmod_like_new(path: Path, mode: int) -> None:
    """Give ``path`` the permissions a plain mkdir/open would (``mode`` minus the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
