"""Decoded video frame -> RGB with our own integer arithmetic: the same pixels on every CPU.

FFmpeg's swscale converts YUV to RGB with per-architecture fast paths (x86 SIMD, NEON) that
round differently: on aarch64 most pixels of a frame differed by up to +-3 from x86, enough to
move face boxes and crops. :func:`frame_to_rgb` does the conversion in numpy int32 fixed point,
which is exact and identical on x86 and aarch64, for the planar 8-bit YUV formats cameras and
encoders write (4:2:0, 4:2:2, 4:4:4, limited or full range); any other pixel format goes
through swscale (``to_ndarray(format="rgb24")``), as before.

Arithmetic (ITU-R BT.601, or BT.709 when the stream says so; limited range 16-235/16-240 unless
the frame says full range): ``R = Y' + cr * V'``, ``G = Y' - cgu * U' - cgv * V'``,
``B = Y' + cb * U'`` with ``Y' = ky * (Y - 16)`` (``Y`` in full range), ``U' = U - 128``,
``V' = V - 128``; coefficients in 16.16 fixed point, rounded half up, clipped to 0-255. Chroma
is upsampled by repeating each sample (as swscale's unscaled converters do).

Sources: ITU-R BT.601-7 and BT.709-6 (matrix coefficients); FFmpeg ``AVColorSpace`` /
``AVColorRange`` codes (``frame.colorspace`` 1 = BT.709; ``frame.color_range`` 2 = full).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["EXACT_FORMATS", "DECODER_OPTIONS", "yuv_to_rgb", "frame_to_rgb"]

#: Planar 8-bit YUV formats converted here -> (horizontal, vertical) chroma subsampling.
EXACT_FORMATS: dict[str, tuple[int, int]] = {
    "yuv420p": (2, 2), "yuvj420p": (2, 2), "yuv422p": (2, 1), "yuvj422p": (2, 1),
    "yuv444p": (1, 1), "yuvj444p": (1, 1),
}  # fmt: skip
#: Decoder options that make decoding bit-exact across CPU architectures where FFmpeg has a
#: choice: the plain C integer IDCT (MPEG-4 Part 2, MPEG-1/2, MJPEG) instead of the SIMD one of
#: each architecture. H.264/HEVC/VP9/AV1 decoding is bit-exact by their specifications.
DECODER_OPTIONS: dict[str, str] = {"idct": "int"}
_ONE = 1 << 16
_BT709 = 1


def _coefficients(kr: float, kb: float, full: bool) -> tuple[int, int, int, int, int]:
    """(ky, cr, cgu, cgv, cb) in 16.16 fixed point for luma weights ``kr``, ``kb``."""
    kg = 1.0 - kr - kb
    y_scale, c_scale = (1.0, 1.0) if full else (255.0 / 219.0, 255.0 / 224.0)
    cr = 2.0 * (1.0 - kr) * c_scale
    cb = 2.0 * (1.0 - kb) * c_scale
    cgu = 2.0 * (1.0 - kb) * kb / kg * c_scale
    cgv = 2.0 * (1.0 - kr) * kr / kg * c_scale
    return tuple(int(round(c * _ONE)) for c in (y_scale, cr, cgu, cgv, cb))  # type: ignore[return-value]


def yuv_to_rgb(
    y: np.ndarray, u: np.ndarray, v: np.ndarray, *, bt709: bool = False, full_range: bool = False
) -> np.ndarray:
    """Planes ``y: (H, W)``, ``u``/``v``: (ceil(H/sy), ceil(W/sx)) uint8 -> (H, W, 3) uint8 RGB."""
    h, w = y.shape
    sy, sx = -(-h // u.shape[0]), -(-w // u.shape[1])
    ky, cr, cgu, cgv, cb = _coefficients(0.2126, 0.0722, full_range) if bt709 else _coefficients(0.299, 0.114, full_range)
    yy = (y.astype(np.int32) - (0 if full_range else 16)) * ky + (_ONE >> 1)  # (H, W), rounding added once
    uu = np.repeat(np.repeat(u.astype(np.int32) - 128, sy, axis=0), sx, axis=1)[:h, :w]
    vv = np.repeat(np.repeat(v.astype(np.int32) - 128, sy, axis=0), sx, axis=1)[:h, :w]
    out = np.empty((h, w, 3), np.uint8)
    for c, value in enumerate((yy + cr * vv, yy - cgu * uu - cgv * vv, yy + cb * uu)):
        np.clip(value >> 16, 0, 255, out=value)
        out[..., c] = value
    return out


def _plane(plane: Any, rows: int, cols: int) -> np.ndarray:
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:rows, :cols]


def frame_to_rgb(frame: Any) -> np.ndarray:
    """A PyAV ``VideoFrame`` -> (H, W, 3) uint8 RGB as stored (exact for :data:`EXACT_FORMATS`)."""
    fmt = frame.format.name
    sub = EXACT_FORMATS.get(fmt)
    if sub is None:
        return frame.to_ndarray(format="rgb24")
    h, w = frame.height, frame.width
    ch, cw = -(-h // sub[1]), -(-w // sub[0])
    y = _plane(frame.planes[0], h, w)
    u, v = _plane(frame.planes[1], ch, cw), _plane(frame.planes[2], ch, cw)
    full = fmt.startswith("yuvj") or int(frame.color_range) == 2
    return yuv_to_rgb(y, u, v, bt709=int(frame.colorspace) == _BT709, full_range=full)
