"""One live session: resolve the EEG stream, open the video, load the model, run the engine, close
everything in order (Ctrl-C, SIGTERM and ``duration_s`` all end here cleanly).

:func:`run_live` takes a :class:`LiveRequest` built once at the command line (checked there) and
returns the summary (also the last JSON line).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..eeg.preprocess import EEGInputOptions
from .engine import LiveConfig, LiveEngine, LiveWindow, scale_to_volts

__all__ = ["LiveRequest", "run_live"]


@dataclass(frozen=True)
class LiveRequest:
    """Everything ``milmer live`` was asked for (values checked by the CLI)."""

    model: Path
    eeg_stream: str | None
    video: str
    config: LiveConfig = field(default_factory=LiveConfig)
    eeg_stream_type: str | None = None
    out: Path | None = None
    lsl_out: str | None = None
    record: Path | None = None
    backend: str = "auto"
    device: str = "auto"
    precision: str | None = None
    threads: int | None = None
    eeg_options: EEGInputOptions = field(default_factory=EEGInputOptions)
    eeg_unit: str | None = None
    video_delay_s: float = 0.0
    video_speed: float = 1.0
    resolve_timeout_s: float = 10.0
    view: bool = True


def run_live(
    request: LiveRequest,
    *,
    on_window: Callable[[LiveWindow], None] | None = None,
    stop: threading.Event | None = None,
    backend_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run a session until ``request.config.duration_s``, Ctrl-C, SIGTERM or ``stop`` is set.

    on_window: also called with every decision (tests, embedding applications)
    Returns the summary record: counts, skips by reason, latency p50/p95 (s), the recording's alignment.
    """
    from ..face.detect import make_detector
    from ..scoring import BagScorer
    from .buffers import EEGBuffer, FrameBuffer
    from .eeg import LiveEEG
    from .faces import LiveFaces
    from .lsl import EEGInlet, local_clock, resolve_eeg
    from .output import JsonLines, LiveView, OutletSink, summary_record
    from .video import VideoSource

    cfg = request.config
    stream = resolve_eeg(request.eeg_stream, stream_type=request.eeg_stream_type, timeout_s=request.resolve_timeout_s)
    scorer = BagScorer(
        request.model, backend=request.backend, device=request.device,  # type: ignore[arg-type]
        precision=request.precision,  # type: ignore[arg-type]
        batch=1, intra_op_threads=request.threads, backend_options=backend_options,
    )
    spec = scorer.spec
    closers: list[Callable[[], Any]] = [scorer.close]
    recorder = None
    engine: LiveEngine | None = None
    alignment: dict[str, Any] | None = None
    sinks: list[Any] = []
    ok = running = False
    try:
        keep_s = max(cfg.calibration_s, cfg.context_s + spec.eeg.window_s + cfg.hop_s) + 2 * cfg.max_delay_s + 10.0
        eeg_buf = EEGBuffer(stream.channel_count(), float(stream.nominal_srate()), keep_s)
        frames = FrameBuffer(spec.eeg.window_s + cfg.hop_s + 2 * cfg.max_delay_s + 5.0)
        holder: dict[str, Any] = {}

        def eeg_sink(samples: Any, stamps: Any) -> None:
            eeg_buf.append(samples, stamps)
            if holder.get("recorder") is not None:
                holder["recorder"].eeg(samples, stamps)

        def frame_sink(frame: Any, stamp: float) -> None:
            frames.append(frame, stamp)
            if holder.get("recorder") is not None:
                holder["recorder"].frame(frame, stamp)

        inlet = EEGInlet(stream, eeg_sink)
        holder["offsets"] = inlet.clock_offsets  # (LSL time, offset s) as measured, for the recording
        info = inlet.info
        scale = scale_to_volts([request.eeg_unit] if request.eeg_unit else info.units)
        live_eeg = LiveEEG(spec.eeg, info.channels, info.types, info.sfreq, options=request.eeg_options)
        # The stream's channels are checked before anything runs (the offline channel rules).
        from ..eeg.channels import match_channels

        match_channels(
            list(info.channels), spec.eeg, types=list(info.types), channel_map=request.eeg_options.channel_map
        )
        detector = make_detector(spec.face.detector, spec.face.min_confidence)
        closers.append(detector.close)
        faces = LiveFaces(spec.face, spec.eeg.window_s, detector, stale_s=cfg.stale_s)
        video = VideoSource(request.video, frame_sink, delay_s=request.video_delay_s, speed=request.video_speed)
        if request.out is not None:
            sinks.append(JsonLines(request.out, spec.class_names))
        if request.lsl_out:
            sinks.append(OutletSink(request.lsl_out, spec.class_names))
        # The recording opens once the sources and outputs are; a setup error below removes it.
        if request.record is not None:
            from .record import Recorder

            recorder = holder["recorder"] = Recorder(request.record, info, scale)
        engine = LiveEngine(
            scorer, cfg, live_eeg, faces, eeg_buf, frames, lambda w: None, clock=local_clock, eeg_scale=scale
        )
        if request.view:
            sinks.append(LiveView(spec.class_names, engine.stats))

        def emit(w: LiveWindow) -> None:
            for s in sinks:
                s.emit(w)
            if on_window is not None:
                on_window(w)

        engine.emit = emit
        # A file played to its end ends the session at the first window it cannot cover.
        engine.video_ended = lambda: video.kind == "file" and video.ended.is_set()
        # The camera first: frames are flowing when the first EEG sample arrives.
        video.start()
        closers.append(video.close)
        _wait_first_frame(video, frames, timeout_s=10.0)
        inlet.start()
        closers.append(inlet.close)

        def should_stop() -> bool:
            if stop is not None and stop.is_set():
                return True
            for src in (inlet, video):
                if src.error is not None:
                    raise src.error
            return False

        running = True
        with _stop_on_signals(engine.stop):
            engine.run(should_stop)
        ok = True
    finally:
        if not ok:
            for s in sinks:
                s.close()
        for close in reversed(closers):
            close()
        if recorder is not None and not running:
            holder["recorder"] = None
            recorder.discard()  # setup failed: nothing was recorded, nothing is left behind
        elif recorder is not None:
            ica = None if engine is None else engine.live_eeg.ica
            extra: dict[str, Any] = {"lsl_clock_offsets": [list(o) for o in holder.get("offsets", [])]}
            if ica is not None:
                extra["ica_residual_uv"] = ica.residual_uv
            alignment = recorder.close(extra)
    assert engine is not None
    summary = summary_record(engine.stats, {
        "calibration_s": cfg.calibration_s, "hop_s": cfg.hop_s, "eeg_stream": info.to_dict(),
        "ica": None if live_eeg.ica is None
        else {k: live_eeg.ica.info.get(k) for k in ("ica_excluded", "eog_source", "ica_converged")},
        "video_frames": video.frames, "video_reconnects": video.reconnects,
        "record": None if request.record is None else str(request.record), "alignment": alignment,
    })  # fmt: skip
    for s in sinks:
        if hasattr(s, "write"):
            s.write(summary)
        s.close()
    if video.frames == 0:
        # A source that never delivered is a setup error, not a session of video stalls.
        from ..check import MilmerInputError

        reason = video.last_error or "it delivered no frame"
        raise MilmerInputError(
            f"Invalid value for '--video': no frame arrived from {request.video!r} during the session ({reason}). "
            "Check the camera (v4l2-ctl --list-devices; is another program using it?) or the stream URL."
        )
    return summary


def _wait_first_frame(video: Any, frames: Any, timeout_s: float) -> None:
    """Wait until the video delivers its first frame (or ends, or ``timeout_s`` passes: then the
    windows without frames are reported as ``video-stall``)."""
    import time

    deadline = time.perf_counter() + timeout_s
    while frames.first_stamp is None and not video.ended.is_set() and time.perf_counter() < deadline:
        time.sleep(0.01)
    if video.error is not None:
        raise video.error


class _stop_on_signals:
    """SIGINT/SIGTERM set ``event`` (the loop ends after the current window) while inside; only in
    the main thread, where Python delivers signals."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self.saved: dict[int, Any] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.saved[sig] = signal.signal(sig, lambda *_: self.event.set())

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
