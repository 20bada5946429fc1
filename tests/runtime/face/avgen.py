"""Tiny test videos written with PyAV at test time (no ffmpeg program needed).

Frames are 64 x 48 px by default. Each frame can carry its index as an 8-bit code of black/white
8 x 8 px blocks along the bottom edge, so a test reads back which frame it was given, whatever
the codec did to the pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

W, H = 64, 48
CODE_BITS = 8
TB = Fraction(1, 1000)  # millisecond timestamps


def encode_index(frame: np.ndarray, k: int) -> np.ndarray:
    """Draw ``k`` (0-255) as 8 blocks of 8 x 8 px along the bottom edge of ``frame`` (in place)."""
    h, w = frame.shape[:2]
    block = w // CODE_BITS
    for b in range(CODE_BITS):
        frame[h - 8 :, b * block : (b + 1) * block] = 255 if (k >> b) & 1 else 0
    return frame


def decode_index(frame: np.ndarray) -> int:
    h, w = frame.shape[:2]
    block = w // CODE_BITS
    bits = (frame[h - 6 : h - 2, b * block + 2 : (b + 1) * block - 2].mean() > 127 for b in range(CODE_BITS))
    return sum(int(bit) << b for b, bit in enumerate(bits))


def coded_frame(k: int, *, level: int = 60, width: int = W, height: int = H) -> np.ndarray:
    return encode_index(np.full((height, width, 3), level, np.uint8), k % 256)


def write_video(
    path: Path,
    times: Sequence[float],
    frame: Callable[[int], np.ndarray] = coded_frame,
    *,
    rate: int = 30,
    codec: str = "mpeg4",
    rotation: int = 0,
    options: dict[str, str] | None = None,
) -> Path:
    """Frames ``frame(k)`` at presentation times ``times[k]`` (s); ``rate`` is the header's rate.

    ``rotation``: the display matrix's counter-clockwise degrees (as phones write them).
    """
    import av

    first = frame(0)
    with av.open(str(path), "w", options=options or {}) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height = first.shape[1], first.shape[0]
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.codec_context.time_base = TB
        if codec == "mpeg4":
            stream.codec_context.options = {"qscale": "2"}
        if rotation:
            if not hasattr(stream, "set_display_rotation"):
                pytest.skip("this PyAV cannot write a display matrix")
            stream.set_display_rotation(rotation)
        for k, t in enumerate(times):
            img = first if k == 0 else frame(k)
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            vf.pts, vf.time_base = int(round(t / TB)), TB
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def every(fps: float, n: int, start: float = 0.0) -> list[float]:
    return [start + k / fps for k in range(n)]
