"""Small recordings built the way labs and devices produce them, with a flash at a known real time.

Every video is dark grey with a few white frames (the flash); :func:`flash_time` finds the flash's
video time (first frame's timestamp = 0), the ground truth the alignment must hit within one frame.
"""

from __future__ import annotations

import struct
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import numpy as np

W, H = 64, 48
DARK, BRIGHT = 40, 230


def _frame(bright: bool) -> np.ndarray:
    return np.full((H, W, 3), BRIGHT if bright else DARK, np.uint8)


def write_mp4(
    path: Path,
    fps: float,
    n_frames: int,
    flash: range,
    *,
    video_start_s: float = 0.0,
    audio_s: float | None = None,
    creation_time: str | None = None,
) -> Path:
    """An MP4 (mpeg4) of ``n_frames`` at ``fps``, frames in ``flash`` white; the video stream's first
    frame at ``video_start_s`` on the container timeline; an AAC audio stream from 0 for ``audio_s``
    seconds; ``creation_time`` (ISO 8601) in the container's tags."""
    import av

    tb = Fraction(1, 1000)
    with av.open(str(path), "w") as out:
        if creation_time:
            out.metadata["creation_time"] = creation_time
        v = out.add_stream("mpeg4", rate=Fraction(fps).limit_denominator(1001))
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        v.codec_context.time_base = tb
        a = None
        if audio_s:
            a = out.add_stream("aac", rate=16000)
            a.layout = "mono"
        if a is not None:
            n_audio = int(audio_s * 16000)
            for start in range(0, n_audio, 1024):
                af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = 16000, start, Fraction(1, 16000)
                for packet in a.encode(af):
                    out.mux(packet)
            for packet in a.encode():
                out.mux(packet)
        for k in range(n_frames):
            vf = av.VideoFrame.from_ndarray(_frame(k in flash), format="rgb24")
            vf.pts, vf.time_base = int(round((video_start_s + k / fps) / tb)), tb
            for packet in v.encode(vf):
                out.mux(packet)
        for packet in v.encode():
            out.mux(packet)
    return path


def write_avi(path: Path, header_fps: float, n_frames: int, flash: range) -> Path:
    """An MJPG AVI written by OpenCV's VideoWriter told ``header_fps`` (whatever the camera delivered)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), header_fps, (W, H))
    for k in range(n_frames):
        writer.write(_frame(k in flash))
    writer.release()
    return path


def flash_time(path: Path) -> float:
    """Video time (s, first frame = 0, the milmer convention) of the first bright frame."""
    from milmer.runtime.face.video import iter_frames_at, probe_video

    info = probe_video(path)
    times = np.arange(info.n_frames) / info.fps
    for item in iter_frames_at(path, times, info=info):
        if item.frame is not None and item.frame.mean() > (DARK + BRIGHT) / 2:
            return float(item.timestamp)
    raise AssertionError("no flash")


def eeg_raw(n_samples: int, sfreq: float, n_channels: int = 2):
    import mne

    rng = np.random.default_rng(0)
    data = rng.normal(0, 10e-6, (n_channels, n_samples))
    return mne.io.RawArray(data, mne.create_info([f"EEG{i}" for i in range(n_channels)], sfreq, "eeg"), verbose=False)


def write_edf(path: Path, n_samples: int, sfreq: float, start: datetime | None = None) -> Path:
    """An EDF (MNE's exporter, edfio) with ``start`` as its header start date/time."""
    raw = eeg_raw(n_samples, sfreq)
    raw.set_meas_date(start)
    raw.export(str(path), fmt="edf", overwrite=True, verbose=False)
    return path


def write_brainvision(
    path: Path, sfreq: float, segments: list[tuple[int, datetime]], channels: tuple[str, ...] = ("Fp1", "Fp2")
) -> Path:
    """A BrainVision trio (float32); ``segments``: (n_samples, New Segment date) each, recorded one
    after the other (the gaps between them are recorder pauses)."""
    n = sum(k for k, _ in segments)
    rng = np.random.default_rng(1)
    sources = rng.uniform(-1, 1, (n, len(channels)))  # non-Gaussian: ICA converges fast
    data = (20.0 * sources @ rng.standard_normal((len(channels),) * 2)).astype("<f4")  # (T, C) microvolts
    stem = path.with_suffix("")
    stem.with_suffix(".eeg").write_bytes(data.tobytes())
    path.write_text(
        "Brain Vision Data Exchange Header File Version 1.0\n\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={stem.name}.eeg\nMarkerFile={stem.name}.vmrk\nDataFormat=BINARY\n"
        f"DataOrientation=MULTIPLEXED\nNumberOfChannels={len(channels)}\n"
        f"SamplingInterval={1e6 / sfreq:g}\n\n[Binary Infos]\nBinaryFormat=IEEE_FLOAT_32\n\n"
        "[Channel Infos]\n" + "".join(f"Ch{i}={c},,1,µV\n" for i, c in enumerate(channels, 1)),
        encoding="utf-8",
    )
    lines, pos = [], 1
    for i, (k, date) in enumerate(segments, 1):
        lines.append(f"Mk{i}=New Segment,,{pos},1,0,{date.strftime('%Y%m%d%H%M%S%f')}")
        pos += k
    stem.with_suffix(".vmrk").write_text(
        "Brain Vision Data Exchange Marker File, Version 1.0\n\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={stem.name}.eeg\n\n[Marker Infos]\n" + "\n".join(lines) + "\n",
        encoding="utf-8",
    )
    return path


# ----------------------------------------------------------------------------- XDF (a minimal writer)
def _varlen(n: int) -> bytes:
    if n < 256:
        return b"\x01" + struct.pack("<B", n)
    return b"\x04" + struct.pack("<I", n) if n < 2**32 else b"\x08" + struct.pack("<Q", n)


def _chunk(tag: int, content: bytes) -> bytes:
    body = struct.pack("<H", tag) + content
    return _varlen(len(body)) + body


def _header_xml(name: str, kind: str, channels: list[str], srate: float, fmt: str) -> bytes:
    chans = "".join(f"<channel><label>{c}</label><unit>microvolts</unit><type>EEG</type></channel>" for c in channels)
    return (
        f"<?xml version=\"1.0\"?><info><name>{name}</name><type>{kind}</type>"
        f"<channel_count>{len(channels)}</channel_count><nominal_srate>{srate:g}</nominal_srate>"
        f"<channel_format>{fmt}</channel_format><created_at>0</created_at>"
        f"<desc><channels>{chans}</channels></desc></info>"
    ).encode()


def write_xdf(path: Path, streams: list[dict]) -> Path:
    """An XDF 1.0 file (https://github.com/sccn/xdf/wiki/Specifications). Each stream: name, type,
    channels (labels), srate (0: irregular), format ('float32' or 'string'), data (N, C) or list of
    str, stamps (N,) seconds on its own computer's clock, offsets [(collection time, offset)] that
    map that clock to LabRecorder's (pyxdf adds them)."""
    out = [b"XDF:", _chunk(1, b"<?xml version=\"1.0\"?><info><version>1.0</version></info>")]
    for sid, s in enumerate(streams, 1):
        out.append(_chunk(2, struct.pack("<I", sid) + _header_xml(s["name"], s["type"], s["channels"], s["srate"], s["format"])))
    for sid, s in enumerate(streams, 1):
        body = [struct.pack("<I", sid), _varlen(len(s["stamps"]))]
        for value, t in zip(s["data"], s["stamps"]):
            body.append(b"\x08" + struct.pack("<d", t))
            if s["format"] == "string":
                raw = str(value).encode()
                body.append(_varlen(len(raw)) + raw)
            else:
                body.append(np.asarray(value, "<f4").tobytes())
        out.append(_chunk(3, b"".join(body)))
        for when, offset in s.get("offsets", []):
            out.append(_chunk(4, struct.pack("<I", sid) + struct.pack("<dd", when, offset)))
    for sid, s in enumerate(streams, 1):
        footer = (
            f"<?xml version=\"1.0\"?><info><first_timestamp>{s['stamps'][0]}</first_timestamp>"
            f"<last_timestamp>{s['stamps'][-1]}</last_timestamp><sample_count>{len(s['stamps'])}</sample_count></info>"
        ).encode()
        out.append(_chunk(6, struct.pack("<I", sid) + footer))
    path.write_bytes(b"".join(out))
    return path


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)
