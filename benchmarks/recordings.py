"""The demo recordings a benchmark runs end to end: one per length, written once and reused."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .settings import DEMO_FPS, DEMO_SEED

__all__ = ["make_recordings"]


def make_recordings(folder: Path, lengths_s: Sequence[int], log: Any = None) -> dict[int, dict[str, Path]]:
    """Demo recordings (``video.mp4`` + ``eeg.edf``) of each length under ``folder/<n>s``,
    reusing one written earlier with the same length and seed."""
    from ..synthetic.recording_writer import write_recording

    result = {}
    for length in sorted(set(lengths_s)):
        target = folder / f"{length}s"
        truth = target / "truth.json"
        reuse = False
        if truth.is_file():
            known = json.loads(truth.read_text())
            reuse = known.get("duration_s") == length and known.get("seed", DEMO_SEED) == DEMO_SEED
        if not reuse:
            if log is not None:
                log(f"writing a {length} s demo recording")
            _, paths = write_recording(target, duration_s=float(length), fps=DEMO_FPS, seed=DEMO_SEED)
        result[length] = {"video": target / "video.mp4", "eeg": target / "eeg.edf"}
    return result
