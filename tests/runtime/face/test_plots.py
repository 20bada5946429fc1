"""Crop montage (runtime/face/plots.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from milmer.runtime._check import MilmerInputError
from milmer.runtime.face.plots import save_montage
from milmer.runtime.windows import FaceWindows

S = 32
GAP = 4


def tiny_windows(n_windows: int = 3) -> FaceWindows:
    frames = np.zeros((n_windows, 2, S, S, 3), np.uint8)
    frames[..., 1] = 200  # green tiles: red pixels can only come from the outline
    found = np.ones((n_windows, 2), bool)
    found[:1, 1] = False
    return FaceWindows(frames=frames, found=found, timestamps=np.zeros((n_windows, 2)))


def tile(img: np.ndarray, r: int, c: int) -> np.ndarray:
    y, x = GAP + r * (S + GAP), GAP + c * (S + GAP)
    return img[y : y + S, x : x + S]


def test_montage_grid_and_red_outline(tmp_path: Path) -> None:
    import cv2

    path = save_montage(tiny_windows(3), tmp_path / "sub" / "montage.png", max_windows=2)
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert img.shape == (2 * (S + GAP) + GAP, 2 * (S + GAP) + GAP, 3)  # 2 of 3 windows drawn
    red = (img[..., 0] == 255) & (img[..., 1] == 0) & (img[..., 2] == 0)
    outlined = tile(red, 0, 1)
    assert outlined[0].all() and outlined[-1].all() and outlined[:, 0].all() and outlined[:, -1].all()
    np.testing.assert_array_equal(tile(img, 0, 1)[S // 2, S // 2], [0, 200, 0])  # inside untouched
    assert red.sum() == outlined.sum()  # no other tile, gap or neighbour is red
    np.testing.assert_array_equal(tile(img, 1, 0), np.broadcast_to([0, 200, 0], (S, S, 3)))
    assert (img[:GAP] == 128).all()


def test_montage_errors(tmp_path: Path) -> None:
    with pytest.raises(MilmerInputError, match="'path': expected a '.png' file, got 'm.jpg'"):
        save_montage(tiny_windows(), tmp_path / "m.jpg")
    with pytest.raises(MilmerInputError, match="'max_windows': expected an integer > 0, got 0"):
        save_montage(tiny_windows(), tmp_path / "m.png", max_windows=0)
    with pytest.raises(MilmerInputError, match="'face_windows': it has no windows"):
        save_montage(tiny_windows(0), tmp_path / "m.png")
