"""The live loop: windows of the EEG stream's time axis, scored as soon as their EEG and frames are in.

Window ``k`` spans ``[t0 + k * hop_s, t0 + k * hop_s + window_s)`` in LSL time, ``t0`` the first EEG
sample's timestamp. Its EEG is the ``window_s * sfreq`` samples from the first one stamped at or
after its start (the same samples a recording of the stream holds at the same positions: a
recording replayed offline gives the same windows). A window is decided when:

- its EEG and a frame after its last sampled instant have arrived (then it is scored), or
- ``max_delay_s`` after its end (LSL clock) something is still missing: it is **skipped** with the
  reason (``eeg-stall``: samples not in; ``eeg-gap``: samples lost inside it; ``video-stall``: an
  instant without a frame within ``stale_s``), never scored on older data.

Windows that end before the ICA is ready (inside the calibration period, or while it is being
fitted after it) wait for the fit, then are scored (flag ``calibration``; their latency is not
counted in the steady-state p50/p95). Everything else is the offline scoring path
(:func:`~..streaming.stream_predictions`, batch 1): the same flags, the same no-face rule.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..check import MilmerInputError, check_positive
from ..results import RunStats, WindowPrediction
from ..streaming import BagScoring, stream_predictions
from ..windows import EEGWindows
from .buffers import EEGBuffer, FrameBuffer
from .eeg import LiveEEG
from .faces import LiveFaces

__all__ = ["LiveConfig", "LiveEngine", "LiveWindow", "SKIP_REASONS"]

#: Why a window was not scored.
SKIP_REASONS: dict[str, str] = {
    "eeg-stall": "the EEG samples of the window had not arrived max_delay_s after its end",
    "eeg-gap": "EEG samples inside the window were lost (a gap in the timestamps)",
    "eeg-rejected": "the window's EEG failed the offline checks (amplitude, channels)",
    "video-stall": "an instant of the window had no video frame within stale_s",
    "calibrating": "the session stopped before the ICA (fitted on the calibration period) was ready",
    "behind": "the machine had fallen behind: the window was still undecided max_latency_s after its end",
}


@dataclass(frozen=True)
class LiveConfig:
    """Settings of a live session (validated here: the CLI's values arrive as they are).

    hop_s:         seconds between window starts (window_s = the spec's, 3 s)
    duration_s:    stop after this long (None: until stopped)
    calibration_s: seconds of EEG the ICA is fitted on before the first window is scored
    context_s:     EEG before each window that is filtered with it (the filters' run-in)
    lookahead_s:   EEG after each window's end that is waited for and filtered with it (0: the
                   window's end is at the filter's edge; 2: offline's filtering, 2 s more latency)
    max_delay_s:   how long after a window's end (+ lookahead) its data may still arrive
    stale_s:       a sampled instant whose nearest frame is farther than this has no frame
    max_latency_s: a window still undecided this long after its end (+ lookahead) is skipped
                   ('behind': the machine cannot keep up; the output stays current instead of
                   drifting ever later); windows of the calibration period excepted
    """

    hop_s: float = 3.0
    duration_s: float | None = None
    calibration_s: float = 30.0
    context_s: float = 5.0
    lookahead_s: float = 0.0
    max_delay_s: float = 2.0
    stale_s: float = 0.5
    max_latency_s: float = 5.0
    predict_without_face: bool = False

    def __post_init__(self) -> None:
        check_positive("hop_s", self.hop_s)
        if self.duration_s is not None:
            check_positive("duration_s", self.duration_s)
        check_positive("calibration_s", self.calibration_s)
        check_positive("context_s", self.context_s, allow_zero=True)
        check_positive("lookahead_s", self.lookahead_s, allow_zero=True)
        check_positive("max_delay_s", self.max_delay_s)
        check_positive("stale_s", self.stale_s)
        check_positive("max_latency_s", self.max_latency_s)


@dataclass(frozen=True)
class LiveWindow:
    """One decision (scored or skipped).

    start, end:  LSL time (s) of the window
    prediction:  the offline :class:`~..results.WindowPrediction` (``frame_times`` in LSL time);
                 None when skipped
    skipped:     the reason (a key of :data:`SKIP_REASONS`), None when scored
    latency_s:   window end -> decision out (LSL clock)
    calibration: the window waited for the calibration (latency not steady-state)
    """

    index: int
    start: float
    end: float
    prediction: WindowPrediction | None
    skipped: str | None
    latency_s: float
    calibration: bool = False


@dataclass
class LiveStats:
    """Counts of a session: ``scored`` windows went through the model's path (``no_face`` of them
    had no face: no label, as offline); ``latencies`` of the steady-state (non-calibration) ones."""

    windows: int = 0
    scored: int = 0
    no_face: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def latency_percentiles(self) -> dict[str, float | None]:
        lat = np.asarray(self.latencies)
        if not lat.size:
            return {"p50": None, "p95": None}
        return {"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95))}


#: What _face_window answers when the video has ended / while a window's frames may still come.
_END = object()
_WAIT = object()
#: A window whose frames had left the buffer before its crops were made (the loop was behind).
_EXPIRED = object()


class LiveEngine:
    """Turns the buffers into decisions, handing each to ``emit``.

    scorer: the loaded model (:class:`~..scoring.BagScorer`)
    eeg, frames: the buffers the stream threads fill; ``eeg_scale`` turns the stream's unit into volts
    clock: the LSL clock (``pylsl.local_clock``)
    """

    def __init__(
        self,
        scorer: BagScoring,
        config: LiveConfig,
        live_eeg: LiveEEG,
        faces: LiveFaces,
        eeg: EEGBuffer,
        frames: FrameBuffer,
        emit: Callable[[LiveWindow], None],
        *,
        clock: Callable[[], float],
        eeg_scale: float = 1e-6,
    ) -> None:
        self.scorer, self.config, self.live_eeg, self.faces = scorer, config, live_eeg, faces
        self.eeg, self.frames, self.emit, self.clock, self.eeg_scale = eeg, frames, emit, clock, eeg_scale
        self.stats = LiveStats()
        self.run_stats = RunStats()
        self.stop = threading.Event()
        #: True once the video source can deliver no more frames (a file played to its end)
        self.video_ended: Callable[[], bool] = lambda: False
        self.t0: float | None = None
        self.calibrated_at: float | None = None
        self._calibration_error: BaseException | None = None
        # Context in whole resampling steps (stream samples per gcd of the rates), so that the
        # window starts on an output sample: 2 at 256 -> 128 Hz, 125 at 500 -> 128 Hz.
        rate, model_rate = int(round(live_eeg.sfreq)), int(round(live_eeg.spec.sfreq))
        self._step = rate // math.gcd(rate, model_rate)
        self._context_n = int(config.context_s * live_eeg.sfreq) // self._step * self._step
        self._lookahead_n = -(-int(round(config.lookahead_s * live_eeg.sfreq)) // self._step) * self._step
        # Windows cropped ahead of their EEG at most (the calibration, the lookahead, the delays):
        # an EEG stream that never comes holds this many windows' crops, not a session's.
        wait_s = config.calibration_s + config.lookahead_s + 2 * config.max_delay_s
        self._max_pending = math.ceil(wait_s / config.hop_s) + 2

    # ------------------------------------------------------------------ loop
    def run(self, should_stop: Callable[[], bool] = lambda: False, poll_s: float = 0.01) -> LiveStats:
        """Decide windows until ``stop`` is set or ``should_stop()``; returns the counts."""
        started = self.clock()
        while not self._done(should_stop, started) and self.eeg.n_total == 0:
            time.sleep(poll_s)
        if self.eeg.n_total == 0:
            return self.stats
        first = self.eeg.read(self.eeg.first_kept, 1)
        assert first is not None
        self.t0 = float(first.stamps[0])
        calib_n = int(round(self.config.calibration_s * self.live_eeg.sfreq))
        k = k_face = 0  # the next window to decide; the next one to crop faces for
        faces: dict[int, Any] = {}  # crops waiting for their EEG (or None: no frames)
        video_over = False
        calibrating: threading.Thread | None = None
        while not self._done(should_stop, started):
            busy = False
            # Faces as soon as a window's frames are in, during the calibration too: frames are
            # kept seconds, the crops of a window (F x S x S x 3 bytes) until its EEG is scored.
            if not video_over and k_face - k < self._max_pending:
                face = self._face_window(k_face)
                if face is _END:
                    video_over = True
                elif face is not _WAIT:
                    faces[k_face] = face
                    k_face, busy = k_face + 1, True
            if calibrating is None and self.eeg.n_total >= calib_n:
                sl = self.eeg.read(0, calib_n)
                if sl is None:
                    raise MilmerInputError("Invalid value for '--calibration': longer than the EEG buffer kept.")
                # In a thread (seconds of ICA): the faces keep being cropped meanwhile.
                calibrating = threading.Thread(target=self._calibrate, args=(sl.data * self.eeg_scale,), daemon=True)
                calibrating.start()
            if self._calibration_error is not None:
                raise self._calibration_error
            if k < k_face and self.calibrated_at is not None:
                decided = self._decide(k, faces[k])
                if decided is not None:
                    del faces[k]
                    self._count(decided)
                    self.emit(decided)
                    k, busy = k + 1, True
            elif video_over and k >= k_face:
                break  # a file played to its end: nothing more can be scored, nothing is skipped
            if not busy:
                time.sleep(poll_s)
        if self.calibrated_at is None:
            self._account_uncalibrated(k)
        return self.stats

    def _account_uncalibrated(self, k: int) -> None:
        """Stopped before the ICA was ready: windows from ``k`` whose EEG and frames had arrived
        are emitted as skipped ``calibrating`` (every window that was in is accounted for)."""
        win_n = self.live_eeg.window_n
        while True:
            start, _ = self._bounds(k)
            first = self.eeg.index_at(start)
            eeg_in = first is not None and self.eeg.n_total >= first + win_n
            if not eeg_in or self.frames.last_stamp() < self.faces.instants(start)[-1]:
                return
            w = self._skip(k, *self._bounds(k), "calibrating")
            self._count(w)
            self.emit(w)
            k += 1

    def _calibrate(self, data: np.ndarray) -> None:
        try:
            self.live_eeg.calibrate(data)
            self.calibrated_at = self.clock()
        except BaseException as err:  # noqa: BLE001 - raised in the loop
            self._calibration_error = err

    def _bounds(self, k: int) -> tuple[float, float]:
        assert self.t0 is not None
        start = self.t0 + k * self.config.hop_s
        return start, start + self.live_eeg.spec.window_s

    def _done(self, should_stop: Callable[[], bool], started: float) -> bool:
        if self.stop.is_set() or should_stop():
            return True
        return self.config.duration_s is not None and self.clock() - started >= self.config.duration_s

    def _count(self, w: LiveWindow) -> None:
        self.stats.windows += 1
        if w.skipped:
            self.stats.skipped[w.skipped] = self.stats.skipped.get(w.skipped, 0) + 1
            return
        self.stats.scored += 1
        self.stats.no_face += int(w.prediction is not None and w.prediction.label is None)
        if not w.calibration:
            self.stats.latencies.append(w.latency_s)

    # ------------------------------------------------------------------ one window
    def _face_window(self, k: int) -> Any:
        """Window ``k``'s crops (None: an instant without a frame), ``_WAIT`` while its frames may
        still come, ``_END`` when the video has ended before them."""
        start, end = self._bounds(k)
        video_in = self.frames.last_stamp() >= self.faces.instants(start)[-1]
        if not video_in:
            if self.video_ended():
                return _END
            if self.clock() <= end + self.config.max_delay_s:
                return _WAIT
        first, oldest = self.frames.first_stamp, self.frames.oldest_stamp()
        if first is not None and first <= start and start < oldest:
            return _EXPIRED  # frames were there and have been let go: the loop is behind
        return self.faces.window(0, start, self.frames)  # row 0 of the one-window batch in _decide

    def _decide(self, k: int, face: Any) -> LiveWindow | None:
        """Window ``k``'s decision, or None while its EEG may still come."""
        start, end = self._bounds(k)
        late = self.clock() > end + self.config.lookahead_s + self.config.max_delay_s
        # The loop was held up so long that the window's frames or samples have left the buffers:
        # the machine is behind, nothing was lost by the streams.
        if face is _EXPIRED or start < self.eeg.oldest_stamp() - self.eeg.gap_s:
            return self._skip(k, start, end, "behind")
        win_n = self.live_eeg.window_n
        first = self.eeg.index_at(start)
        eeg_in = first is not None and self.eeg.n_total >= first + win_n + self._lookahead_n
        if not eeg_in:
            return self._skip(k, start, end, "eeg-stall") if late else None
        assert first is not None
        sl = self.eeg.read(first, win_n + self._lookahead_n)
        if sl is None:  # fell out of the buffer (the loop was held up)
            return self._skip(k, start, end, "behind")
        if len(self.eeg.gaps_between(sl)) or sl.stamps[0] - start > self.eeg.gap_s:
            return self._skip(k, start, end, "eeg-gap")
        if face is None:
            return self._skip(k, start, end, "video-stall")
        calibration = self.calibrated_at is not None and end <= self.calibrated_at
        if not calibration and self.clock() - end - self.config.lookahead_s > self.config.max_latency_s:
            return self._skip(k, start, end, "behind")
        context = self._context(first)
        data = self.eeg.read(first - context, context + win_n + self._lookahead_n)
        assert data is not None
        try:
            window_uv, flags = self.live_eeg.window(data.data * self.eeg_scale, context)
        except MilmerInputError:
            return self._skip(k, start, end, "eeg-rejected")
        eeg_windows = EEGWindows(data=window_uv[None], starts=np.array([start]), flags=[flags])
        pred = next(
            stream_predictions(
                self.scorer, eeg_windows, np.array([k]), iter([face]), self.run_stats, time.perf_counter(),
                predict_without_face=self.config.predict_without_face, overlap=False,
            )
        )
        pred = _replace(pred, flags=pred.flags + (("calibration",) if calibration else ()))
        return LiveWindow(k, start, end, pred, None, self.clock() - end, calibration)

    def _context(self, first: int) -> int:
        """Samples before ``first`` filtered with the window: up to ``context_s``, none across a gap."""
        context = min(self._context_n, first - self.eeg.first_kept)
        if context <= 0:
            return 0
        sl = self.eeg.read(first - context, context + 1)
        assert sl is not None
        gaps = self.eeg.gaps_between(sl)
        if len(gaps):
            context -= int(gaps[-1])
        return context // self._step * self._step

    def _skip(self, k: int, start: float, end: float, reason: str) -> LiveWindow:
        return LiveWindow(k, start, end, None, reason, self.clock() - end)


def _replace(pred: WindowPrediction, **changes: Any) -> WindowPrediction:
    import dataclasses

    return dataclasses.replace(pred, **changes)


def scale_to_volts(units: Sequence[str]) -> float:
    """Factor from the stream's unit to volts: LSL's convention is microvolts (also when unstated)."""
    known = {"v": 1.0, "volts": 1.0, "volt": 1.0, "mv": 1e-3, "millivolts": 1e-3, "uv": 1e-6, "µv": 1e-6,
             "microvolts": 1e-6, "microvolt": 1e-6, "nv": 1e-9, "nanovolts": 1e-9, "": 1e-6}  # fmt: skip
    found = {known.get(u.strip().lower()) for u in units}
    if None in found or len(found) > 1:
        raise MilmerInputError(
            f"Invalid value for '--eeg-stream': channel units {sorted(set(units))} are not one of "
            f"{sorted(k for k in known if k)}; set the stream's desc/channels/channel/unit."
        )
    return float(found.pop())
