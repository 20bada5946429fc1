"""Video + EEG -> one prediction per EEG window, streamed with flat memory.

The recording comes in through :func:`~.recording.open_recording` (EEG checked and preprocessed,
windows the video does not cover dropped with a warning), and the face
crops are STREAMED window by window (:func:`~.face.extract.iter_face_windows`). Up to ``batch``
windows (bags) are gathered into one preallocated buffer and scored together
(:meth:`Pipeline.score_bags`): the frames of all bags go through the backbone in one call, then
the fusion graph scores the bags with their EEG windows. Only one batch of crops is ever held,
so an hour-long recording needs no more memory than a minute of it.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ._check import MilmerInputError, check_option
from .backends.base import PRECISIONS, Precision, Runner
from .backends.registry import BACKENDS, DEVICES, Backend, check_backend_options, make_runner
from .face import extract as face_extract
from .face.extract import FaceExtractionStats, FaceWindow
from .model_dir import ModelBundle, load_model_dir
from .recording import Coverage, RecordingOptions, open_recording
from .spec import ModelSpec
from .windows import EEGWindows

__all__ = [
    "BAG_OUTPUTS",
    "CoverageWarning",
    "Pipeline",
    "PredictionResult",
    "RunStats",
    "STAGES",
    "WindowPrediction",
]

#: Keys of :meth:`Pipeline.score_bags`' result, in the order of ``spec.graph.fusion_outputs``.
BAG_OUTPUTS: tuple[str, ...] = ("logits", "probabilities", "mil_weights", "selected")
#: Timed stages, in pipeline order (seconds in :attr:`RunStats.timings`).
#: They do not overlap: their sum is the run's wall time less small overheads. 'faces' is the
#: time spent waiting for the face iterator (decode + detect + crop; the split is in
#: ``RunStats.face.timings``).
STAGES: tuple[str, ...] = ("eeg_read", "eeg_preprocess", "faces", "normalise", "backbone", "fusion")
#: Windows waiting for a batch to fill, at most (windows without a face take no batch slot).
_MAX_PENDING = 64
#: A progress bar appears (with ``progress=True``) from this many windows on.
PROGRESS_MIN_WINDOWS = 20


class CoverageWarning(UserWarning):
    """The video and the EEG differ in length; only their overlap is predicted."""


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
    """Counts and timings gathered while :meth:`Pipeline.run` streams (filled in as it goes).

    timings: stage -> seconds summed over the run (:data:`STAGES`)
    wall_s:  seconds from the call to :meth:`Pipeline.run` to the last prediction
    """

    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    n_windows: int = 0
    n_frames: int = 0
    n_batches: int = 0
    max_batch: int = 0
    wall_s: float = 0.0
    coverage: Coverage | None = None
    eeg_info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
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


def _check_batch(batch: int) -> int:
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise MilmerInputError(f"Invalid value for 'batch': expected an integer >= 1, got {batch!r}.")
    return int(batch)


def _backend_name(runner: Runner) -> str:
    return next(name for name, cls in BACKENDS.items() if isinstance(runner, cls))


#: Bags per backbone call when none is given, by the device the backbone runs on.
DEFAULT_BATCH = {"cpu": 2}
DEFAULT_BATCH_GPU = 16


def default_batch(device: str) -> int:
    """2 bags (20 frames) per call on a CPU, 16 on a GPU (see :class:`Pipeline`)."""
    return DEFAULT_BATCH.get(device, DEFAULT_BATCH_GPU)


class Pipeline:
    """An exported model ready to score recordings: both graphs loaded once.

    model:            a model directory or a :class:`~.model_dir.ModelBundle` from
                      :func:`~.model_dir.load_model_dir`
    backend:          'auto' (TensorRT when it can run here, else ONNX Runtime), 'ort' or 'trt'
    device:           'auto', 'cpu', 'cuda' or 'tensorrt' (ONNX Runtime's TensorRT provider)
    precision:        which graphs of the directory to load ('fp32', 'fp16', 'int8'); ``None``:
                      the bundle's, or 'fp32' for a directory. A bundle loaded at another
                      precision is an error.
    batch:            windows (bags) scored per backbone call: ``batch * frames_per_window`` frames;
                      ``None``: 2 on a CPU (larger batches are no faster there and cost memory:
                      6.7 GB peak at 8 with fp32 Swin-T), 16 on a GPU
    intra_op_threads: ONNX Runtime CPU threads per operator (``None``: the cores available)
    backend_options:  runner options per backend, passed through to the backends (validated by
                      :func:`~.backends.registry.check_backend_options`), e.g.
                      ``{'openvino': {'inference_precision': 'bf16', 'num_threads': 4}}``

    Use as a context manager (or call :meth:`close`) to free the sessions.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelBundle,
        *,
        backend: Backend = "auto",
        device: str = "auto",
        precision: Precision | None = None,
        batch: int | None = None,
        intra_op_threads: int | None = None,
        backend_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        check_option("backend", backend, ("auto", *BACKENDS))
        options = check_backend_options(backend_options)
        check_option("device", device, DEVICES)
        if precision is not None:
            check_option("precision", precision, PRECISIONS)
        if batch is not None:
            batch = _check_batch(batch)
        if isinstance(model, ModelBundle):
            if precision is not None and precision != model.precision:
                raise MilmerInputError(
                    f"Invalid value for 'precision': the model bundle was loaded at "
                    f"{model.precision!r}, got {precision!r}; load it with "
                    f"load_model_dir(..., precision={precision!r})."
                )
            bundle = model
        else:
            bundle = load_model_dir(model, precision=precision or "fp32")
        self.bundle = bundle
        self.spec = bundle.spec
        if intra_op_threads is not None:
            given = options.get("ort", {}).get("intra_op_num_threads", intra_op_threads)
            if given != intra_op_threads:
                raise MilmerInputError(
                    f"Invalid value for 'intra_op_threads': {intra_op_threads!r}, but backend_options['ort'] "
                    f"sets intra_op_num_threads={given!r}; give one of them."
                )
            options["ort"] = {**options.get("ort", {}), "intra_op_num_threads": intra_op_threads}
        t0 = time.perf_counter()
        self.swin = make_runner(
            backend, bundle.swin_path, device=device, precision=bundle.precision, options=options
        )
        self.fusion = make_runner(
            backend, bundle.fusion_path, device=device, precision=bundle.precision, options=options
        )
        self.swin.activate()
        try:
            self.fusion.activate()
        except BaseException:
            self.swin.deactivate()
            raise
        self.load_s = time.perf_counter() - t0
        self.batch = batch if batch is not None else default_batch(self.swin.device)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release both sessions (idempotent)."""
        self.swin.deactivate()
        self.fusion.deactivate()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def settings(self) -> dict[str, Any]:
        """What runs where: backends and devices per graph, precision, batch, load time."""
        return {
            "backend": {"swin": _backend_name(self.swin), "fusion": _backend_name(self.fusion)},
            "device": {"swin": self.swin.device, "fusion": self.fusion.device},
            "precision": self.bundle.precision,
            "batch": self.batch,
            "model_load_s": round(self.load_s, 4),
        }

    # ------------------------------------------------------------------ scoring
    def score_bags(
        self, eeg: np.ndarray, crops: np.ndarray, *, timings: dict[str, float] | None = None
    ) -> dict[str, np.ndarray]:
        """Score ``B`` bags: one backbone call on all their frames, one fusion call.

        eeg:   (B, C, T) float32 EEG windows (spec channels, microvolts)
        crops: (B, F, S, S, 3) uint8 RGB face crops
        timings: if given, seconds are added under 'normalise', 'backbone' and 'fusion'

        Returns logits (B, n_classes) float32, probabilities (B, n_classes) float32,
        mil_weights (B, F) float32, selected (B, top_k) int64.
        """
        spec = self.spec
        f, s = spec.face.frames_per_window, spec.face.frame_size
        c, t = spec.eeg.n_channels, spec.eeg.window_samples
        if not isinstance(crops, np.ndarray) or crops.dtype != np.uint8 or crops.ndim != 5 or crops.shape[1:] != (f, s, s, 3):
            got = f"{crops.dtype} {crops.shape}" if isinstance(crops, np.ndarray) else type(crops).__name__
            raise MilmerInputError(f"Invalid value for 'crops': expected (B, {f}, {s}, {s}, 3) uint8, got {got}.")
        n = crops.shape[0]
        if not isinstance(eeg, np.ndarray) or eeg.dtype != np.float32 or eeg.shape != (n, c, t):
            got = f"{eeg.dtype} {eeg.shape}" if isinstance(eeg, np.ndarray) else type(eeg).__name__
            raise MilmerInputError(f"Invalid value for 'eeg': expected ({n}, {c}, {t}) float32, got {got}.")
        if n == 0:
            raise MilmerInputError("Invalid value for 'crops': expected at least one bag, got 0.")
        from .face.crop import normalize

        g = spec.graph
        clock = time.perf_counter()
        frames = normalize(crops, spec.face.mean, spec.face.std).reshape(n * f, 3, s, s)  # (B*F, 3, S, S)
        tick = time.perf_counter()
        tokens = self.swin.infer({g.backbone_input: frames})[g.backbone_output]  # (B*F, P, D)
        del frames
        tock = time.perf_counter()
        tokens = tokens.reshape(n, f, g.tokens_per_frame, g.token_dim)  # (B, F, P, D)
        out = self.fusion.infer(dict(zip(g.fusion_inputs, (eeg, tokens))))
        end = time.perf_counter()
        if timings is not None:
            timings["normalise"] = timings.get("normalise", 0.0) + tick - clock
            timings["backbone"] = timings.get("backbone", 0.0) + tock - tick
            timings["fusion"] = timings.get("fusion", 0.0) + end - tock
        return {key: out[name] for key, name in zip(BAG_OUTPUTS, g.fusion_outputs)}

    # ------------------------------------------------------------------ streaming
    def run(
        self,
        video: str | os.PathLike[str],
        eeg: str | os.PathLike[str],
        *,
        offset_s: float = 0.0,
        baseline_s: float | None = None,
        options: RecordingOptions | None = None,
        progress: bool = False,
        stats: RunStats | None = None,
        predict_without_face: bool = False,
        keep_crops: int = 0,
    ) -> Iterator[WindowPrediction]:
        """Predict every EEG window the video covers, in time order, as a stream.

        video, eeg: the face video and the EEG recording (EDF/BDF/FIF/BrainVision, DEAP .dat)
        offset_s:   video time (s) at EEG t = 0 (ignored when ``options`` is given)
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
        # The coverage rule (a window is covered when its sampled frames are) is open_recording's.
        rec = open_recording(video, eeg, self.spec, options)
        stats.timings["eeg_read"] += rec.timings["eeg_read"]
        stats.timings["eeg_preprocess"] += rec.timings["eeg_preprocess"]
        stats.eeg_info = rec.eeg_info
        stats.coverage = rec.coverage
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
            offset_s=options.offset_s,
            video_info=rec.video_info,
            stats=stats.face,
        )
        return self._stream(
            kept, indices, faces, stats, started, progress=progress, predict_without_face=predict_without_face,
            keep_crops=keep_crops,
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
        return self._stream(
            eeg_windows, indices, iter(faces), stats, time.perf_counter(), progress=progress,
            predict_without_face=predict_without_face,
        )

    def _stream(
        self,
        eeg_windows: EEGWindows,
        indices: np.ndarray,
        faces: Iterator[FaceWindow],
        stats: RunStats,
        started: float,
        *,
        progress: bool,
        predict_without_face: bool = False,
        keep_crops: int = 0,
    ) -> Iterator[WindowPrediction]:
        """Gather up to ``batch`` windows into one buffer, score them, yield their predictions.

        indices: (W,) the recording-wide index of each row of ``eeg_windows``. Windows without
        a face take no slot in the buffer and are not scored (unless ``predict_without_face``).
        """
        spec = self.spec
        n_windows = len(indices)
        f, s = spec.face.frames_per_window, spec.face.frame_size
        size = min(self.batch, n_windows)
        # One batch of crops and EEG, reused: a window's crops are copied in and then let go.
        crop_buf = np.empty((size, f, s, s, 3), np.uint8)  # (B, F, S, S, 3)
        eeg_buf = np.empty((size, spec.eeg.n_channels, spec.eeg.window_samples), np.float32)  # (B, C, T)
        # (row, found, frame times, frame flags, slot in the buffers or None when not scored)
        pending: list[tuple[int, np.ndarray, np.ndarray, np.ndarray | None, int | None]] = []
        n_scored = 0
        bar = _progress_bar(n_windows) if progress and n_windows >= PROGRESS_MIN_WINDOWS else None
        try:
            exhausted = False
            while not exhausted:
                tick = time.perf_counter()
                window = next(faces, None)
                stats.timings["faces"] += time.perf_counter() - tick
                if window is None:
                    exhausted = True
                else:
                    found = np.asarray(window.found, bool)
                    if len(stats.kept_crops) < keep_crops:
                        stats.kept_crops.append(window._replace(crops=np.array(window.crops)))
                    slot = None
                    if predict_without_face or found.any():
                        slot = n_scored
                        crop_buf[slot] = window.crops
                        eeg_buf[slot] = eeg_windows.data[window.index]
                        n_scored += 1
                    flags = getattr(window, "flags", None)
                    pending.append((int(window.index), found, window.timestamps, flags, slot))
                    window = None  # the crops now live in crop_buf only
                # Faceless windows wait with the batch (they hold no crops); a long faceless
                # stretch is let out every _MAX_PENDING windows.
                if pending and (n_scored == size or len(pending) >= _MAX_PENDING or exhausted):
                    yield from self._flush(crop_buf, eeg_buf, pending, n_scored, eeg_windows, indices, stats)
                    pending, n_scored = [], 0
                    if bar is not None:
                        bar[0].update(bar[1], completed=stats.n_windows)
        finally:
            # A consumer that stops early must not leave the video open or the detector running.
            close = getattr(faces, "close", None)
            if close is not None:
                close()
            stats.wall_s = time.perf_counter() - started
            if bar is not None:
                bar[0].stop()

    def _flush(
        self,
        crop_buf: np.ndarray,
        eeg_buf: np.ndarray,
        pending: list[tuple[int, np.ndarray, np.ndarray, np.ndarray | None, int | None]],
        n_scored: int,
        eeg_windows: EEGWindows,
        indices: np.ndarray,
        stats: RunStats,
    ) -> Iterator[WindowPrediction]:
        out: dict[str, np.ndarray] = {}
        if n_scored:
            out = self.score_bags(eeg_buf[:n_scored], crop_buf[:n_scored], timings=stats.timings)
            stats.n_batches += 1
            stats.max_batch = max(stats.max_batch, n_scored)
        window_s = self.spec.eeg.window_s
        names = self.spec.class_names
        n_classes = len(names)
        for row, found, times, flags, b in pending:
            start = float(eeg_windows.starts[row])
            stats.n_windows += 1
            stats.n_frames += found.size
            common = dict(
                index=int(indices[row]),
                start=start,
                end=start + window_s,
                found=found.copy(),
                frame_times=np.asarray(times, np.float64).copy(),
                frame_flags=None if flags is None else np.asarray(flags, np.uint8).copy(),
                # quality: the EEG window's flags, then 'no-face' / 'some-frames-without-face'
                flags=tuple(eeg_windows.flags[row] if eeg_windows.flags else ()) + face_flags(found),
            )
            if b is None:  # no face in the window: no emotion prediction
                nan_c = np.full(n_classes, np.nan, np.float32)
                yield WindowPrediction(
                    label=None, class_index=-1, probabilities=nan_c, logits=nan_c.copy(),
                    mil_weights=np.full(found.size, np.nan, np.float32), selected=np.zeros(0, np.int64), **common,
                )
                continue
            probs = out["probabilities"][b]
            k = int(np.argmax(probs))
            yield WindowPrediction(
                label=names[k],
                class_index=k,
                probabilities=probs.copy(),
                logits=out["logits"][b].copy(),
                mil_weights=out["mil_weights"][b].copy(),
                selected=out["selected"][b].astype(np.int64),
                **common,
            )

    def predict(
        self,
        video: str | os.PathLike[str],
        eeg: str | os.PathLike[str],
        *,
        offset_s: float = 0.0,
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
            "offset_s": float(options.offset_s),
            "baseline_s": stats.eeg_info.get("baseline_s"),
            "trial": options.trial,
            "eeg_unit": eeg_opts.eeg_unit,
            "channel_map": eeg_opts.channel_map if isinstance(eeg_opts.channel_map, (str, type(None))) else dict(eeg_opts.channel_map),
            "interpolate_missing": eeg_opts.interpolate_missing,
            "predict_without_face": bool(predict_without_face),
        }
        return PredictionResult(
            windows=windows, spec=self.spec, model_dir=self.bundle.dir, settings=settings, stats=stats
        )


def face_flags(found: np.ndarray) -> tuple[str, ...]:
    """A window's face flags from its per-frame detections ``found`` (F,) bool."""
    if not found.any():
        return ("no-face",)
    return () if found.all() else ("some-frames-without-face",)


def _progress_bar(total: int) -> tuple[Any, Any] | None:
    """A started rich progress bar on stderr and its task; None when stderr is not a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        return None
    bar = Progress(
        TextColumn("Predicting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("windows"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task("predict", total=total)
    bar.start()
    return bar, task

