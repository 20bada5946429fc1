"""Write files in the layout and formats of the DEAP dataset.

- ``data_preprocessed_python/sXX.dat``: a pickle (protocol 2, as the original Python 2 files;
  read it with ``pickle.load(f, encoding="latin1")``) of ``{"data": (trials, 40, samples),
  "labels": (trials, 4)}``, both float64. Real DEAP ``data`` is float64 too: one file is
  40 * 40 * 8064 * 8 bytes (~99 MB). Rows are in experiment (video) order.
- ``face_video/sXX/sXX_trialYY.avi``: one video per trial, numbered in presentation order.
- ``participant_ratings.csv``: DEAP's columns, one row per (participant, trial).
"""

from __future__ import annotations

import csv
import pickle
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "RATINGS_COLUMNS",
    "RatingRow",
    "dat_path",
    "video_path",
    "write_dat",
    "write_ratings_csv",
    "write_video",
]

RATINGS_COLUMNS = (
    "Participant_id", "Trial", "Experiment_id", "Start_time",
    "Valence", "Arousal", "Dominance", "Liking", "Familiarity",
)  # fmt: skip


@dataclass(frozen=True)
class RatingRow:
    """One line of ``participant_ratings.csv``; ``start_time_us`` is microseconds from session start."""

    participant_id: int
    trial: int
    experiment_id: int
    start_time_us: int
    valence: float
    arousal: float
    dominance: float
    liking: float
    familiarity: int


def dat_path(root: Path, subject: int) -> Path:
    return root / "data_preprocessed_python" / f"s{subject:02d}.dat"


def video_path(root: Path, subject: int, trial: int) -> Path:
    return root / "face_video" / f"s{subject:02d}" / f"s{subject:02d}_trial{trial:02d}.avi"


def write_dat(path: Path, data: np.ndarray, labels: np.ndarray) -> Path:
    """Pickle ``data: (T, 40, S) float64`` and ``labels: (T, 4) float64`` like DEAP's ``sXX.dat``."""
    assert data.ndim == 3 and data.shape[1] == 40 and data.dtype == np.float64, (data.shape, data.dtype)
    assert labels.shape == (data.shape[0], 4) and labels.dtype == np.float64, (labels.shape, labels.dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump({"labels": labels, "data": data}, f, protocol=2)
    return path


def _number(x: float) -> str:
    """DEAP writes whole ratings as ``7`` and others as ``6.06``."""
    return f"{x:g}"


def write_ratings_csv(path: Path, rows: Sequence[RatingRow]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(RATINGS_COLUMNS)
        for r in rows:
            writer.writerow([
                r.participant_id, r.trial, r.experiment_id, r.start_time_us,
                _number(r.valence), _number(r.arousal), _number(r.dominance), _number(r.liking),
                r.familiarity,
            ])  # fmt: skip
    return path


def write_video(
    path: Path, frames: Iterable[np.ndarray], fps: float, size: tuple[int, int], fourcc: str
) -> int:
    """Encode BGR ``frames`` ((H, W, 3) uint8, ``size`` = (W, H)) with OpenCV; returns the count."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc!r} video to {path.name!r} on this system.")
    n = 0
    try:
        for frame in frames:
            writer.write(frame)
            n += 1
    finally:
        writer.release()
    return n
