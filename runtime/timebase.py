"""One clock for every stream: where each sample of EEG and each video frame lies in real time.

A stream (the EEG, the video, an LSL stream) has its own LOCAL time: the seconds its file or
source states, ``sample_index / nominal_rate`` for the EEG, a frame's presentation timestamp
minus the first frame's for the video. A :class:`StreamClock` maps local time to the COMMON
clock (the clock every stream of a recording is placed on) by three facts, each with its
source (:class:`Fact`):

- ``start``: common time of local time 0 (header start stamp, XDF/LSL clock,
  ``--offset``, or assumed 0);
- ``rate``: the stream's true rate (Hz) on the common clock; it differs from ``nominal_rate``
  (the header's) when the device clock drifts (an amplifier 1 % off, an AVI whose header fps is
  not what the webcam delivered);
- ``segments``: contiguous pieces of the recording; a recorder pause starts a new segment at its
  own common time (BrainVision "New Segment" markers, EDF+D records). Empty: one segment.

Within segment ``s``: ``common = s.start_s + (local - s.local_s) * nominal_rate / rate``. With no
evidence, a clock is the identity on local time (start 0, nominal rate) and every fact says
``assumed`` -- today's behaviour, stated instead of silent.

An :class:`Alignment` holds the clocks of one recording's EEG and video and maps EEG local
times to video local times (:meth:`Alignment.eeg_to_video`); windowing asks it, nothing else
assumes that both start at 0. :func:`fit_clock` fits a clock to per-sample timestamps (LSL,
XDF), the way pyxdf's dejittering does (least squares of time on sample index, per segment).
Every type is JSON-able (``to_dict`` / ``from_dict``) for reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

import numpy as np

from .check import check_array, check_finite, check_int, check_number, check_option

__all__ = [
    "SOURCES",
    "Source",
    "Fact",
    "Segment",
    "StreamClock",
    "AlignmentNote",
    "Alignment",
    "fit_clock",
]

#: Where a fact about time came from, from strongest to weakest evidence:
#: ``option`` (the user said so: ``--offset``, ``--eeg-rate``, ``--video-fps``), ``clock`` (a
#: shared clock recorded with the data: XDF/LSL timestamps with clock offsets), ``timestamps`` (the stream's own
#: per-sample/per-frame timestamps), ``header`` (a file header: EDF/BDF start date and time,
#: BrainVision "New Segment" dates, MP4/MOV/MKV ``creation_time``, AVI fps), ``estimated`` (derived
#: from several pieces of evidence, e.g. two durations), ``assumed`` (no evidence: start 0, nominal rate).
#: The video container's timeline (a video stream starting after its audio, an edit list) is not a
#: source of the offset: it is applied under every one of them, as :attr:`Alignment.video_lead_s`.
Source = Literal["option", "clock", "timestamps", "header", "estimated", "assumed"]
SOURCES: tuple[str, ...] = get_args(Source)


@dataclass(frozen=True)
class Fact:
    """A number about time and where it came from.

    value:  seconds for a start or an offset, Hz for a rate
    source: one of :data:`SOURCES`
    detail: what exactly (``"--offset"``, ``"EDF start 2024-05-01 10:00:00"``, ``"XDF clock"``)
    """

    value: float
    source: Source = "assumed"
    detail: str = ""

    def __post_init__(self) -> None:
        check_option("source", self.source, SOURCES)
        object.__setattr__(self, "value", check_finite("value", self.value))

    @property
    def assumed(self) -> bool:
        return self.source == "assumed"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": round(self.value, 9), "source": self.source}
        if self.detail:
            out["detail"] = self.detail
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fact:
        return cls(float(d["value"]), d.get("source", "assumed"), d.get("detail", ""))


@dataclass(frozen=True)
class Segment:
    """A contiguous piece of a stream.

    local_s:    local time (s) of its first sample (``first_sample / nominal_rate`` for the EEG as
                read, i.e. after earlier pauses were put in place: it counts them, so a BrainVision
                segment 10 s into the file after a 5 s pause has local_s 15, not 10)
    start_s:    common time (s) of its first sample
    duration_s: its length in LOCAL seconds (``n_samples / nominal_rate``); inf: to the stream's end
    source:     where ``start_s`` came from (:data:`SOURCES`)
    detail:     e.g. ``"New Segment 2024-05-01 10:01:30.000000"``
    """

    local_s: float
    start_s: float
    duration_s: float = math.inf
    source: Source = "assumed"
    detail: str = ""

    def __post_init__(self) -> None:
        check_option("source", self.source, SOURCES)
        if not (math.isfinite(self.local_s) and math.isfinite(self.start_s)) or not self.duration_s > 0:
            raise ValueError(
                f"Invalid segment: local_s={self.local_s!r}, start_s={self.start_s!r}, duration_s={self.duration_s!r}."
            )

    @property
    def local_end_s(self) -> float:
        return self.local_s + self.duration_s

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "local_s": round(self.local_s, 9),
            "start_s": round(self.start_s, 9),
            "duration_s": None if math.isinf(self.duration_s) else round(self.duration_s, 9),
            "source": self.source,
        }
        if self.detail:
            out["detail"] = self.detail
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Segment:
        dur = d.get("duration_s")
        return cls(float(d["local_s"]), float(d["start_s"]), math.inf if dur is None else float(dur),
                   d.get("source", "assumed"), d.get("detail", ""))


@dataclass(frozen=True)
class StreamClock:
    """How one stream's local time maps to the common clock (see the module docstring).

    name:         ``"eeg"``, ``"video"`` or an LSL stream's name
    nominal_rate: the rate (Hz) the stream's own local time is counted in (header rate; for a
                  video with per-frame timestamps, the measured frame rate)
    start:        common time (s) of local time 0 (of the first segment's first sample)
    rate:         true rate (Hz) on the common clock; None: the nominal rate, assumed
    segments:     pieces after the first, in local order (the first segment is implied: local 0
                  at ``start``); each later one starts at its own common time
    """

    name: str
    nominal_rate: float
    start: Fact = field(default_factory=lambda: Fact(0.0))
    rate: Fact | None = None
    segments: tuple[Segment, ...] = ()

    def __post_init__(self) -> None:
        check_number("nominal_rate", self.nominal_rate, low=0, low_open=True, finite=True, unit="a rate in Hz")
        if self.rate is None:
            object.__setattr__(self, "rate", Fact(self.nominal_rate, "assumed", "nominal rate"))
        else:
            check_number("rate", self.rate.value, low=0, low_open=True, unit="a rate in Hz")
        segs = tuple(self.segments)
        if any(b.local_s <= a.local_s for a, b in zip(segs, segs[1:])) or any(s.local_s <= 0 for s in segs):
            raise ValueError("Invalid value for 'segments': expected increasing local_s > 0 after the first segment.")
        object.__setattr__(self, "segments", segs)

    @property
    def true_rate(self) -> float:
        assert self.rate is not None
        return self.rate.value

    @property
    def scale(self) -> float:
        """Common seconds per local second (``nominal_rate / rate``): 1.01 when the clock runs 1 % slow."""
        return self.nominal_rate / self.true_rate

    @property
    def drift_ppm(self) -> float:
        """How far the true rate is from the nominal one, parts per million (+: faster)."""
        return (self.true_rate / self.nominal_rate - 1.0) * 1e6

    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(S,) local starts, common starts and local ends of all segments, the implied first included."""
        first_end = self.segments[0].local_s if self.segments else math.inf
        local = np.array([0.0] + [s.local_s for s in self.segments])
        common = np.array([self.start.value] + [s.start_s for s in self.segments])
        ends = [first_end] + [
            min(s.local_end_s, nxt.local_s) for s, nxt in zip(self.segments, self.segments[1:])
        ] + ([self.segments[-1].local_end_s] if self.segments else [])
        return local, common, np.array(ends[: local.size])

    def to_common(self, local_s: np.ndarray | float) -> np.ndarray:
        """Common times (s) of local times (s). Any shape; times before local 0 extrapolate the
        first segment, times after a segment's end (inside a pause) the segment they follow."""
        t = np.asarray(local_s, dtype=np.float64)
        local, common, _ = self._table()
        k = np.clip(np.searchsorted(local, t, side="right") - 1, 0, local.size - 1)
        return common[k] + (t - local[k]) * self.scale

    def to_local(self, common_s: np.ndarray | float) -> np.ndarray:
        """Local times (s) of common times (s); NaN where the common time falls in a pause
        (between segments). Before the first segment and after the last: extrapolated."""
        t = np.asarray(common_s, dtype=np.float64)
        local, common, ends = self._table()
        common_ends = common + (ends - local) * self.scale
        k = np.clip(np.searchsorted(common, t, side="right") - 1, 0, local.size - 1)
        out = local[k] + (t - common[k]) / self.scale
        in_pause = (k < local.size - 1) & (t >= common_ends[k])
        return np.where(in_pause, np.nan, out)

    def sample_times(self, indices: np.ndarray | Sequence[int]) -> np.ndarray:
        """Common times (s) of sample indices (local time ``index / nominal_rate``)."""
        return self.to_common(np.asarray(indices, dtype=np.float64) / self.nominal_rate)

    def sample_at(self, common_s: np.ndarray | float) -> np.ndarray:
        """Nearest sample index (float; round it) at common times; NaN inside a pause."""
        return self.to_local(common_s) * self.nominal_rate

    def pauses(self) -> list[tuple[float, float]]:
        """Local times (s) ``(end of a segment, start of the next)`` where the stream paused; for
        the EEG, whose local time counts samples, a pause has no local length (both equal) unless
        the reader put the gap into the data (EDF+D)."""
        local, _, ends = self._table()
        return [(float(e), float(s)) for e, s in zip(ends[:-1], local[1:])]

    def with_start(self, start: Fact) -> StreamClock:
        return replace(self, start=start)

    def with_rate(self, rate: Fact) -> StreamClock:
        return replace(self, rate=rate)

    def to_dict(self) -> dict[str, Any]:
        assert self.rate is not None
        return {
            "name": self.name,
            "nominal_rate": self.nominal_rate,
            "start": self.start.to_dict(),
            "rate": self.rate.to_dict(),
            "drift_ppm": round(self.drift_ppm, 3),
            "segments": [s.to_dict() for s in self.segments],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StreamClock:
        return cls(
            name=d["name"],
            nominal_rate=float(d["nominal_rate"]),
            start=Fact.from_dict(d["start"]),
            rate=Fact.from_dict(d["rate"]),
            segments=tuple(Segment.from_dict(s) for s in d.get("segments", ())),
        )


#: Severities of an :class:`AlignmentNote`.
Severity = Literal["info", "warning"]


@dataclass(frozen=True)
class AlignmentNote:
    """One thing to tell the user about the alignment (data; the renderer picks the words' colour).

    code:     stable identifier (``"offset-assumed"``, ``"stamps-disagree"``, ``"durations-differ"``,
              ``"avi-fps"``, ``"video-start"``, ``"eeg-pause"``, ...)
    severity: ``"info"`` (what was used) or ``"warning"`` (evidence disagrees or is missing)
    message:  one line, naming the option that settles it where one does
    option:   that option (``"--offset"``, ``"--eeg-rate"``, ``"--video-fps"``) or ``""``
    """

    code: str
    severity: Severity
    message: str
    option: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "message": self.message, "option": self.option}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AlignmentNote:
        return cls(d["code"], d["severity"], d["message"], d.get("option", ""))


@dataclass(frozen=True)
class Alignment:
    """The EEG and video clocks of one recording on one common clock.

    eeg, video: their clocks (:class:`StreamClock`)
    clock:      what the common clock is: ``"eeg"`` (common 0 = the EEG's first sample; header
                stamps are turned into starts relative to it), ``"xdf"``/``"lsl"`` (LSL's clock)
    notes:      what was used and what disagrees, one :class:`AlignmentNote` each
    video_lead_s: the video container's time (s) of its first frame (video local time 0): a video
                stream that starts after its container's audio, as a player shows it; 0 otherwise
    """

    eeg: StreamClock
    video: StreamClock
    clock: str = "eeg"
    notes: tuple[AlignmentNote, ...] = ()
    video_lead_s: float = 0.0

    @classmethod
    def assumed(cls, eeg_rate: float, video_fps: float) -> Alignment:
        """No evidence: both start at common 0 and run at their nominal rates (offset 0)."""
        return cls(StreamClock("eeg", eeg_rate), StreamClock("video", video_fps))

    def eeg_to_video(self, eeg_local_s: np.ndarray | float) -> np.ndarray:
        """Video local times (s) of EEG local times (s); NaN where the video paused. Any shape."""
        return self.video.to_local(self.eeg.to_common(eeg_local_s))

    def video_to_eeg(self, video_local_s: np.ndarray | float) -> np.ndarray:
        """EEG local times (s) of video local times (s); NaN where the EEG paused."""
        return self.eeg.to_local(self.video.to_common(video_local_s))

    @property
    def offset_s(self) -> float:
        """The video's container time (what a player shows) at EEG local time 0: ``--offset``'s
        meaning (+ when the video started first). Its first-frame time is ``offset_s - video_lead_s``."""
        return float(self.eeg_to_video(0.0)) + self.video_lead_s

    @property
    def offset_source(self) -> Source:
        """What the offset rests on: the video's start when the common clock is the EEG's (its
        start is 0 by definition), else the weaker of the two starts (a user option settles it)."""
        a, b = self.eeg.start.source, self.video.start.source
        if self.clock == "eeg" or b == "option":
            return b
        return max((a, b), key=SOURCES.index)

    @property
    def is_affine(self) -> bool:
        """No pauses in either stream: video time is a straight line of EEG time."""
        return not self.eeg.segments and not self.video.segments

    def with_notes(self, *notes: AlignmentNote) -> Alignment:
        return replace(self, notes=self.notes + tuple(notes))

    def warnings(self) -> list[str]:
        return [n.message for n in self.notes if n.severity == "warning"]

    def summary(self) -> str:
        """One line for a table header: offset, rates and drift, pauses, and their sources."""
        parts = [f"offset {self.offset_s:+.3f} s ({self.offset_source})"]
        for c in (self.eeg, self.video):
            assert c.rate is not None
            rate = f"{c.name} {c.true_rate:.6g} Hz ({c.rate.source})"
            if abs(c.drift_ppm) >= 1:
                rate += f", {c.drift_ppm / 1e4:+.3f} % off its nominal {c.nominal_rate:g} Hz"
            if c.segments:
                rate += f", {len(c.segments) + 1} segments"
            parts.append(rate)
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clock": self.clock,
            "offset_s": round(self.offset_s, 6),
            "offset_source": self.offset_source,
            "video_lead_s": round(self.video_lead_s, 6),
            "eeg": self.eeg.to_dict(),
            "video": self.video.to_dict(),
            "notes": [n.to_dict() for n in self.notes],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Alignment:
        return cls(
            eeg=StreamClock.from_dict(d["eeg"]),
            video=StreamClock.from_dict(d["video"]),
            clock=d.get("clock", "eeg"),
            notes=tuple(AlignmentNote.from_dict(n) for n in d.get("notes", ())),
            video_lead_s=float(d.get("video_lead_s", 0.0)),
        )


def fit_clock(
    name: str,
    timestamps: np.ndarray,
    nominal_rate: float,
    *,
    source: Source = "clock",
    detail: str = "",
    gap_factor: float = 2.0,
) -> StreamClock:
    """A clock fitted to per-sample timestamps (LSL/XDF, already on the common clock).

    timestamps:   (N,) seconds, one per sample, non-decreasing, N >= 2
    nominal_rate: the stream's declared rate (Hz); local time is ``index / nominal_rate``
    gap_factor:   a step over this many nominal intervals starts a new segment (a pause)

    Per segment, a least-squares line of time on sample index (pyxdf's ``dejitter_timestamps``;
    LSL ``StreamInlet`` post-processing ``proc_dejitter`` does the same online) gives its start;
    the rate is the sample-weighted mean of the segments' slopes (one oscillator drives them all).
    Raises ValueError for fewer than 2 samples or timestamps that go back.
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    check_array("timestamps", ts, shape=("N",), finite=True, nondecreasing=True, what="a 1-D array of finite seconds")
    check_int("number of timestamps", ts.size, low=2)
    steps = np.diff(ts)
    breaks = np.flatnonzero(steps > gap_factor / nominal_rate) + 1
    bounds = np.r_[0, breaks, ts.size]
    slopes, weights, fits = [], [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        idx = np.arange(a, b, dtype=np.float64)
        if b - a >= 2:
            slope, intercept = np.polyfit(idx - a, ts[a:b], 1)
            slopes.append(slope)
            weights.append(b - a)
        else:
            slope, intercept = math.nan, ts[a]
        fits.append((a, b, intercept))
    interval = float(np.average(slopes, weights=weights)) if slopes else 1.0 / nominal_rate
    rate = Fact(1.0 / interval, source, detail or "fitted to timestamps")
    segs = tuple(
        Segment(a / nominal_rate, float(icpt), (b - a) / nominal_rate, source, detail)
        for a, b, icpt in fits[1:]
    )
    start = Fact(float(fits[0][2]), source, detail or "fitted to timestamps")
    return StreamClock(name, float(nominal_rate), start, rate, segs)
