"""Live video in: a camera (V4L2 device or index), a network stream (RTSP/HTTP) or a file played at
its real pace, read with PyAV (FFmpeg) in a background thread; each frame stamped in the LSL clock
when it arrives.

Stamping on arrival puts the frames on the EEG's time axis without trusting the camera's own
clock; the cost is the capture-to-arrival delay (a USB camera: one or two frame intervals, a
network stream: its buffering), which shifts every frame by the same amount (docs/live.md says how
to measure and remove it with ``--video-delay``). A camera or network stream that stops or errors is
reopened every second until it comes back (``reconnects`` counts them); a file ends.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..check import check_path_exists, read_error
from .lsl import local_clock

__all__ = ["VideoSource", "describe_source"]

#: Consecutive failed opens (one a second) after which the reason is printed once on stderr.
_SAY_AFTER = 3
_NETWORK = re.compile(r"^(rtsp|rtsps|rtmp|http|https|udp|tcp|srt)://", re.IGNORECASE)


def describe_source(source: str) -> str:
    """'camera', 'network' or 'file' for a ``--video`` value."""
    if source.isdigit() or source.startswith("/dev/video"):
        return "camera"
    return "network" if _NETWORK.match(source) else "file"


class VideoSource:
    """Frames from ``source`` to ``sink(frame (H, W, 3) uint8 RGB, stamp LSL s)`` in a thread.

    source: a camera ('0' or '/dev/video0'), a URL (rtsp://, http://, ...) or a video file
    delay_s: subtracted from each arrival stamp (the capture-to-arrival delay, if known)
    speed:   a file is played at ``speed`` times its real pace (1: real time)
    """

    def __init__(
        self,
        source: str,
        sink: Callable[[np.ndarray, float], None],
        *,
        delay_s: float = 0.0,
        speed: float = 1.0,
    ) -> None:
        self.source, self.kind = source, describe_source(source)
        self.sink, self.delay_s, self.speed = sink, delay_s, speed
        if self.kind == "file":
            from pathlib import Path

            check_path_exists(
                "--video", Path(source), hint="or give a camera ('0', '/dev/video0') or a stream URL (rtsp://, http://)"
            )
        self.reconnects = 0
        self.frames = 0
        self.ended = threading.Event()
        self.error: BaseException | None = None
        #: the last reason the source could not be opened ("" while it never failed)
        self.last_error = ""
        self._said = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="milmer-video", daemon=True)

    def start(self) -> VideoSource:
        self._thread.start()
        return self

    def _open(self) -> Any:
        import av

        if self.kind == "camera":
            device = f"/dev/video{self.source}" if self.source.isdigit() else self.source
            return av.open(device, format="v4l2")
        if self.kind == "network":
            options = {"rtsp_transport": "tcp"} if self.source.lower().startswith("rtsp") else {}
            return av.open(self.source, options=options, timeout=5.0)
        return av.open(self.source)

    def _run(self) -> None:
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    container = self._open()
                except Exception as err:  # noqa: BLE001 - a camera/stream not there (yet)
                    if self.kind == "file":
                        raise read_error("--video", self.source, err, what="video file") from err
                    self.last_error = f"{type(err).__name__}: {err}"
                    failures += 1
                    if failures == _SAY_AFTER and not self._said:
                        # Said once (not per retry): the windows are reported as video-stall meanwhile.
                        self._said = True
                        sys.stderr.write(
                            f"milmer live: cannot open --video {self.source!r} ({self.last_error}); "
                            "retrying every second.\n"
                        )
                    self.reconnects += 1
                    self._stop.wait(1.0)
                    continue
                failures = 0
                try:
                    self._play(container)
                except Exception:  # noqa: BLE001 - a stream that broke off: reopen it
                    if self.kind == "file":
                        raise
                finally:
                    container.close()
                if self.kind == "file":
                    break
                self.reconnects += 1
                self._stop.wait(1.0)
        except BaseException as err:  # noqa: BLE001 - reported by the engine
            self.error = err
        finally:
            self.ended.set()

    def _play(self, container: Any) -> None:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start_wall, first_pts = None, None
        for frame in container.decode(stream):
            if self._stop.is_set():
                return
            if self.kind == "file" and frame.pts is not None:
                t = float(frame.pts * stream.time_base)
                if start_wall is None:
                    start_wall, first_pts = time.perf_counter(), t
                wait = start_wall + (t - first_pts) / self.speed - time.perf_counter()
                if wait > 0 and self._stop.wait(wait):
                    return
            image = frame.to_ndarray(format="rgb24")
            self.sink(image, local_clock() - self.delay_s)
            self.frames += 1

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
