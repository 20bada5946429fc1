"""Full-length arrays on disk: preprocessing's peak memory the same for any recording length.

Preprocessing keeps one full-length copy of the recording at the model's rate (118 MB per hour
of 32 channels as float64) and returns the windows (float32, 59 MB per hour). An array larger
than :data:`MAX_IN_MEMORY_BYTES` is therefore made in a scratch file mapped into memory
(:func:`empty`) instead of in RAM: every step already walks it a minute, a channel or a few
windows at a time, and calls :func:`release` after each piece, which hands the pages it touched
back to the page cache (``madvise(MADV_DONTNEED)``: a shared file mapping keeps its data in the
file). Touched pages of a mapping count in the resident set until they are released, so a pass
that forgot to release would make the peak grow with the length again.

Where: ``$MILMER_SCRATCH``, else ``scratch/`` under the milmer home (:func:`~.home.milmer_home`;
not ``/tmp``, which is RAM on many systems). Space: the array's size, reserved up front
(``posix_fallocate``) after a check that names the folder, the size and ``MILMER_SCRATCH``
(:class:`~.check.MilmerInputError`), so a full disk refuses before any work, never midway. The
file is unlinked as soon as it is mapped: nothing is left behind on success, on an error, on
Ctrl-C or on a crash; the space is returned when the array is garbage-collected.

Arrays up to :data:`MAX_IN_MEMORY_BYTES` stay ordinary numpy arrays (no file, same numbers).
"""

from __future__ import annotations

import math
import mmap
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .check import MilmerInputError
from .home import milmer_home

__all__ = [
    "MAX_IN_MEMORY_BYTES", "SCRATCH_ENV", "empty", "is_disk_backed", "release", "savez", "scratch_folder", "zeros",
]  # fmt: skip

#: Arrays larger than this (bytes) are made in a scratch file (about 1 h of 32 channels at 128 Hz
#: as float64, or 2 h of float32 windows): what stays in memory is at most this much per array.
MAX_IN_MEMORY_BYTES = 128 * 2**20
#: Environment variable naming the scratch folder.
SCRATCH_ENV = "MILMER_SCRATCH"


def scratch_folder() -> Path:
    """``$MILMER_SCRATCH``, else ``<milmer home>/scratch``."""
    env = os.environ.get(SCRATCH_ENV)
    return Path(env).expanduser() if env else milmer_home() / "scratch"


#: What the EEG's arrays take in the scratch folder (the working copy and the windows).
EEG_NEED = "its EEG (about 0.2 GB per hour of recording)"


def empty(
    shape: tuple[int, ...], dtype: Any = np.float64, *, later_bytes: int = 0, what: str = EEG_NEED
) -> np.ndarray:
    """A C-contiguous array of ``shape``: in memory (uninitialised, ``np.empty``) up to
    :data:`MAX_IN_MEMORY_BYTES`, else zeros in a mapped scratch file (see the module docstring).
    ``later_bytes``: what the caller will put in the scratch folder later (the windows), checked
    now with the array's own size, so that a full disk refuses before any work. ``what`` names
    the data in a refusal ('its EEG (about 0.2 GB per hour of recording)').

    Raises MilmerInputError when the scratch folder cannot be created or lacks the space.
    """
    return _allocate(shape, np.dtype(dtype), np.empty, later_bytes, what)


def zeros(
    shape: tuple[int, ...], dtype: Any = np.float64, *, later_bytes: int = 0, what: str = EEG_NEED
) -> np.ndarray:
    """:func:`empty`, filled with zeros (a scratch file starts as zeros)."""
    return _allocate(shape, np.dtype(dtype), np.zeros, later_bytes, what)


def _allocate(shape: tuple[int, ...], dtype: np.dtype, in_memory: Any, later_bytes: int, what: str) -> np.ndarray:
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes <= MAX_IN_MEMORY_BYTES or nbytes == 0:
        return in_memory(shape, dtype)
    folder = scratch_folder()
    need = _mb(nbytes + later_bytes)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as error:
        raise MilmerInputError(
            f"Invalid value for '{SCRATCH_ENV}': cannot use {folder} as the scratch folder ({error.strerror or error}); "
            f"this recording needs {need} there for {what}. Set {SCRATCH_ENV} to a writable folder on a disk."
        ) from error
    if free < nbytes + later_bytes:
        raise _no_space(folder, need, _mb(free), what)
    with tempfile.TemporaryFile(dir=folder, prefix="milmer-", suffix=".scratch") as file:  # unlinked at once
        try:
            if hasattr(os, "posix_fallocate"):  # blocks reserved now: a full disk cannot fault a write later
                os.posix_fallocate(file.fileno(), 0, nbytes)
            else:
                file.truncate(nbytes)
        except OSError as error:
            raise _no_space(folder, need, _mb(shutil.disk_usage(folder).free), what) from error
        mapped = mmap.mmap(file.fileno(), nbytes)  # shared, read-write; holds the file open itself
    return np.frombuffer(mapped, dtype).reshape(shape)


def release(array: np.ndarray | None) -> None:
    """Hand the pages of ``array``'s scratch mapping (when it, or the array it views, is one
    from :func:`empty`) back to the page cache: they leave the resident set and are read again
    from the file when next touched. Nothing for ordinary arrays or None."""
    mapped = _mapping(array)
    if mapped is not None and hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED)


#: Bytes of a scratch-backed array written to an ``.npz`` at a time by :func:`savez`.
WRITE_BLOCK_BYTES = 16 * 2**20


def savez(path: str | os.PathLike[str], **arrays: Any) -> None:
    """``np.savez(path, **arrays)``: the same uncompressed ``.npz`` (``np.load`` reads it alike),
    but a scratch-backed array (:func:`empty`) is written :data:`WRITE_BLOCK_BYTES` at a time along
    its first axis and its pages released after each block: numpy's writer would touch every page
    of it at once (the resident set would grow by the array's size). Other arrays go through
    numpy's own writer (``np.lib.format.write_array``, ``allow_pickle=False``)."""
    import zipfile

    from numpy.lib import format as npy

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, value in arrays.items():
            array = np.asanyarray(value)
            with archive.open(f"{name}.npy", "w", force_zip64=True) as file:
                if not is_disk_backed(array) or array.ndim == 0 or not array.flags.c_contiguous:
                    npy.write_array(file, array, allow_pickle=False)
                    continue
                npy.write_array_header_1_0(file, npy.header_data_from_array_1_0(array))
                row_bytes = max(array[:1].nbytes, 1)
                step = max(1, WRITE_BLOCK_BYTES // row_bytes)
                for start in range(0, array.shape[0], step):
                    file.write(array[start : start + step].tobytes())
                    release(array)


def is_disk_backed(array: np.ndarray | None) -> bool:
    """Whether ``array`` lives in (or views) a scratch mapping."""
    return _mapping(array) is not None


def _mapping(array: Any) -> mmap.mmap | None:
    base = array
    while base is not None:
        if isinstance(base, mmap.mmap):
            return base
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return None


def _mb(nbytes: int) -> str:
    return f"{nbytes / 2**20:.0f} MB" if nbytes >= 100 * 2**20 else f"{nbytes / 2**20:.2f} MB"


def _no_space(folder: Path, need: str, free: str, what: str) -> MilmerInputError:
    return MilmerInputError(
        f"Invalid value for '{SCRATCH_ENV}': the scratch folder {folder} has {free} free; this "
        f"recording needs {need} there for {what}. Free space there or set "
        f"{SCRATCH_ENV} to a folder on a disk with room."
    )
