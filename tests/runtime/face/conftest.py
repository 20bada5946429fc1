"""Tiny test videos made at test time: a real face (scikit-image's astronaut) on a dark canvas.

Every frame carries its own index as a 10-bit code of black/white blocks in a bottom strip, so a
test can read back which frame the code chose, whatever the codec did to the pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

WIDTH, HEIGHT = 320, 240
FACE_SIDE = 140  # BlazeFace short-range needs the face to fill a good part of the frame
CODE_BITS = 10
CODE_Y0 = HEIGHT - 16  # the code strip: 10 blocks of 32 x 16 px

#: The astronaut's face region in the 512 x 512 photo (rows, cols).
_FACE_ROWS, _FACE_COLS = slice(30, 230), slice(125, 325)


def face_patch() -> np.ndarray:
    """(FACE_SIDE, FACE_SIDE, 3) uint8 RGB: the astronaut's face, resized."""
    import cv2
    from skimage import data

    face = data.astronaut()[_FACE_ROWS, _FACE_COLS]
    return cv2.resize(face, (FACE_SIDE, FACE_SIDE), interpolation=cv2.INTER_AREA)


def encode_index(frame: np.ndarray, k: int) -> None:
    """Draw ``k`` into the bottom strip of ``frame`` (RGB, in place)."""
    block = WIDTH // CODE_BITS
    for b in range(CODE_BITS):
        frame[CODE_Y0:, b * block : (b + 1) * block] = 255 if (k >> b) & 1 else 0


def decode_index(frame: np.ndarray) -> int:
    """Read back the index drawn by :func:`encode_index` (centre of each block, thresholded)."""
    block = WIDTH // CODE_BITS
    k = 0
    for b in range(CODE_BITS):
        patch = frame[CODE_Y0 + 4 : HEIGHT - 4, b * block + 8 : (b + 1) * block - 8]
        k |= int(patch.mean() > 127) << b
    return k


def face_position(k: int) -> tuple[int, int]:
    """Top-left (x, y) of the face in frame ``k``: it drifts to and fro, slowly, never jumping."""

    def bounce(v: int, span: int) -> int:
        v %= 2 * span
        return v if v <= span else 2 * span - v

    return 20 + bounce(k * 3, 160), 20 + bounce(k * 2, 60)


def write_video(
    path: Path,
    *,
    fps: float,
    n_frames: int,
    fourcc: str = "MJPG",
    blank: Callable[[int], bool] = lambda k: False,
) -> Path:
    """Write a test video: frame ``k`` has the face at :func:`face_position` unless ``blank(k)``."""
    import cv2

    face = face_patch()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (WIDTH, HEIGHT))
    assert writer.isOpened(), f"cannot write {path.name} with {fourcc}"
    for k in range(n_frames):
        frame = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
        if not blank(k):
            x, y = face_position(k)
            frame[y : y + FACE_SIDE, x : x + FACE_SIDE] = face
        encode_index(frame, k)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="session")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s at 20 fps (MJPG .avi); frames 30-34 (1.50-1.70 s) and 100-129 (5.0-6.5 s) blank."""
    path = tmp_path_factory.mktemp("video") / "face.avi"
    return write_video(path, fps=20, n_frames=160, blank=lambda k: 30 <= k < 35 or 100 <= k < 130)


@pytest.fixture(scope="session")
def blazeface():
    from milmer.runtime.face.detect import BlazeFaceDetector

    with BlazeFaceDetector(0.5) as det:
        yield det


def indices(frames: Sequence[np.ndarray]) -> list[int]:
    return [decode_index(f) for f in frames]
