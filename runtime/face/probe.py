"""Probing a face video with PyAV (FFmpeg): its real timing, size and rotation, from the frames.

Everything about time comes from the frames' own presentation timestamps (PTS), never from the
container header: a file cut short (a recorder that crashed, a copy that stopped) ends where its
frames end; a webcam that delivered 24 fps under a 30 fps header keeps its real times; a dropout
shows as a gap. Frames are turned upright by the stream's display matrix (phones store portrait
video landscape with a 90/180/270 degree rotation tag).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..check import MilmerInputError, check_nonempty, check_path_exists, check_suffix, read_error
from .colour import DECODER_OPTIONS

__all__ = [
    "VIDEO_SUFFIXES",
    "TIMING_TOLERANCE_FRAMES",
    "VideoInfo",
    "probe_video",
    "quiet_libav",
    "display_matrix_orientation",
    "display_matrix_rotation",
]

#: Containers the runtime accepts (anything FFmpeg decodes in them works).
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm")

#: A frame farther than this many frame intervals from its requested time is flagged (a gap in
#: the video, e.g. a webcam dropout): the nearest frame of constant-rate video is never more than
#: half an interval away, so 1.5 leaves room for timestamp jitter.
TIMING_TOLERANCE_FRAMES = 1.5

# A header frame rate outside this range is treated as missing (some WebM/MKV files from browser
# recorders report 0 or 1000 fps).
_PLAUSIBLE_FPS = (1.0, 480.0)
# Packets decoded at most while looking for the first frame (its size and rotation).
_FIRST_FRAME_TRIES = 300
# The measured and the header frame rate are reported as different beyond this relative gap
# (29.97 vs 30 fps is 0.1 %; a webcam delivering 24 under a 30 fps header is 20 %).
_FPS_MISMATCH = 0.05
# The header's duration is reported as wrong (a truncated file) when it exceeds the frames' by
# more than this many seconds and this fraction.
_HEADER_SLACK_S, _HEADER_SLACK_FRAC = 1.0, 0.02


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learned from the frames' timestamps (not the header).

    fps:               frame rate (Hz) from the timestamps: 1 / the mean interval between
                       consecutive frames, leaving out gaps over 1.5 typical intervals (dropouts);
                       the header's when fewer than 2 frames carry timestamps
    n_frames:          frames in the stream (a truncated file: the ones actually there)
    duration_s:        ``t_last + 1 / fps`` (video time starts at 0 with the first frame; the last
                       frame is shown for one interval): where the video really ends
    width, height:     size (px) of the first frame, upright (after ``rotation``)
    rotation:          degrees counter-clockwise the frames are turned to be upright (0, 90, 180,
                       270), from the stream's display matrix
    nominal_fps:       the header's frame rate (None when missing or implausible)
    header_duration_s: the container header's duration (None when missing)
    max_gap_s:         the longest interval between consecutive frames (s) ...
    max_gap_at_s:      ... and the video time of the frame after it
    corrupt_packets:   packets FFmpeg marked corrupt (the cut-off end of a truncated file)
    start_s:           stream time (s) of the first frame shown: video time 0 (frames before it,
                       the pre-roll a stream-copy trim keeps to decode from a keyframe, are not
                       part of the video)
    """

    fps: float
    n_frames: int
    duration_s: float
    width: int
    height: int
    rotation: int = 0
    nominal_fps: float | None = None
    header_duration_s: float | None = None
    max_gap_s: float = 0.0
    max_gap_at_s: float = 0.0
    corrupt_packets: int = 0
    start_s: float = 0.0

    @property
    def interval_s(self) -> float:
        """Mean seconds between frames (``1 / fps``)."""
        return 1.0 / self.fps

    @property
    def fps_mismatch(self) -> bool:
        """The header's frame rate differs from the timestamps' by more than 5 %."""
        return self.nominal_fps is not None and abs(self.fps / self.nominal_fps - 1.0) > _FPS_MISMATCH

    @property
    def header_too_long(self) -> bool:
        """The header's duration clearly exceeds where the frames end."""
        h = self.header_duration_s
        return h is not None and h - self.duration_s > max(_HEADER_SLACK_S, _HEADER_SLACK_FRAC * h)

    @property
    def truncated(self) -> bool:
        """The header promises clearly more than the frames hold, or packets are corrupt (cut off)."""
        return bool(self.corrupt_packets) or self.header_too_long

    def notes(self) -> list[str]:
        """Sentences about what differs from a plain, complete, constant-rate, upright video."""
        out = []
        if self.truncated:
            header = f"its header says {self.header_duration_s:.1f} s, " if self.header_too_long else ""
            corrupt = f", {self.corrupt_packets} corrupt packet(s) skipped" if self.corrupt_packets else ""
            out.append(
                f"The video looks truncated: {header}its frames end at {self.duration_s:.2f} s "
                f"({self.n_frames} whole frames{corrupt}); the video is taken to end there."
            )
        if self.fps_mismatch:
            out.append(
                f"The video's header says {self.nominal_fps:.2f} fps but its frames' timestamps give "
                f"{self.fps:.2f} fps; the timestamps are used."
            )
        if self.max_gap_s > TIMING_TOLERANCE_FRAMES * self.interval_s and self.n_frames > 1:
            out.append(
                f"The video has a gap of {self.max_gap_s:.2f} s without frames before "
                f"{self.max_gap_at_s:.2f} s (a dropped connection or a paused recorder?)."
            )
        if self.rotation:
            out.append(f"The video carries a rotation tag: frames are turned {self.rotation} degrees to be upright.")
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def quiet_libav() -> Iterator[None]:
    """FFmpeg's own log lines off inside the block, the level restored after.

    A truncated or damaged file makes FFmpeg log (``moov atom not found``, ``corrupt decoded
    frame``) straight to stderr, before our one-line error or flag says the same for the user;
    PyAV logs nothing by default from 14 on, but an application (or an older PyAV) may turn it on.
    """
    import av.logging

    previous = av.logging.get_level()
    try:
        av.logging.set_level(None)
    except (TypeError, ValueError):  # pragma: no cover - a PyAV that wants a number
        av.logging.set_level(getattr(av.logging, "QUIET", -8))
    try:
        yield
    finally:
        av.logging.set_level(previous)


def _open(path: str | os.PathLike[str]) -> Any:
    """Validate ``path`` and return an opened PyAV input container with at least one video stream."""
    import av

    p = check_path_exists("video", path)
    check_suffix("video", p, VIDEO_SUFFIXES)
    try:
        with quiet_libav():
            container = av.open(str(p))
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        hint = ""
        if p.suffix.lower() in (".mp4", ".mov", ".m4v"):
            # MP4/MOV write their index (the 'moov' atom) when recording stops: a file cut short
            # (recorder killed, disk full, copy interrupted) usually lacks it and cannot be read.
            hint = (
                " An MP4/MOV whose recording was cut short has no index (written when the recorder "
                "stops): repair it with a tool such as untrunc, or record to MKV or fragmented MP4."
            )
        raise MilmerInputError(
            f"Invalid value for 'video': cannot open {p.name!r} (corrupt file or unsupported codec: {reason}).{hint}"
        ) from None
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        container.close()
        check_nonempty("video", container.streams.video, "video stream", hint=f"{p.name!r} holds {', '.join(kinds)}")
    return container


def _stream_of(container: Any) -> Any:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"  # frame + slice threads: decoding is most of the cost
    stream.codec_context.options = dict(DECODER_OPTIONS)  # bit-exact on every CPU (colour.py)
    return stream


def _rate(value: Any) -> float | None:
    """A header rate (Fraction or None) as a plausible float, else None."""
    try:
        rate = float(value) if value else 0.0
    except (TypeError, ZeroDivisionError):
        return None
    return rate if _PLAUSIBLE_FPS[0] <= rate <= _PLAUSIBLE_FPS[1] else None


def _quarter_turns(rotation: float | None) -> int:
    """A display-matrix rotation (degrees counter-clockwise, [-180, 180]) as 0, 90, 180 or 270."""
    if rotation is None or not math.isfinite(rotation):
        return 0
    return int(round(rotation / 90.0)) % 4 * 90


def display_matrix_rotation(matrix: np.ndarray) -> float:
    """Degrees counter-clockwise a display matrix turns the picture, as FFmpeg's ``av_display_rotation_get``.

    matrix: (9,) int32, ``AV_FRAME_DATA_DISPLAYMATRIX`` (16.16 fixed point). NaN when singular.
    """
    m = np.asarray(matrix, np.float64).reshape(9) / 65536.0
    scale0, scale1 = math.hypot(m[0], m[3]), math.hypot(m[1], m[4])
    if scale0 == 0.0 or scale1 == 0.0:
        return math.nan
    return -math.degrees(math.atan2(m[1] / scale1, m[0] / scale0))


# The eight upright-making transforms: (quarter turns counter-clockwise, mirrored first) -> the
# display matrix's 2x2 part in FFmpeg's row-vector convention, image y pointing down
# (``av_display_rotation_set`` then ``av_display_matrix_flip(hflip=1)``: column 0 negated).
_QUARTER_TURN = np.array([[0.0, -1.0], [1.0, 0.0]])  # a quarter turn counter-clockwise
_ORIENTATIONS: dict[tuple[int, bool], np.ndarray] = {
    (k, flip): (np.diag([-1.0, 1.0]) if flip else np.eye(2)) @ np.linalg.matrix_power(_QUARTER_TURN, k)
    for k in range(4)
    for flip in (False, True)
}


def display_matrix_orientation(matrix: np.ndarray) -> tuple[int, bool]:
    """A display matrix as (degrees counter-clockwise, mirrored): show a frame upright by mirroring
    it left-right first (when ``mirrored``), then turning it ``degrees`` (0, 90, 180, 270).

    matrix: (9,) int32, ``AV_FRAME_DATA_DISPLAYMATRIX`` (16.16 fixed point). A matrix with a
    negative determinant mirrors: FFmpeg's own rotation angle reads a plain left-right mirror as
    "rotation 180", which would turn a front camera's frames upside down. All eight
    rotation/mirror combinations are told apart; a singular or non-right-angle matrix is (0, False).
    """
    m = np.asarray(matrix, np.float64).reshape(9) / 65536.0
    part = np.array([[m[0], m[1]], [m[3], m[4]]])
    scale = np.abs(part).max()
    if not np.isfinite(scale) or scale == 0.0:
        return 0, False
    for (k, flip), candidate in _ORIENTATIONS.items():
        if np.allclose(part / scale, candidate, atol=1e-3):
            return k * 90, flip
    return _quarter_turns(display_matrix_rotation(matrix)), False


def _frame_orientation(frame: Any) -> tuple[int, bool]:
    """The display transform FFmpeg attached to a decoded frame: (0/90/180/270 degrees
    counter-clockwise, mirrored), from the DISPLAYMATRIX side data (:func:`display_matrix_orientation`),
    else ``VideoFrame.rotation`` (no mirror)."""
    for sd in getattr(frame, "side_data", ()):
        entry = sd if hasattr(sd, "type") else frame.side_data[sd]
        if "DISPLAYMATRIX" in str(getattr(entry, "type", sd)).upper():
            return display_matrix_orientation(np.frombuffer(bytes(entry), np.int32))
    return _quarter_turns(getattr(frame, "rotation", None) or 0.0), False


def _frame_rotation(frame: Any) -> int:
    """The display rotation of a decoded frame, 0, 90, 180 or 270 degrees counter-clockwise."""
    return _frame_orientation(frame)[0]


def _seconds(ts: int | None, time_base: Any) -> float | None:
    """``ts * time_base`` in seconds; None without a timestamp or a time base (PyAV's Fraction or AVRational)."""
    if ts is None or not time_base:
        return None
    return ts * time_base.numerator / time_base.denominator


def _packet_time(packet: Any) -> float | None:
    return _seconds(packet.pts if packet.pts is not None else packet.dts, packet.time_base)


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Frame rate, frame count, real duration, upright size, rotation and gaps of a video.

    One pass over the file's packets (demuxing without decoding, except the first frame, which
    checks that the codec works and gives the size and rotation). Timing comes from the packets'
    presentation timestamps: ``n_frames`` counts packets that are not corrupt and not marked for
    discard (the pre-roll a stream-copy trim keeps), ``fps`` is 1 / the mean interval between
    frames without gaps, ``duration_s = t_last - t_first + 1 / fps``. Without timestamps the header rate is used.

    Raises MilmerInputError (parameter 'video') for a missing file, an unsupported suffix, a file
    that cannot be opened, a file without a video stream (e.g. audio only), a video whose first
    frame cannot be decoded or that has no frames, and a frame rate that cannot be determined.
    """
    import av

    name = Path(path).name
    container = _open(path)
    with quiet_libav(), contextlib.closing(container):
        try:
            stream = _stream_of(container)
            nominal = _rate(stream.average_rate) or _rate(stream.base_rate)
            header_duration = _seconds(stream.duration, stream.time_base)
            if header_duration is None and container.duration is not None:
                header_duration = container.duration / 1_000_000  # AV_TIME_BASE
            times: list[float] = []
            n_untimed = corrupt = tries = 0
            first = None
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the flush packet at the end
                if packet.is_corrupt:
                    corrupt += 1
                    continue
                if getattr(packet, "is_discard", False):
                    continue
                if first is None and tries < _FIRST_FRAME_TRIES:
                    # Decode until a frame comes out (a file cut mid-GOP starts with undecodable ones).
                    tries += 1
                    try:
                        frames = packet.decode()
                    except av.error.FFmpegError:
                        frames = []
                    first = frames[0] if frames else None
                t = _packet_time(packet)
                if t is None:
                    n_untimed += 1
                else:
                    times.append(t)
            if first is None:
                # The decoder may hold the first frame back (B-frames, frame threads): flush it.
                try:
                    first = next(iter(stream.decode(None)), None)
                except av.error.FFmpegError:
                    first = None
        except av.error.FFmpegError as err:
            raise read_error("video", name, err, what="video") from None
    n = len(times) + n_untimed
    check_nonempty("video", range(n), f"decodable frame in {name!r}")
    if first is None:
        raise MilmerInputError(f"Invalid value for 'video': cannot decode the first frame of {name!r}.")
    rotation = _frame_rotation(first)
    width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
    ts = np.sort(np.asarray(times, np.float64))  # (n,) presentation order (B-frames come out of order)
    gaps = np.diff(ts) if ts.size > 1 else np.zeros(0)
    if ts.size >= 2 and ts[-1] > ts[0] and n_untimed == 0:
        # The mean interval between frames, leaving out gaps (dropouts) of over 1.5 typical
        # intervals, which would otherwise lower the rate of the frames that are there.
        regular = gaps[gaps <= TIMING_TOLERANCE_FRAMES * np.median(gaps)]
        fps = 1.0 / float(regular.mean()) if regular.size and regular.mean() > 0 else (ts.size - 1) / (ts[-1] - ts[0])
        span = ts[-1] - ts[0]
    elif nominal is not None:
        fps, span = nominal, (n - 1) / nominal
    else:
        raise MilmerInputError(
            f"Invalid value for 'video': cannot determine the frame rate of {name!r} (the header has "
            f"none and {n} frame(s) lack usable timestamps)."
        )
    g = int(np.argmax(gaps)) if gaps.size else -1
    return VideoInfo(
        fps=float(fps),
        n_frames=n,
        duration_s=float(span + 1.0 / fps),
        width=int(width),
        height=int(height),
        rotation=rotation,
        nominal_fps=nominal,
        header_duration_s=header_duration,
        max_gap_s=float(gaps[g]) if g >= 0 else 0.0,
        max_gap_at_s=float(ts[g + 1] - ts[0]) if g >= 0 else 0.0,
        corrupt_packets=corrupt,
        start_s=float(ts[0]) if ts.size else 0.0,
    )
