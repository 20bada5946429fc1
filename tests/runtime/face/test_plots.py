"""Crop montage (runtime/face/plots.py): labelled rows and tiles, no-face and MIL-selected marks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.face.plots import frame_caption, save_montage, window_caption
from milmer.runtime.windows import FaceWindows

S = 32
GAP, HEADER, CAPTION = 4, 16, 14


def tiny_windows(n_windows: int = 3) -> FaceWindows:
    frames = np.zeros((n_windows, 2, S, S, 3), np.uint8)
    frames[..., 1] = 200  # green tiles: red pixels can only come from the outline
    found = np.ones((n_windows, 2), bool)
    found[:1, 1] = False
    times = 3.0 * np.arange(n_windows)[:, None] + np.array([0.75, 2.25])
    return FaceWindows(frames=frames, found=found, timestamps=times)


def origin(r: int, c: int) -> tuple[int, int]:
    return GAP + r * (HEADER + S + CAPTION + GAP) + HEADER, GAP + c * (S + GAP)


def tile(img: np.ndarray, r: int, c: int) -> np.ndarray:
    y, x = origin(r, c)
    return img[y : y + S, x : x + S]


def rendered(text: str, color=(255, 255, 255), width: int = 200, height: int = 20, baseline: int = 12) -> np.ndarray:
    import cv2

    img = np.full((height, width, 3), 128, np.uint8)
    cv2.putText(img, text, (0, baseline), cv2.FONT_HERSHEY_SIMPLEX, 0.35, color, 1, cv2.LINE_AA)
    return img


def test_captions() -> None:
    assert window_caption(2, 6.0, 3.0) == "window 2: 6.0-9.0 s"
    assert window_caption(0, None, None) == "window 0"
    assert (frame_caption(1.5, True), frame_caption(1.5, False), frame_caption(np.nan, False)) == (
        "1.50s", "1.50s no face", "outside"
    )  # fmt: skip


def test_montage_grid_labels_and_marks(tmp_path: Path) -> None:
    import cv2

    fw = tiny_windows(3)
    path = save_montage(
        fw, tmp_path / "sub" / "montage.png", max_windows=2, window_starts=np.array([0.0, 3.0, 6.0]),
        selected=np.array([[1], [0]]),
    )
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert img.shape == (2 * (HEADER + S + CAPTION + GAP) + GAP, 2 * (S + GAP) + GAP, 3)  # 2 of 3 windows
    # Row labels: the window's EEG time, drawn exactly as cv2.putText draws the expected text.
    for r, text in enumerate(["window 0: 0.0-3.0 s", "window 1: 3.0-6.0 s"]):
        y0 = GAP + r * (HEADER + S + CAPTION + GAP)
        want = rendered(text, width=img.shape[1] - GAP, height=HEADER, baseline=HEADER - 4)
        np.testing.assert_array_equal(img[y0 : y0 + HEADER, GAP:], want)
    # Tile captions: the frame's video time; the no-face frame's caption is red and says so.
    for r, c, text, color in [(0, 0, "0.75s", (255, 255, 255)), (0, 1, "2.25s no face", (255, 0, 0)),
                              (1, 1, "5.25s", (255, 255, 255))]:  # fmt: skip
        y, x = origin(r, c)
        region = img[y + S : y + S + CAPTION, x : x + S]
        want = rendered(text, color, width=S + GAP + S, height=CAPTION, baseline=CAPTION - 3)[:, :S]
        np.testing.assert_array_equal(region, want)
    # Red outline on the no-face tile (0, 1), inside untouched; MIL-selected tiles get a gold bar.
    red = (img[..., 0] == 255) & (img[..., 1] == 0) & (img[..., 2] == 0)
    outlined = tile(red, 0, 1)
    assert outlined[-1].all() and outlined[:, 0].all() and outlined[:, -1].all()
    np.testing.assert_array_equal(tile(img, 0, 1)[S // 2, S // 2], [0, 200, 0])
    gold = (img[..., 0] == 255) & (img[..., 1] == 215) & (img[..., 2] == 0)
    assert [tile(gold, r, c)[0, S // 2] for r in (0, 1) for c in (0, 1)] == [False, True, True, False]
    assert gold.sum() == tile(gold, 0, 1).sum() + tile(gold, 1, 0).sum() > 0
    np.testing.assert_array_equal(tile(img, 1, 1), np.broadcast_to([0, 200, 0], (S, S, 3)))  # plain tile
    assert not tile(red, 0, 0).any() and not tile(red, 1, 0).any() and not tile(red, 1, 1).any()
    assert (img[:GAP] == 128).all()


def test_montage_errors(tmp_path: Path) -> None:
    with pytest.raises(MilmerInputError, match="'path': unsupported file type '.jpg' for 'm.jpg'; expected one of '.png'"):
        save_montage(tiny_windows(), tmp_path / "m.jpg")
    with pytest.raises(MilmerInputError, match="'max_windows': expected an integer >= 1, got 0"):
        save_montage(tiny_windows(), tmp_path / "m.png", max_windows=0)
    with pytest.raises(MilmerInputError, match="'face_windows': expected at least one window to draw, got none"):
        save_montage(tiny_windows(0), tmp_path / "m.png")
