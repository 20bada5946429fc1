"""``--record DIR``: what a live session received, written as it arrives, replayable offline.

Files (in DIR):

- ``eeg_raw.fif``: the EEG samples as received (volts, the stream's channel labels and types, its
  nominal rate); ``eeg_times.npy``: each sample's LSL timestamp (s);
- ``video.mkv``: every received frame, lossless (FFV1), its presentation time = its LSL arrival
  time minus the first frame's (millisecond time base); ``video_times.npy``: the exact stamps;
- ``alignment.json``: the EEG's first timestamp, the first frame's, the offset
  (``video time at EEG t = 0``: what ``milmer-infer --offset`` takes), the LSL clock offsets measured
  (``lsl_clock_offsets``: [LSL time, sender-to-receiver offset s]), gaps found (segments of the EEG
  clock), and the replay command.

While the session runs, samples and stamps stream to ``eeg.f64``/``eeg_times.f64``/``video_times.f64``
(flushed per chunk) and frames to the MKV (written by its own thread), so a session that is killed
keeps what it received; ``header.json`` (channels, types, rate, unit scale, the raw files' layout)
and a first ``alignment.json`` are written when the recording opens. :meth:`Recorder.close` writes
the FIF, the ``.npy`` files and the final alignment, each through a temporary name. A killed
session's folder (raw files + header) is finished the same way by :func:`recover`.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..check import MilmerInputError, check_dir_or_absent
from .lsl import EEGStreamInfo

__all__ = ["Recorder", "recover"]


class Recorder:
    """Records EEG chunks and frames under ``folder`` (created; must be missing or empty)."""

    def __init__(self, folder: str | os.PathLike[str], stream: EEGStreamInfo, eeg_scale: float) -> None:
        self.dir = Path(folder)
        check_dir_or_absent("--record", self.dir, empty=True, hint="give a new folder")
        self._created = not self.dir.exists()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.stream, self.eeg_scale = stream, eeg_scale
        # Written first: a killed session's raw files can be read (and finished by recover()).
        _write_json(self.dir / "header.json", {
            "stream": stream.to_dict(), "eeg_scale_to_volts": eeg_scale,
            "raw_files": {"eeg.f64": "float64 little-endian, (samples, channels) row-major, the stream's unit",
                          "eeg_times.f64": "float64, one LSL timestamp (s) per sample",
                          "video_times.f64": "float64, one LSL arrival time (s) per frame of video.mkv"},
            "finish": "python -c \"from milmer.runtime.live.record import recover; recover('.')\"",
        })  # fmt: skip
        _write_json(self.dir / "alignment.json", {"clock": "LSL local_clock (s)", "complete": False,
                                                   "stream": stream.to_dict()})
        self._eeg = open(self.dir / "eeg.f64", "wb")  # noqa: SIM115 - closed in close()
        self._eeg_t = open(self.dir / "eeg_times.f64", "wb")  # noqa: SIM115
        self._vid_t = open(self.dir / "video_times.f64", "wb")  # noqa: SIM115
        self.n_samples = 0
        self.n_frames = 0
        self.first_frame: float | None = None
        self._frames: queue.Queue[tuple[np.ndarray, float] | None] = queue.Queue(maxsize=256)
        self._writer = threading.Thread(target=self._write_video, name="milmer-record-video", daemon=True)
        self._writer.start()
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    # ------------------------------------------------------------------ from the stream threads
    def eeg(self, samples: np.ndarray, stamps: np.ndarray) -> None:
        """samples (n, C) in the stream's unit, stamps (n,) LSL s."""
        with self._lock:
            self._eeg.write(np.ascontiguousarray(samples, np.float64).tobytes())
            self._eeg_t.write(np.ascontiguousarray(stamps, np.float64).tobytes())
            self._eeg.flush()
            self._eeg_t.flush()
            self.n_samples += len(stamps)

    def frame(self, frame: np.ndarray, stamp: float) -> None:
        self._frames.put((frame, stamp))

    def _write_video(self) -> None:
        import av

        container = stream = None
        last_pts = -1
        try:
            while (item := self._frames.get()) is not None:
                frame, stamp = item
                if container is None:
                    container = av.open(str(self.dir / "video.mkv"), "w", format="matroska")
                    # Millisecond timestamps in the codec too (a frame-rate time base would
                    # round each arrival time to its grid: variable-rate frames keep their times).
                    stream = container.add_stream("ffv1", rate=1000)
                    stream.width, stream.height = frame.shape[1], frame.shape[0]
                    stream.pix_fmt = "bgr0"
                    stream.codec_context.time_base = Fraction(1, 1000)
                    stream.time_base = Fraction(1, 1000)
                    self.first_frame = stamp
                assert stream is not None and self.first_frame is not None
                if (frame.shape[1], frame.shape[0]) != (stream.width, stream.height):
                    continue  # a resolution change mid-session: FFV1 in one stream cannot hold it
                out = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="bgr0")
                pts = max(last_pts + 1, int(round((stamp - self.first_frame) * 1000)))
                out.pts, out.time_base, last_pts = pts, Fraction(1, 1000), pts
                for packet in stream.encode(out):
                    container.mux(packet)
                self._vid_t.write(np.float64(stamp).tobytes())
                self._vid_t.flush()
                self.n_frames += 1
        except BaseException as err:  # noqa: BLE001 - reported at close
            self.error = err
        finally:
            if container is not None and stream is not None:
                for packet in stream.encode(None):
                    container.mux(packet)
                container.close()

    # ------------------------------------------------------------------ at the end
    def close(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Finish the files; returns the alignment (also written to alignment.json)."""
        self._frames.put(None)
        self._writer.join()
        for f in (self._eeg, self._eeg_t, self._vid_t):
            f.close()
        alignment = _finish(self.dir, self.stream, self.eeg_scale, extra)
        if self.error is not None:
            raise self.error
        return alignment

    def discard(self) -> None:
        """Stop and remove everything this recorder wrote (a session whose setup failed)."""
        import shutil

        self._frames.put(None)
        self._writer.join()
        for f in (self._eeg, self._eeg_t, self._vid_t):
            f.close()
        if self._created:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            for child in self.dir.iterdir():
                shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)


def recover(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Finish a recording whose session was killed (SIGKILL, power loss): from ``header.json`` and the
    raw ``.f64`` files write ``eeg_raw.fif``, the ``.npy`` times and ``alignment.json`` as a clean stop
    would. Returns the alignment. Raises MilmerInputError when ``folder`` has no header."""
    from .lsl import EEGStreamInfo

    root = Path(folder)
    try:
        header = json.loads((root / "header.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise MilmerInputError(f"{str(root)!r} is not an unfinished live recording (no readable header.json): {err}") from err
    d = header["stream"]
    stream = EEGStreamInfo(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})
    n_ch = len(stream.channels)
    # A kill can cut the last chunk: keep whole samples that have a timestamp.
    data = np.fromfile(root / "eeg.f64", np.float64)
    times = np.fromfile(root / "eeg_times.f64", np.float64)
    n = min(len(data) // n_ch, len(times))
    np.ascontiguousarray(data[: n * n_ch]).tofile(root / "eeg.f64")
    times[:n].tofile(root / "eeg_times.f64")
    return _finish(root, stream, float(header["eeg_scale_to_volts"]), {"recovered": True})


def _finish(root: Path, stream: EEGStreamInfo, eeg_scale: float, extra: dict[str, Any] | None) -> dict[str, Any]:
    """Raw files -> eeg_raw.fif, eeg_times.npy, video_times.npy, alignment.json (raw files removed)."""
    n_ch = len(stream.channels)
    data = np.fromfile(root / "eeg.f64", np.float64).reshape(-1, n_ch)  # (T, C)
    eeg_times = np.fromfile(root / "eeg_times.f64", np.float64)
    video_times = np.fromfile(root / "video_times.f64", np.float64)
    _save_npy(root / "eeg_times.npy", eeg_times)
    _save_npy(root / "video_times.npy", video_times)
    if len(data):
        _write_fif(root, stream, eeg_scale, data)
    timebase = _timebase(stream, eeg_times, video_times)
    offset = None if timebase is None else timebase.offset_s
    alignment = {
        "clock": "LSL local_clock (s)",
        "eeg": {"file": "eeg_raw.fif", "times": "eeg_times.npy", "n_samples": int(len(eeg_times)),
                "stream": stream.to_dict()},
        "video": {"file": "video.mkv", "times": "video_times.npy", "n_frames": int(len(video_times)),
                  "time_base": "1/1000 s from the first frame"},
        "timebase": None if timebase is None else timebase.to_dict(),
        "offset_s": offset,
        "replay": None if offset is None else f"milmer-infer video.mkv eeg_raw.fif --model MODEL --offset {offset:.6f}",
        "complete": True,
        **(extra or {}),
    }  # fmt: skip
    _write_json(root / "alignment.json", alignment)
    for name in ("eeg.f64", "eeg_times.f64", "video_times.f64"):
        (root / name).unlink()
    return alignment


def _timebase(stream: EEGStreamInfo, eeg_times: np.ndarray, video_times: np.ndarray) -> Any:
    """The recording's :class:`~..timebase.Alignment` on the LSL clock (None without 2 samples and a frame).

    EEG: fitted to its timestamps (segments at gaps); video: local time 0 at the first frame's
    arrival, rate from the frames' spacing.
    """
    from ..timebase import Alignment, Fact, StreamClock, fit_clock

    if len(eeg_times) < 2 or not len(video_times):
        return None
    eeg = fit_clock("eeg", eeg_times, stream.sfreq, source="clock", detail="LSL timestamps, clock-corrected")
    fps = 1.0 / float(np.median(np.diff(video_times))) if len(video_times) > 2 else 30.0
    video = StreamClock(
        "video", fps, start=Fact(float(video_times[0]), "clock", "LSL arrival time of the first frame"),
        rate=Fact(fps, "timestamps", "frame spacing; local time = arrival - first arrival"),
    )
    return Alignment(eeg=eeg, video=video, clock="lsl")


def _write_fif(root: Path, s: EEGStreamInfo, eeg_scale: float, data: np.ndarray) -> None:
    import mne

    types = [t if t in ("eeg", "eog", "ecg", "emg", "misc", "stim") else "misc" for t in s.types]
    info = mne.create_info(list(s.channels), s.sfreq, types)
    raw = mne.io.RawArray(data.T * eeg_scale, info, verbose="error")
    tmp = root / "eeg.tmp_raw.fif"
    raw.save(tmp, fmt="double", overwrite=True, verbose="error")
    tmp.replace(root / "eeg_raw.fif")


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=2), encoding="utf-8")
    tmp.replace(path)
