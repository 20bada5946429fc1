"""A labelled montage of face crops for eyeballing what the model sees."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..check import MilmerInputError, check_int, check_nonempty, check_suffix
from ..windows import FaceWindows

__all__ = ["save_montage", "frame_caption", "window_caption"]

_GAP = 4  # px of grey between tiles
_HEADER = 16  # px above each row: the window's time
_CAPTION = 14  # px under each tile: the frame's time
_GREY = 128
_RED_RGB = (255, 0, 0)
_GOLD_RGB = (255, 215, 0)
_WHITE = (255, 255, 255)
_FONT_SCALE = 0.35


def window_caption(r: int, start: float | None, window_s: float | None) -> str:
    """The row label: ``'window 3: 9.0-12.0 s'`` (``'window 3'`` without times)."""
    if start is None or not math.isfinite(start):
        return f"window {r}"
    end = f"-{start + window_s:.1f}" if window_s else ""
    return f"window {r}: {start:.1f}{end} s"


def frame_caption(t: float, found: bool) -> str:
    """The tile label: the frame's video time, ``'1.50s'``; ``'1.50s no face'``; ``'outside'``."""
    if not math.isfinite(t):
        return "outside"
    return f"{t:.2f}s" + ("" if found else " no face")


def _text(img: np.ndarray, text: str, x: int, y: int, color: tuple[int, int, int]) -> None:
    import cv2

    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, _FONT_SCALE, color, 1, cv2.LINE_AA)


def save_montage(
    face_windows: FaceWindows,
    path: str | os.PathLike[str],
    max_windows: int = 4,
    *,
    window_starts: np.ndarray | None = None,
    window_s: float | None = None,
    selected: np.ndarray | Sequence[np.ndarray] | None = None,
) -> Path:
    """Write a PNG grid of crops: one row per window (the first ``max_windows``), one column per frame.

    Each row is headed by its window (:func:`window_caption`, times from ``window_starts`` (W,)
    seconds and ``window_s``); each tile is captioned with its frame's video time
    (:func:`frame_caption`). Frames without a face (``found`` False: a reused box, the centred
    square or a black frame outside the video) are outlined in red and captioned "no face".
    ``selected``: per window, the frame indices the MIL selected ((W, K) array or a sequence
    of (K,) arrays, empty for a window without a prediction; from ``milmer-infer --faces``):
    those tiles get a gold bar along their top edge. Returns the path written.
    """
    import cv2

    path = Path(path)
    check_suffix("path", path, (".png",))
    check_int("max_windows", max_windows, low=1)
    frames = face_windows.frames[:max_windows]  # (R, F, S, S, 3)
    check_nonempty("face_windows", frames, "window to draw")
    found = face_windows.found[:max_windows]
    times = face_windows.timestamps[:max_windows]
    rows, cols, size = frames.shape[0], frames.shape[1], frames.shape[2]
    if window_s is None and window_starts is not None and len(window_starts) > 1:
        window_s = float(window_starts[1] - window_starts[0])
    thickness = max(2, size // 40)
    step_x, step_y = size + _GAP, _HEADER + size + _CAPTION + _GAP
    grid = np.full((rows * step_y + _GAP, cols * step_x + _GAP, 3), _GREY, np.uint8)
    for r in range(rows):
        y_row = _GAP + r * step_y
        start = float(window_starts[r]) if window_starts is not None else None
        _text(grid, window_caption(r, start, window_s), _GAP, y_row + _HEADER - 4, _WHITE)
        chosen = set() if selected is None else {int(k) for k in np.asarray(selected[r]).ravel()}
        for c in range(cols):
            y, x = y_row + _HEADER, _GAP + c * step_x
            tile = grid[y : y + size, x : x + size]  # a view: writes land in the grid
            tile[:] = frames[r, c]
            if not found[r, c]:
                # A square outline inside the tile, so neighbouring tiles stay untouched.
                tile[:thickness] = tile[-thickness:] = _RED_RGB
                tile[:, :thickness] = tile[:, -thickness:] = _RED_RGB
            if c in chosen:
                tile[: 2 * thickness, thickness:-thickness] = _GOLD_RGB
            color = _WHITE if found[r, c] else _RED_RGB
            _text(grid, frame_caption(float(times[r, c]), bool(found[r, c])), x, y + size + _CAPTION - 3, color)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise MilmerInputError(f"Invalid value for 'path': cannot write {str(path)!r}.")
    return path
