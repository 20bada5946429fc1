"""Live tests: the demo recording's EEG pushed through a real LSL outlet (loopback), its video played.

``EEGPlayer`` sends a recording's samples at real pace (chunks of 1/16 s, each sample stamped
``t0 + i / sfreq`` in the LSL clock), starting when a consumer connects; ``drop`` leaves samples out
(a gap), ``stall`` holds samples back and sends them late (a stalled amplifier or network).
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

pylsl = pytest.importorskip("pylsl")

#: Seconds of demo recording the live tests play (7 windows of 3 s) and the calibration they use.
SECONDS = 21
CALIBRATION_S = 12.0
#: The session test waits for 2 s of EEG after each window (offline's filtering, see LiveConfig).
LOOKAHEAD_S = 2.0


class EEGPlayer:
    """Push ``data`` (n, C) microvolts at ``sfreq`` through an LSL outlet called ``name``.

    drop:  (start_s, end_s) recording seconds whose samples are never sent
    stall: (start_s, end_s) recording seconds whose samples are held back until end_s + hold_s
    """

    def __init__(self, name: str, data: np.ndarray, sfreq: float, channels, types, *, drop=None, stall=None, hold_s=4.0):
        info = pylsl.StreamInfo(name, "EEG", data.shape[1], sfreq, "float32", f"test-{name}")
        chans = info.desc().append_child("channels")
        for c, t in zip(channels, types):
            ch = chans.append_child("channel")
            ch.append_child_value("label", c)
            ch.append_child_value("type", t.upper())
            ch.append_child_value("unit", "microvolts")
        self.outlet = pylsl.StreamOutlet(info, chunk_size=0, max_buffered=60)
        self.data, self.sfreq, self.drop, self.stall, self.hold_s = data, sfreq, drop, stall, hold_s
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.t0: float | None = None
        self.done = threading.Event()

    def start(self) -> "EEGPlayer":
        self.thread.start()
        return self

    def _run(self) -> None:
        self.outlet.wait_for_consumers(30.0)
        time.sleep(0.2)
        n = len(self.data)
        chunk = int(self.sfreq // 16)
        t0 = self.t0 = pylsl.local_clock()
        held: list[tuple[np.ndarray, np.ndarray]] = []
        for a in range(0, n, chunk):
            b = min(n, a + chunk)
            stamps = t0 + np.arange(a, b) / self.sfreq
            delay = stamps[-1] - pylsl.local_clock()
            if delay > 0:
                time.sleep(delay)
            sec = a / self.sfreq
            if self.drop and self.drop[0] <= sec < self.drop[1]:
                continue
            if self.stall and self.stall[0] <= sec < self.stall[1]:
                held.append((self.data[a:b], stamps))
                continue
            if held and sec >= self.stall[1] + self.hold_s:
                for d, s in held:
                    self.outlet.push_chunk(np.ascontiguousarray(d, np.float32), s.tolist())
                held = []
            if held:  # later samples wait behind the held ones (LSL keeps order)
                held.append((self.data[a:b], stamps))
                continue
            self.outlet.push_chunk(np.ascontiguousarray(self.data[a:b], np.float32), stamps.tolist())
        for d, s in held:
            self.outlet.push_chunk(np.ascontiguousarray(d, np.float32), s.tolist())
        self.done.set()


def stream_name() -> str:
    return f"milmer-test-{uuid.uuid4().hex[:8]}"


def read_edf_uv(path: Path) -> tuple[np.ndarray, float, list[str], list[str]]:
    """(n, C) microvolts, rate, channel names, types of an EDF."""
    import mne

    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    return raw.get_data().T * 1e6, float(raw.info["sfreq"]), raw.ch_names, raw.get_channel_types()


@pytest.fixture(scope="session")
def demo_recording(tmp_path_factory) -> dict:
    """The demo recording (``milmer demo-data``'s continuous one): EDF + MP4, 3 s longer than the
    SECONDS of EEG the tests send (the video starts before the EEG, as a camera that is already on)."""
    from milmer.runtime.demo.recording import write_recording

    root = tmp_path_factory.mktemp("live-demo")
    _, paths = write_recording(root, duration_s=SECONDS + 3, fps=25.0, seed=0)
    data, sfreq, channels, types = read_edf_uv(paths["eeg"])
    data = data[: int((SECONDS + LOOKAHEAD_S) * sfreq)]
    return {"video": paths["video"], "eeg": paths["eeg"], "data": data, "sfreq": sfreq, "channels": channels, "types": types}


def write_paused_video(src: Path, dst: Path, pause: tuple[float, float]) -> Path:
    """``src`` re-muxed as MKV without the frames in ``pause`` (s): played at its pace, the
    camera delivers nothing for that long (the timestamps jump)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", format="matroska") as out:
        stream_in = inp.streams.video[0]
        from fractions import Fraction

        stream = out.add_stream("ffv1", rate=1000)
        stream.width, stream.height, stream.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        for frame in inp.decode(stream_in):
            t = float(frame.pts * stream_in.time_base)
            if pause[0] <= t < pause[1]:
                continue
            f = av.VideoFrame.from_ndarray(frame.to_ndarray(format="yuv420p"), format="yuv420p")
            f.pts, f.time_base = int(round(t * 1000)), Fraction(1, 1000)
            for p in stream.encode(f):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    return dst
