"""The crop rule and the normalisation shared by training and the deployed runtime.

Crop rule (``FaceSpec``): the detector's box grows by ``box_expand`` of its size (half on each
side, so +10 % makes it 10 % wider and 10 % taller, 5 % added per side), is clipped to the image,
centre-padded with black to a square and resized to ``frame_size``. The paper's "+10 %" is read
as the box's size growing by 10 %.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..check import MilmerInputError, check_array, check_int, check_number, check_positive, check_sequence
from .detect import Box

__all__ = ["expand_box", "center_square_box", "crop_pad_resize", "normalize"]


def expand_box(box: Box, frac: float, *, width: int, height: int) -> Box:
    """``box`` grown by ``frac`` of its width and height (``frac / 2`` per side), clipped to the image.

    E.g. a 100 x 80 box with ``frac=0.10`` becomes 110 x 88 (5 and 4 pixels added per side)
    before clipping to ``[0, width] x [0, height]``.
    """
    check_number("frac", frac, low=0)
    dx, dy = 0.5 * frac * box.width, 0.5 * frac * box.height
    grown = Box(box.x0 - dx, box.y0 - dy, box.x1 + dx, box.y1 + dy, box.score)
    clipped = grown.clip(width, height)
    if clipped is None:
        raise MilmerInputError(
            f"Invalid value for 'box': {box!r} does not overlap the {width}x{height} image."
        )
    return clipped


def center_square_box(width: int, height: int) -> Box:
    """The largest centred square of a ``width`` x ``height`` image (the crop when no face is found)."""
    side = min(width, height)
    x0, y0 = (width - side) // 2, (height - side) // 2
    return Box(float(x0), float(y0), float(x0 + side), float(y0 + side), 0.0)


def crop_pad_resize(frame: np.ndarray, box: Box, size: int = 224) -> np.ndarray:
    """Crop ``box`` from ``frame``, centre-pad with black to a square, resize to ``size``.

    frame: (H, W, 3) uint8.  Returns (size, size, 3) uint8.
    Box edges are rounded to whole pixels. With a crop of h x w (h < w) the square has
    ``(w - h) // 2`` black rows on top and the rest below (columns likewise when w < h).
    Shrinking uses ``INTER_AREA`` (no aliasing), enlarging ``INTER_LINEAR``.
    """
    import cv2

    check_array("frame", frame, shape=("H", "W", 3), dtype=np.uint8)
    size = check_int("size", size, low=1)
    height, width = frame.shape[:2]
    x0, x1 = max(0, int(round(box.x0))), min(width, int(round(box.x1)))
    y0, y1 = max(0, int(round(box.y0))), min(height, int(round(box.y1)))
    if x1 <= x0 or y1 <= y0:
        raise MilmerInputError(f"Invalid value for 'box': {box!r} leaves no pixels of the {width}x{height} frame.")
    crop = frame[y0:y1, x0:x1]
    h, w = crop.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    square = cv2.copyMakeBorder(
        crop, top, side - h - top, left, side - w - left, cv2.BORDER_CONSTANT, value=(0, 0, 0)
    )
    if side == size:
        return np.ascontiguousarray(square)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


def normalize(frames: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``(x / 255 - mean) / std`` per RGB channel, channels first: THE model input normalisation.

    frames: (..., H, W, 3) uint8 RGB.  Returns (..., 3, H, W) float32, C-contiguous.
    """
    frames = np.asarray(frames)
    check_array("frames", frames, shape=(..., "H", "W", 3), dtype=np.uint8, what="(..., H, W, 3) uint8 RGB")
    m = np.asarray(check_sequence("mean", mean, length=3), dtype=np.float32)
    s = np.asarray(check_sequence("std", std, length=3, item=check_positive), dtype=np.float32)
    # A 256-entry table per channel holds exactly the float32 values of the formula: OpenCV's
    # LUT copies them pixel by pixel (exact on every CPU: nothing is computed), then one
    # transpose per frame writes channels first. A sixth of the CPU time of numpy's take into
    # the channels-first output, which widened every uint8 index to intp; this runs on the
    # scoring thread, between backbone calls.
    import cv2

    lut = (np.arange(256, dtype=np.float32)[None, :] / np.float32(255.0) - m[:, None]) / s[:, None]  # (3, 256)
    table = np.ascontiguousarray(lut.T).reshape(256, 1, 3)  # (256, 1, 3): one entry per level, per channel
    h, w = frames.shape[-3:-1]
    images = frames.reshape(-1, h, w, 3)  # (N, H, W, 3)
    out = np.empty((images.shape[0], 3, h, w), dtype=np.float32)  # (N, 3, H, W)
    if out.size:
        for i, image in enumerate(images):
            out[i] = cv2.LUT(np.ascontiguousarray(image), table).transpose(2, 0, 1)
    return out.reshape(*frames.shape[:-3], 3, h, w)
