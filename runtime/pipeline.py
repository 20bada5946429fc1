"""Video + EEG -> one prediction per EEG window, streamed with flat memory.

The recording comes in through :func:`~.recording.open_recording` (EEG checked and preprocessed,
windows the video does not cover dropped with a warning), the face crops are streamed window by
window (:func:`~.face.extract.iter_face_windows`), and :func:`~.streaming.stream_predictions`
scores them a batch at a time with the scorer the pipeline holds (:class:`~.scoring.Scorer`: the
loaded graphs, :class:`~.scoring.BagScorer`, or a server). With the
overlap on (the default) decode and face detection for the next windows run in a background
thread while the model scores the current batch.

The result types live in :mod:`.results`, bag scoring in :mod:`.scoring`, the streaming in
:mod:`.streaming`; their public names are importable from here too.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import numpy as np

from .backends.base import Precision
from .backends.registry import Backend
from .check import check_exclusive, check_type
from .face import extract as face_extract
from .face.detect import DetectorBuild
from .face.extract import FaceWindow
from .model_dir import ModelBundle
from .recording import RecordingOptions, open_recording
from .results import STAGES, PredictionResult, RunStats, WindowPrediction, face_flags
from .spec import ModelSpec
from .scoring import BAG_OUTPUTS, DEFAULT_BATCH, DEFAULT_BATCH_GPU, BagScorer, Scorer, default_batch
from .streaming import PROGRESS_MIN_WINDOWS, stream_predictions
from .windows import EEGWindows

__all__ = [
    "BAG_OUTPUTS",
    "BagScorer",
    "CoverageWarning",
    "DEFAULT_BATCH",
    "DEFAULT_BATCH_GPU",
    "PROGRESS_MIN_WINDOWS",
    "Pipeline",
    "PredictionResult",
    "RunStats",
    "STAGES",
    "Scorer",
    "WindowPrediction",
    "default_batch",
    "face_flags",
]


class CoverageWarning(UserWarning):
    """The video and the EEG differ in length; only their overlap is predicted."""


_P = TypeVar("_P", bound="Pipeline")


class Pipeline:
    """A model ready to score recordings: it holds a :class:`~.scoring.Scorer`.

    model: a model directory or :class:`~.model_dir.ModelBundle` (both graphs are then loaded
           here, by a :class:`~.scoring.BagScorer`), or a scorer already made (a ``BagScorer``, or
           :class:`~.serve.client.RemoteScorer` for a Triton server)
    backend, device, precision, batch, intra_op_threads, backend_options: as for
           :class:`~.scoring.BagScorer` (``batch=None``: 1 bag per call on a CPU, 16 on a GPU;
           ``backend_options``: runner options per backend, e.g. ``{'openvino': {'num_streams': 1}}``);
           only with a model directory or bundle
    overlap: decode and detect the faces of the next windows in a background thread while the
             model scores the current batch (default True; the predictions are the same either
             way, the thread holds at most one batch + 1 windows of crops more)

    Use as a context manager (or call :meth:`close`) to free the scorer's sessions.
    """

    #: Read the face stream ahead in a background thread (see :mod:`.streaming`).
    overlap: bool = True

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelBundle | Scorer,
        *,
        backend: Backend = "auto",
        device: str = "auto",
        precision: Precision | None = None,
        batch: int | None = None,
        intra_op_threads: int | None = None,
        overlap: bool = True,
        backend_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.overlap = check_type("overlap", overlap, bool)
        if isinstance(model, (str, os.PathLike, ModelBundle)):
            self.scorer: Scorer = BagScorer(
                model, backend=backend, device=device, precision=precision, batch=batch,
                intra_op_threads=intra_op_threads, backend_options=backend_options,
            )
        elif isinstance(model, Scorer):
            given = {
                "backend": None if backend == "auto" else backend, "device": None if device == "auto" else device,
                "precision": precision, "batch": batch, "intra_op_threads": intra_op_threads,
                "backend_options": backend_options,
            }
            for name, value in given.items():
                check_exclusive(
                    name, value, "model", f"a made scorer ({type(model).__name__})",
                    hint="give the options to the scorer, not to Pipeline",
                )
            self.scorer = model
        else:
            check_type("model", model, (str, os.PathLike, ModelBundle, Scorer), "a model directory, a ModelBundle or a scorer")

    # ------------------------------------------------------------------ the scorer's
    @property
    def spec(self) -> ModelSpec:
        """The model's :class:`~.spec.ModelSpec`."""
        return self.scorer.spec

    @property
    def batch(self) -> int:
        """Bags per scoring call."""
        return self.scorer.batch

    @property
    def settings(self) -> dict[str, Any]:
        """What runs where (the scorer's settings)."""
        return self.scorer.settings

    def score_bags(
        self, eeg: np.ndarray, crops: np.ndarray, *, timings: dict[str, float] | None = None
    ) -> dict[str, np.ndarray]:
        """The scorer's :meth:`~.scoring.Scorer.score_bags`: eeg (B, C, T) float32, crops
        (B, F, S, S, 3) uint8 -> logits, probabilities, mil_weights, selected."""
        return self.scorer.score_bags(eeg, crops, timings=timings)

    def close(self) -> None:
        """Release the scorer (idempotent)."""
        self.scorer.close()

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ streaming
    def run(
        self,
        video: str | os.PathLike[str],
        eeg: str | os.PathLike[str],
        *,
        offset_s: float | None = None,
        baseline_s: float | None = None,
        options: RecordingOptions | None = None,
        progress: bool = False,
        stats: RunStats | None = None,
        predict_without_face: bool = False,
        keep_crops: int = 0,
    ) -> Iterator[WindowPrediction]:
        """Predict every EEG window the video covers, in time order, as a stream.

        video, eeg: the face video and the EEG recording (EDF/BDF/FIF/BrainVision, DEAP .dat)
        offset_s:   video time (s) at EEG t = 0; None: from the evidence (``--offset auto``,
                    :mod:`~.sync`); ignored when ``options`` is given
        baseline_s: seconds to drop at the EEG's start (None: 3 for DEAP .dat, else 0)
        options:    all recording options (:class:`~.recording.RecordingOptions`)
        progress:   show a progress bar on stderr (from :data:`PROGRESS_MIN_WINDOWS` windows)
        stats:      filled in with counts, timings and coverage while the stream runs
        predict_without_face: score windows where no frame shows a face too (by default they
                    get no prediction: ``label`` None, see :class:`WindowPrediction`)
        keep_crops: keep copies of the first this many face windows in ``stats.kept_crops``

        The recording comes in through :func:`~.recording.open_recording` (files checked, EEG
        preprocessed, coverage decided) before the first prediction is asked for; a :class:`CoverageWarning` says which windows (seconds,
        side) are left out when the video and the EEG differ in length.
        """
        stats = stats if stats is not None else RunStats()
        started = time.perf_counter()
        options = options or RecordingOptions(offset_s=offset_s, baseline_s=baseline_s)
        # The face detector is built on another core while the EEG is read and preprocessed
        # (single-threaded): its graph, ONNX Runtime's import and session are start-up cost.
        detector = DetectorBuild(self.spec.face.detector, self.spec.face.min_confidence)
        try:
            # The coverage rule (a window is covered when its sampled frames are) is open_recording's.
            rec = open_recording(video, eeg, self.spec, options)
            stats.timings["eeg_read"] += rec.timings["eeg_read"]
            stats.timings["eeg_preprocess"] += rec.timings["eeg_preprocess"]
            stats.eeg_info = rec.eeg_info
            stats.coverage = rec.coverage
            stats.alignment = rec.alignment
            stats.notes = list(rec.notes)
            stats.source = rec.source
            message = rec.coverage.describe()
            if message is not None:
                warnings.warn(message, CoverageWarning, stacklevel=2)
            kept, indices = rec.windows, rec.indices
            faces = face_extract.iter_face_windows(
                rec.video,
                kept.starts,
                self.spec.face,
                self.spec.eeg.window_s,
                video_info=rec.video_info,
                stats=stats.face,
                alignment=rec.alignment,
                detector=detector,  # closed by the face stream from here on
            )
        except BaseException:
            detector.close()
            raise
        return stream_predictions(
            self.scorer, kept, indices, faces, stats, started, progress=progress,
            predict_without_face=predict_without_face, keep_crops=keep_crops, overlap=self.overlap,
        )

    def run_windows(
        self,
        eeg_windows: EEGWindows,
        faces: Iterable[FaceWindow],
        *,
        progress: bool = False,
        stats: RunStats | None = None,
        predict_without_face: bool = False,
    ) -> Iterator[WindowPrediction]:
        """Predict already-cut windows: ``faces`` yields one :class:`FaceWindow` per EEG window.

        eeg_windows: data (W, C, T) float32, starts (W,) seconds
        faces:       any iterable of ``FaceWindow(index, crops (F, S, S, 3) uint8, found (F,),
                     timestamps (F,))``, ``index`` into ``eeg_windows``; consumed lazily
        """
        stats = stats if stats is not None else RunStats()
        indices = np.arange(len(eeg_windows.starts))
        return stream_predictions(
            self.scorer, eeg_windows, indices, iter(faces), stats, time.perf_counter(), progress=progress,
            predict_without_face=predict_without_face, overlap=self.overlap,
        )

    def predict(
        self,
        video: str | os.PathLike[str],
        eeg: str | os.PathLike[str],
        *,
        offset_s: float | None = None,
        baseline_s: float | None = None,
        options: RecordingOptions | None = None,
        progress: bool = False,
        predict_without_face: bool = False,
        keep_crops: int = 0,
    ) -> PredictionResult:
        """All of :meth:`run`'s predictions with their settings, counts and timings."""
        stats = RunStats()
        options = options or RecordingOptions(offset_s=offset_s, baseline_s=baseline_s)
        windows = list(
            self.run(
                video, eeg, options=options, progress=progress, stats=stats,
                predict_without_face=predict_without_face, keep_crops=keep_crops,
            )
        )
        eeg_opts = options.eeg
        settings = {
            **self.settings,
            "video": str(video),
            "eeg": str(eeg),
            "offset_s": round(stats.alignment.offset_s, 6) if stats.alignment is not None else options.offset_s,
            "alignment": stats.alignment.to_dict() if stats.alignment is not None else None,
            "baseline_s": stats.eeg_info.get("baseline_s"),
            "trial": options.trial,
            "eeg_unit": eeg_opts.eeg_unit,
            "channel_map": eeg_opts.channel_map if isinstance(eeg_opts.channel_map, (str, type(None))) else dict(eeg_opts.channel_map),
            "interpolate_missing": eeg_opts.interpolate_missing,
            "predict_without_face": bool(predict_without_face),
        }
        return PredictionResult(
            windows=windows, spec=self.spec, model_dir=self.scorer.location, settings=settings, stats=stats
        )
