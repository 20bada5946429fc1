"""What a video's container says about time: its timeline, its recorded start, its format.

:func:`probe_video` (:mod:`.probe`) measures the frames; this reads the container around them:

- the container TIMELINE: a player starts at the container's start time (the earliest stream) and
  shows the video from its first frame's time on that timeline; an MP4 whose audio starts at 0 and
  whose video starts 1.5 s later (a camera that needed 1.5 s to start the sensor, or an edit list,
  which FFmpeg applies to the timestamps) shows its first frame at 1.5 s. ``lead_s`` is that 1.5 s;
- the recorded start: ``creation_time`` of MP4/MOV (``mvhd``, whole seconds, UTC by the spec, local
  time on some cameras) and MKV/WebM (``DateUTC``), from the container's or the video stream's tags;
- the format: AVI carries no per-frame timestamps (a frame's time is its index / the header rate),
  so its header rate is the only rate there is (:mod:`~milmer.runtime.sync` checks it against the EEG).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .probe import VideoInfo, _open, _seconds, quiet_libav

__all__ = ["VideoTiming", "probe_video_timing", "parse_creation_time"]

# A stream starting later than the container by less than this (s) is not reported (rounding,
# an audio priming delay).
_LEAD_MIN_S = 1e-3


@dataclass(frozen=True)
class VideoTiming:
    """The container's facts about time (each None when the file does not carry it).

    format:        FFmpeg's demuxer name (``"avi"``, ``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"matroska,webm"``)
    lead_s:        seconds from the container timeline's start (the earliest stream's start) to
                   the first frame shown; 0 when the video is the earliest stream
    other_streams: the kinds of the other streams the timeline starts with (``("audio",)``)
    creation_time: the recorded start (UTC; a camera that writes local time is not told apart)
    creation_tag:  where ``creation_time`` was found (``"container"`` or ``"video stream"``)
    """

    format: str = ""
    lead_s: float = 0.0
    other_streams: tuple[str, ...] = ()
    creation_time: datetime | None = None
    creation_tag: str = ""

    @property
    def per_frame_timestamps(self) -> bool:
        """False for AVI: frame times are index / header rate, the header's word only."""
        return self.format.split(",")[0] != "avi"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "lead_s": round(self.lead_s, 6),
            "other_streams": list(self.other_streams),
            "creation_time": self.creation_time.isoformat() if self.creation_time else None,
            "creation_tag": self.creation_tag,
        }


def parse_creation_time(value: str | None) -> datetime | None:
    """An ISO 8601 ``creation_time`` tag (``2024-05-01T10:00:05.000000Z``) as an aware UTC datetime.

    None for a missing or unparsable tag and for the zero dates muxers write when they know none
    (1904-01-01 in MP4, 1970-01-01 elsewhere).
    """
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace(" ", "T", 1)
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return None if stamp.year < 1980 else stamp.astimezone(timezone.utc)


def probe_video_timing(path: str | os.PathLike[str], info: VideoInfo) -> VideoTiming:
    """Read the container timeline, ``creation_time`` and format of a probed video (no decoding).

    ``info.start_s`` (the first frame's stream time) is placed on the container's timeline: the
    lead is that minus the earliest start among the other audio/video streams (data and subtitle
    streams do not move a player's timeline), never negative.
    """
    container = _open(path)
    with quiet_libav(), contextlib.closing(container):
        video = container.streams.video[0]
        starts, kinds = [], []
        for stream in container.streams:
            if stream.index == video.index or stream.type not in ("audio", "video"):
                continue
            start = _seconds(stream.start_time, stream.time_base)
            if start is not None:
                starts.append(start)
                kinds.append(stream.type)
        lead = max(0.0, info.start_s - min(starts)) if starts else 0.0
        created, tag = None, ""
        for where, tags in (("container", container.metadata), ("video stream", video.metadata)):
            created = parse_creation_time((tags or {}).get("creation_time"))
            if created is not None:
                tag = where
                break
        fmt = str(getattr(container.format, "name", "") or "")
    earliest = [k for k, s in zip(kinds, starts) if s < info.start_s - _LEAD_MIN_S]
    return VideoTiming(
        format=fmt,
        lead_s=lead if lead >= _LEAD_MIN_S else 0.0,
        other_streams=tuple(sorted(set(earliest))),
        creation_time=created,
        creation_tag=tag,
    )
