"""Exact YUV -> RGB (the same pixels on x86 and aarch64) and the bit-exact decoder options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from milmer.runtime.face.colour import DECODER_OPTIONS, _coefficients, frame_to_rgb, yuv_to_rgb
from milmer.runtime.face.video import iter_frames_at


def test_coefficients_are_the_standards_in_16_16_fixed_point():
    # BT.601 limited range: the 16.16 values FFmpeg's yuv2rgb tables also use (ff_yuv2rgb_coeffs)
    assert _coefficients(0.299, 0.114, False) == (76309, 104597, 25675, 53279, 132201)
    assert _coefficients(0.2126, 0.0722, False) == (76309, 117489, 13975, 34925, 138438)
    assert _coefficients(0.299, 0.114, True) == (65536, 91881, 22553, 46802, 116130)


def test_known_colours_are_pinned():
    y = np.array([[16, 235, 81, 145, 41, 128]], np.uint8)
    u = np.array([[128, 128, 90, 54, 240, 128]], np.uint8)
    v = np.array([[128, 128, 240, 34, 110, 128]], np.uint8)
    assert yuv_to_rgb(y, u, v).tolist() == [[[0, 0, 0], [255, 255, 255], [254, 0, 0], [0, 255, 1], [0, 0, 255],
                                             [130, 130, 130]]]  # fmt: skip
    assert yuv_to_rgb(y, u, v, full_range=True)[0, 5].tolist() == [128, 128, 128]
    assert yuv_to_rgb(y, u, v, bt709=True)[0, 2].tolist() == [255, 24, 0]


def test_integer_arithmetic_equals_the_formula_everywhere():
    """Every (Y, U, V) against the same formula in Python integers (no float, no SIMD)."""
    ky, cr, cgu, cgv, cb = _coefficients(0.299, 0.114, False)
    grid = np.stack(np.meshgrid(np.arange(0, 256, 3), np.arange(0, 256, 5), np.arange(0, 256, 5)), -1).reshape(-1, 3)
    y, u, v = (grid[:, i].astype(np.uint8)[None, :] for i in range(3))
    got = yuv_to_rgb(y, u, v)[0]
    for (yy, uu, vv), rgb in zip(grid[::97].tolist(), got[::97].tolist()):
        base = (yy - 16) * ky + (1 << 15)
        want = [(base + cr * (vv - 128)) >> 16, (base - cgu * (uu - 128) - cgv * (vv - 128)) >> 16,
                (base + cb * (uu - 128)) >> 16]  # fmt: skip
        assert rgb == [min(255, max(0, c)) for c in want]


@pytest.mark.parametrize(("width", "height", "fmt"), [(64, 48, "yuv420p"), (35, 21, "yuv420p"), (40, 30, "yuv444p"),
                                                      (40, 30, "yuvj420p"), (40, 30, "yuv422p")])  # fmt: skip
def test_frames_convert_like_swscale_within_its_rounding(width, height, fmt):
    import av

    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([40 + 4 * xx, 200 - 3 * yy, 60 + 2 * (xx + yy)], -1).clip(0, 255).astype(np.uint8)  # smooth colour
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=fmt)
    got = frame_to_rgb(frame)
    assert got.shape == (height, width, 3) and got.dtype == np.uint8
    # swscale's fast paths (even sizes: repeated chroma, as here) truncate: up to 3 apart; at odd
    # sizes swscale interpolates chroma, which differs from repeating it on this steep gradient
    tolerance = 3 if width % 2 == 0 else 8
    assert np.abs(got.astype(int) - frame.to_ndarray(format="rgb24")).max() <= tolerance


def test_other_formats_go_through_swscale():
    import av

    rgb = np.full((8, 8, 3), 100, np.uint8)
    assert frame_to_rgb(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="nv12")).shape == (8, 8, 3)


def test_decoder_uses_the_integer_idct(tmp_path: Path):
    """An MPEG-4 Part 2 video decodes to the planes of FFmpeg's C integer IDCT (idct=int), which
    differ from the default (SIMD) IDCT on this machine; iter_frames_at gives those pixels."""
    import av

    from . import avgen

    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(6)]
    path = avgen.write_video(tmp_path / "noise.mp4", avgen.every(30, 6), lambda k: frames[k], rate=30)

    def planes(options: dict[str, str] | None) -> list[np.ndarray]:
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            if options:
                stream.codec_context.options = options
            return [frame_to_rgb(f) for f in c.decode(stream)]

    exact, default = planes(DECODER_OPTIONS), planes(None)
    assert DECODER_OPTIONS == {"idct": "int"}
    ours = [i.frame for i in iter_frames_at(path, np.arange(6) / 30)]
    assert all(np.array_equal(a, b) for a, b in zip(ours, exact))
    assert any(not np.array_equal(a, b) for a, b in zip(exact, default))


def test_a_grayscale_video_has_exactly_no_colour(tmp_path: Path):
    """The 'grayscale' note's score is 0.0 for grey frames on every CPU (it was 4.4-4.8 on x86 and
    5.2-5.75 on aarch64 with swscale, around the threshold of 5.0); coloured faces score > 20."""
    from milmer.runtime.face.window_crops import _GRAY_CHROMA

    from . import avgen

    path = avgen.write_video(tmp_path / "dark.mp4", avgen.every(20, 20), lambda k: avgen.coded_frame(k, level=12), rate=20)

    def score(f: np.ndarray) -> float:
        small = f[::4, ::4].astype(np.float32)
        return float(np.abs(small[..., 0] - small[..., 1]).mean() + np.abs(small[..., 1] - small[..., 2]).mean())

    assert max(score(i.frame) for i in iter_frames_at(path, np.arange(20) / 20)) == 0.0
    assert _GRAY_CHROMA == 5.0
