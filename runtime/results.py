"""What a prediction run returns: one :class:`WindowPrediction` per EEG window, the run's
:class:`RunStats`, and :class:`PredictionResult` holding both with the settings.

Plain data, no inference: output rendering (:mod:`.report`) imports these types, not the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .eeg.report import EEGNote
from .face.extract import FaceExtractionStats, FaceWindow
from .recording import Coverage
from .spec import ModelSpec
from .timebase import Alignment

__all__ = ["STAGES", "PredictionResult", "RunStats", "WindowPrediction", "face_flags"]

#: Timed stages, in pipeline order (seconds in :attr:`RunStats.timings`).
#: Their sum is the scoring thread's time, about the run's wall time. 'faces' is the time the
#: scoring thread waited for the face stream (decode + detect + crop, or, with the overlap on,
#: only what the background thread had not yet prepared; the decode/detect/crop split is in
#: ``RunStats.face.timings``).
STAGES: tuple[str, ...] = ("eeg_read", "eeg_preprocess", "faces", "normalise", "backbone", "fusion")


@dataclass(frozen=True)
class WindowPrediction:
    """The model's answer for one EEG window.

    index:         the window's position among all EEG windows of the recording
    start, end:    EEG time (s) of the window
    label:         the predicted class name (``class_names[class_index]``)
    probabilities: (C,) float32 softmax over the classes
    logits:        (C,) float32
    mil_weights:   (F,) float32 the MIL attention weight of each frame (sums to 1)
    selected:      (K,) int64 the top-k frames the fusion attended to, strongest first
    found:         (F,) bool where the detector found a face in the frame
    frame_times:   (F,) float64 video time (s) of each frame; NaN outside the video
    flags:         what makes the window less trustworthy (``EEGWindows.flags`` plus
                   ``'no-face'`` / ``'some-frames-without-face'``); empty when nothing is known
    frame_flags:   (F,) uint8 bits of ``face.extract.FRAME_FLAGS`` (no face, timing off, several
                   faces, outside the video); None when the face windows carried none

    A window without any face gets no emotion prediction (unless asked for with
    ``predict_without_face=True``): ``label`` is None, ``class_index`` -1, probabilities, logits
    and MIL weights NaN and ``selected`` empty; :attr:`predicted` is False. Its ``flags`` hold
    ``'no-face'``.
    """

    index: int
    start: float
    end: float
    label: str | None
    class_index: int
    probabilities: np.ndarray
    logits: np.ndarray
    mil_weights: np.ndarray
    selected: np.ndarray
    found: np.ndarray
    frame_times: np.ndarray
    flags: tuple[str, ...] = ()
    frame_flags: np.ndarray | None = None

    @property
    def predicted(self) -> bool:
        """The model scored this window (False for a window without a face)."""
        return self.label is not None

    @property
    def selected_weights(self) -> np.ndarray:
        """(K,) the MIL weights of the selected frames."""
        return self.mil_weights[self.selected]

    @property
    def faces_found(self) -> int:
        """Frames of the window with a detected face."""
        return int(self.found.sum())

    @property
    def n_frames(self) -> int:
        return int(self.found.size)

    @property
    def window_has_face(self) -> bool:
        return bool(self.found.any())


@dataclass
class RunStats:
    """Counts and timings gathered while :meth:`~.pipeline.Pipeline.run` streams (filled in as it goes).

    timings: stage -> seconds summed over the run (:data:`STAGES`)
    wall_s:  seconds from the call to :meth:`~.pipeline.Pipeline.run` to the last prediction
    """

    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    n_windows: int = 0
    n_frames: int = 0
    n_batches: int = 0
    max_batch: int = 0
    wall_s: float = 0.0
    coverage: Coverage | None = None
    alignment: Alignment | None = None  # the clocks that paired EEG and video (:mod:`.sync`)
    eeg_info: dict[str, Any] = field(default_factory=dict)
    notes: list[EEGNote] = field(default_factory=list)  # typed: code, severity, text
    source: dict[str, Any] = field(default_factory=dict)
    face: FaceExtractionStats = field(default_factory=FaceExtractionStats)
    #: Copies of the first ``keep_crops`` face windows (for a montage, :func:`~.face.plots.save_montage`).
    kept_crops: list[FaceWindow] = field(default_factory=list)


@dataclass
class PredictionResult:
    """All windows of one recording and how they were computed."""

    windows: list[WindowPrediction]
    spec: ModelSpec
    model_dir: Path
    settings: dict[str, Any]
    stats: RunStats

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    @property
    def seconds_covered(self) -> float:
        """Recording time predicted on (windows x window length)."""
        return len(self.windows) * self.spec.eeg.window_s

    @property
    def real_time_factor(self) -> float:
        """Processing time / recording time covered; below 1 is faster than real time."""
        return self.stats.wall_s / self.seconds_covered if self.seconds_covered else float("nan")

    def class_counts(self) -> dict[str, int]:
        """Predicted windows per class, every class listed."""
        counts = dict.fromkeys(self.class_names, 0)
        for w in self.windows:
            if w.label is not None:  # windows without a face have no class
                counts[w.label] += 1
        return counts


def face_flags(found: np.ndarray) -> tuple[str, ...]:
    """A window's face flags from its per-frame detections ``found`` (F,) bool."""
    if not found.any():
        return ("no-face",)
    return () if found.all() else ("some-frames-without-face",)
