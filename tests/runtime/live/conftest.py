"""Live tests: the demo recording's EEG pushed through a real LSL outlet (loopback) by
:class:`~milmer.runtime.live.player.EEGPlayer` at real pace, its video played at its pace."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from milmer.runtime.live.player import EEGPlayer

try:
    import pylsl
except (ImportError, RuntimeError):  # not installed, or installed without liblsl (aarch64)
    pylsl = None

#: The tests that stream over LSL (the building blocks' tests need no LSL).
needs_lsl = pytest.mark.skipif(pylsl is None, reason="needs pylsl with liblsl (the live extra)")

__all__ = ["EEGPlayer", "needs_lsl", "pylsl"]

#: Seconds of demo recording the live tests play (7 windows of 3 s) and the calibration they use.
SECONDS = 21
CALIBRATION_S = 12.0
#: The session test waits for 2 s of EEG after each window (offline's filtering, see LiveConfig).
LOOKAHEAD_S = 2.0


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
    from milmer.synthetic.recording_writer import write_recording

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
