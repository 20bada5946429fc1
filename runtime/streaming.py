"""Face windows in, predictions out, window by window with flat memory.

:func:`stream_predictions` gathers up to ``batch`` face windows (bags) into one preallocated
buffer, has the scorer (:class:`~.scoring.BagScorer`) score them, and yields one
:class:`~.results.WindowPrediction` per window, in window order. Only one batch of crops is
held (plus, with ``overlap``, the few windows read ahead), so an hour-long recording needs no
more memory than a minute of it.

With ``overlap`` (the default) the face windows -- video decode, face detection (frames batched
through the detector graph, ``detect_batch``) and cropping -- are produced in a background
thread (:class:`~.prefetch.Prefetch`) up to one batch (+1 window) ahead, while the model scores the
current batch. The predictions, their order and their flags are the same either way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from .face.extract import FaceWindow
from .results import RunStats, WindowPrediction, face_flags
from .scratch import release
from .spec import ModelSpec
from .windows import EEGWindows

__all__ = ["PROGRESS_MIN_WINDOWS", "BagScoring", "stream_predictions"]

#: Windows waiting for a batch to fill, at most (windows without a face take no batch slot).
_MAX_PENDING = 64
#: A progress bar appears (with ``progress=True``) from this many windows on.
PROGRESS_MIN_WINDOWS = 20


class BagScoring(Protocol):
    """What :func:`stream_predictions` needs of a scorer (a :class:`~.scoring.BagScorer`, or a
    remote one): the spec, the batch and ``score_bags``."""

    spec: ModelSpec
    batch: int

    def score_bags(
        self, eeg: np.ndarray, crops: np.ndarray, *, timings: dict[str, float] | None = None
    ) -> dict[str, np.ndarray]: ...


# (row, found, frame times, frame flags, slot in the buffers or None when not scored)
_Pending = tuple[int, np.ndarray, np.ndarray, "np.ndarray | None", "int | None"]


def stream_predictions(
    scorer: BagScoring,
    eeg_windows: EEGWindows,
    indices: np.ndarray,
    faces: Iterator[FaceWindow],
    stats: RunStats,
    started: float,
    *,
    progress: bool = False,
    predict_without_face: bool = False,
    keep_crops: int = 0,
    overlap: bool = True,
) -> Iterator[WindowPrediction]:
    """Gather up to ``scorer.batch`` windows into one buffer, score them, yield their predictions.

    eeg_windows: data (W, C, T) float32, starts (W,) s, flags
    indices:     (W,) the recording-wide index of each row of ``eeg_windows``
    faces:       one :class:`FaceWindow` per window to predict, ``index`` a row of ``eeg_windows``;
                 closed (``faces.close()``) when the stream ends or is closed early
    started:     ``time.perf_counter()`` when the run began (for ``stats.wall_s``)
    overlap:     produce the face windows in a background thread, one batch (+1 window) ahead

    Windows without a face take no slot in the buffer and are not scored (unless
    ``predict_without_face``). Nothing starts before the first prediction is asked for.
    """
    spec = scorer.spec
    n_windows = len(indices)
    f, s = spec.face.frames_per_window, spec.face.frame_size
    size = max(1, min(scorer.batch, n_windows))
    if overlap:
        from .prefetch import Prefetch

        faces = Prefetch(faces, depth=size, name="milmer-faces")
    # One batch of crops and EEG, reused: a window's crops are copied in and then let go.
    crop_buf = np.empty((size, f, s, s, 3), np.uint8)  # (B, F, S, S, 3)
    eeg_buf = np.empty((size, spec.eeg.n_channels, spec.eeg.window_samples), np.float32)  # (B, C, T)
    pending: list[_Pending] = []
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
                yield from _flush(scorer, crop_buf, eeg_buf, pending, n_scored, eeg_windows, indices, stats)
                pending, n_scored = [], 0
                release(eeg_windows.data)  # a long recording's windows in a scratch file: the batch read leaves RSS
                if bar is not None:
                    bar[0].update(bar[1], completed=stats.n_windows)
    finally:
        # A consumer that stops early (or an error) must not leave the video open, the detector
        # running or the background thread alive.
        close = getattr(faces, "close", None)
        if close is not None:
            close()
        stats.wall_s = time.perf_counter() - started
        if bar is not None:
            bar[0].stop()


def _flush(
    scorer: BagScoring,
    crop_buf: np.ndarray,
    eeg_buf: np.ndarray,
    pending: list[_Pending],
    n_scored: int,
    eeg_windows: EEGWindows,
    indices: np.ndarray,
    stats: RunStats,
) -> Iterator[WindowPrediction]:
    """Score the buffer's first ``n_scored`` bags and yield the pending windows' predictions."""
    out: dict[str, np.ndarray] = {}
    if n_scored:
        out = scorer.score_bags(eeg_buf[:n_scored], crop_buf[:n_scored], timings=stats.timings)
        stats.n_batches += 1
        stats.max_batch = max(stats.max_batch, n_scored)
    window_s = scorer.spec.eeg.window_s
    names = scorer.spec.class_names
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
