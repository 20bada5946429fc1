"""The crop rule and normalisation (runtime/face/crop.py)."""

from __future__ import annotations

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.face.crop import center_square_box, crop_pad_resize, expand_box, normalize
from milmer.runtime.face.detect import Box


def test_expand_box_grows_size_by_frac_half_per_side() -> None:
    assert expand_box(Box(100, 50, 200, 130, 0.9), 0.10, width=640, height=480) == Box(95, 46, 205, 134, 0.9)
    assert expand_box(Box(0, 10, 100, 110), 0.10, width=102, height=480) == Box(0, 5, 102, 115)  # clipped
    assert expand_box(Box(1, 2, 3, 4), 0.0, width=10, height=10) == Box(1, 2, 3, 4)
    with pytest.raises(MilmerInputError, match="'frac': expected a number >= 0, got -0.1"):
        expand_box(Box(1, 2, 3, 4), -0.1, width=10, height=10)
    with pytest.raises(MilmerInputError, match="'box'.*does not overlap the 10x10 image"):
        expand_box(Box(20, 20, 30, 30), 0.1, width=10, height=10)


def test_center_square_box() -> None:
    assert center_square_box(320, 240) == Box(40, 0, 280, 240, 0.0)
    assert center_square_box(240, 321) == Box(0, 40, 240, 280, 0.0)


def white_frame() -> np.ndarray:
    return np.full((200, 300, 3), 255, np.uint8)


def test_wide_crop_gets_centred_black_bars_top_and_bottom() -> None:
    out = crop_pad_resize(white_frame(), Box(10.4, 19.6, 109.6, 80.4), size=100)  # rounds to 100 w x 60 h
    assert out.shape == (100, 100, 3) and out.dtype == np.uint8
    rows = out[:, :, 0].mean(axis=1)
    np.testing.assert_array_equal(rows[:20], 0)
    np.testing.assert_array_equal(rows[20:80], 255)
    np.testing.assert_array_equal(rows[80:], 0)


def test_odd_padding_puts_the_extra_row_or_column_last() -> None:
    out = crop_pad_resize(white_frame(), Box(0, 0, 100, 61), size=100)  # 39 rows of padding
    rows = out[:, :, 1].mean(axis=1)
    assert (rows == 0).sum() == 39 and (rows[:19] == 0).all() and rows[19] == 255 and (rows[80:] == 0).all()
    tall = crop_pad_resize(white_frame(), Box(0, 0, 41, 80), size=80)  # 39 columns of padding
    cols = tall[:, :, 2].mean(axis=0)
    assert (cols[:19] == 0).all() and (cols[19:60] == 255).all() and (cols[60:] == 0).all()


def test_shrinking_uses_area_and_keeps_bars_exact() -> None:
    out = crop_pad_resize(white_frame(), Box(10, 20, 110, 80), size=50)  # 100x100 square -> 50x50
    rows = out[:, :, 0].mean(axis=1)
    np.testing.assert_array_equal(rows[:10], 0)
    np.testing.assert_array_equal(rows[10:40], 255)
    np.testing.assert_array_equal(rows[40:], 0)


def test_interpolation_area_when_shrinking_linear_when_enlarging() -> None:
    import cv2

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    box = Box(0, 0, 64, 64)
    area_24 = cv2.resize(frame, (24, 24), interpolation=cv2.INTER_AREA)
    linear_24 = cv2.resize(frame, (24, 24), interpolation=cv2.INTER_LINEAR)
    linear_100 = cv2.resize(frame, (100, 100), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(crop_pad_resize(frame, box, 24), area_24)
    assert not np.array_equal(area_24, linear_24)  # the choice is visible
    np.testing.assert_array_equal(crop_pad_resize(frame, box, 100), linear_100)
    np.testing.assert_array_equal(crop_pad_resize(frame, box, 64), frame)


def test_crop_errors() -> None:
    with pytest.raises(MilmerInputError, match=r"'frame': expected an \(H, W, 3\) uint8 array, got float64"):
        crop_pad_resize(np.zeros((10, 10, 3)), Box(0, 0, 5, 5))
    with pytest.raises(MilmerInputError, match="'size': expected an integer >= 1, got 0"):
        crop_pad_resize(white_frame(), Box(0, 0, 5, 5), size=0)
    with pytest.raises(MilmerInputError, match="'box'.*leaves no pixels of the 300x200 frame"):
        crop_pad_resize(white_frame(), Box(400, 0, 500, 5))


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def test_normalize_values_and_layout() -> None:
    frames = np.zeros((2, 4, 5, 3), np.uint8)
    frames[0] = 255
    frames[1, 1, 2] = (128, 0, 255)
    out = normalize(frames, IMAGENET_MEAN, IMAGENET_STD)
    assert out.shape == (2, 3, 4, 5) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out[0, :, 0, 0], [2.2489083, 2.4285715, 2.64], rtol=1e-6)
    np.testing.assert_allclose(out[1, :, 0, 0], [-2.1179039, -2.0357141, -1.8044444], rtol=1e-6)
    np.testing.assert_allclose(out[1, :, 1, 2], [0.0740645, -2.0357141, 2.64], atol=1e-6)  # (128/255 - 0.485) / 0.229
    # One frame (H, W, 3) -> (3, H, W).
    assert normalize(frames[1], IMAGENET_MEAN, IMAGENET_STD).shape == (3, 4, 5)


def test_normalize_is_the_formula_in_float32_for_every_level() -> None:
    """Every uint8 level of every channel, at several leading shapes: bit-equal to the formula
    ``(x / 255 - mean) / std`` computed in float32 (the model's input, whatever does the lookup)."""
    levels = np.arange(256, dtype=np.uint8)
    frames = np.stack([np.roll(levels, k) for k in range(3)], -1).reshape(1, 16, 16, 3)  # each channel sees 0-255
    mean, std = np.float32(IMAGENET_MEAN), np.float32(IMAGENET_STD)
    want = ((frames.astype(np.float32) / np.float32(255.0) - mean) / std).transpose(0, 3, 1, 2)  # (1, 3, 16, 16)
    np.testing.assert_array_equal(normalize(frames, IMAGENET_MEAN, IMAGENET_STD), want)
    stacked = np.stack([frames[0], frames[0][::-1], frames[0][:, ::-1]])  # (3, 16, 16, 3), views reversed
    got = normalize(stacked.reshape(3, 1, 16, 16, 3), IMAGENET_MEAN, IMAGENET_STD)
    assert got.shape == (3, 1, 3, 16, 16) and got.flags.c_contiguous
    want_stacked = ((stacked.astype(np.float32) / np.float32(255.0) - mean) / std).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(got[:, 0], want_stacked)
    assert normalize(np.zeros((0, 4, 5, 3), np.uint8), IMAGENET_MEAN, IMAGENET_STD).shape == (0, 3, 4, 5)


def test_normalize_errors() -> None:
    with pytest.raises(MilmerInputError, match=r"'frames': expected \(..., H, W, 3\) uint8 RGB, got float32"):
        normalize(np.zeros((4, 4, 3), np.float32), IMAGENET_MEAN, IMAGENET_STD)
    with pytest.raises(MilmerInputError, match=r"'std\[1\]': expected a number > 0, got 0"):
        normalize(np.zeros((4, 4, 3), np.uint8), IMAGENET_MEAN, (0.2, 0.0, 0.2))
