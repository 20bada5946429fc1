"""A montage of face crops for eyeballing what the model sees."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._check import MilmerInputError
from ..windows import FaceWindows

__all__ = ["save_montage"]

_GAP = 4  # px of grey between tiles
_GREY = 128
_RED_RGB = (255, 0, 0)


def save_montage(face_windows: FaceWindows, path: str | os.PathLike[str], max_windows: int = 4) -> Path:
    """Write a PNG grid of crops: one row per window (the first ``max_windows``), one column per frame.

    Frames where the detector found no face (``found`` False: reused box, centre crop or black
    frame outside the video) are outlined in red. Returns the path written.
    """
    import cv2

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise MilmerInputError(f"Invalid value for 'path': expected a '.png' file, got {path.name!r}.")
    if isinstance(max_windows, bool) or not isinstance(max_windows, int) or max_windows <= 0:
        raise MilmerInputError(f"Invalid value for 'max_windows': expected an integer > 0, got {max_windows!r}.")
    frames = face_windows.frames[:max_windows]  # (R, F, S, S, 3)
    if frames.shape[0] == 0:
        raise MilmerInputError("Invalid value for 'face_windows': it has no windows to draw.")
    found = face_windows.found[:max_windows]
    rows, cols, size = frames.shape[0], frames.shape[1], frames.shape[2]
    thickness = max(2, size // 40)
    step = size + _GAP
    grid = np.full((rows * step + _GAP, cols * step + _GAP, 3), _GREY, np.uint8)
    for r in range(rows):
        for c in range(cols):
            y, x = _GAP + r * step, _GAP + c * step
            tile = grid[y : y + size, x : x + size]  # a view: writes land in the grid
            tile[:] = frames[r, c]
            if not found[r, c]:
                # A square outline inside the tile, so neighbouring tiles stay untouched.
                tile[:thickness] = tile[-thickness:] = _RED_RGB
                tile[:, :thickness] = tile[:, -thickness:] = _RED_RGB
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise MilmerInputError(f"Invalid value for 'path': cannot write {str(path)!r}.")
    return path
