"""Build a recording's :class:`~.timebase.Alignment` from its evidence, strongest first.

Order (each fact keeps its source; docs/synchronisation.md says the same for users):

1. The user's options: ``--offset SECONDS`` (the container-timeline time of the video at EEG
   t = 0), ``--eeg-rate HZ`` (the amplifier's true rate), ``--video-fps FPS`` (the camera's true rate).
2. A shared clock recorded with the data (XDF/LSL: the EEG stream's and the video frame-marker
   stream's timestamps, clock-synchronised and dejittered by pyxdf).
3. The recorded start times (``--offset auto``, the default): the EEG header's start date/time
   and the video's ``creation_time``, when both exist and are plausible (they put the two
   recordings within each other's span).
4. The video container's timeline: a video stream starting later than the container (audio at 0,
   video at 1.5 s; an edit list) is placed where a player shows it.
5. Nothing: both start together at their nominal rates (today's behaviour), said to be assumed.

Then checks that evidence cannot settle alone, each one warning line naming the option: two
recordings that end apart (after the offset) by more than a frame interval over a long recording
(clock drift, or the recorders were not stopped together), an AVI of any length whose frames do not
fill the EEG's duration at its header rate by more than 5 % and a frame interval (a webcam that
delivered fewer frames than the header says).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from .check import MilmerInputError, check_number
from .eeg.timing import EEGTiming
from .face.probe import VideoInfo
from .face.timing import VideoTiming
from .timebase import Alignment, AlignmentNote, Fact, StreamClock

__all__ = ["AlignmentWarning", "SyncOptions", "align", "parse_offset", "check_rate", "DRIFT_MIN_DURATION_S", "RATE_MISMATCH"]

#: The durations (drift) check runs on recordings at least this long (s): a short clip of another
#: length is a cut, not a clock. The AVI-rate check runs at any length.
DRIFT_MIN_DURATION_S = 60.0
#: Two durations further apart than this fraction are not one session at two rates (the
#: recorders ran for different times); an AVI's frames/rate mismatch is reported beyond it.
RATE_MISMATCH = 0.05


class AlignmentWarning(UserWarning):
    """Evidence about time disagrees or is missing where it matters (one line, naming the option)."""


def parse_offset(value: str | float | None, name: str = "--offset") -> float | None:
    """``"auto"`` (or None) -> None; a finite number of seconds -> float; else MilmerInputError."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = math.nan
    if not math.isfinite(out):
        raise MilmerInputError(
            f"Invalid value for '{name}': expected 'auto' or a finite number of seconds, got {value!r}."
        )
    return out


def check_rate(name: str, value: float | None) -> float | None:
    """None, or a positive finite rate in Hz as a float; else MilmerInputError naming ``name``."""
    if value is None:
        return None
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = math.nan
    if not (math.isfinite(rate) and rate > 0):
        check_number(name, value, low=0, low_open=True, finite=True, unit="a rate in Hz")  # names what was given
    return rate


@dataclass(frozen=True)
class SyncOptions:
    """What the user says about time.

    offset_s:  container-timeline time (s) of the video at EEG t = 0 (``--offset``); None: auto
    eeg_rate:  the EEG's true sampling rate (Hz) on the video's clock (``--eeg-rate``); None: evidence
    video_fps: the video's true frame rate (``--video-fps``); None: evidence
    """

    offset_s: float | None = None
    eeg_rate: float | None = None
    video_fps: float | None = None

    def __post_init__(self) -> None:
        # The library's names; the command line checks its own (--offset, ...) first.
        object.__setattr__(self, "offset_s", parse_offset(self.offset_s, "offset_s"))
        object.__setattr__(self, "eeg_rate", check_rate("eeg_rate", self.eeg_rate))
        object.__setattr__(self, "video_fps", check_rate("video_fps", self.video_fps))


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") + (f".{t.microsecond // 1000:03d}" if t.microsecond else "")


def align(
    sfreq: float,
    eeg_duration_s: float,
    eeg: EEGTiming,
    video: VideoInfo,
    container: VideoTiming,
    options: SyncOptions | None = None,
) -> Alignment:
    """The alignment of one recording (see the module docstring for the order of evidence).

    sfreq, eeg_duration_s: the EEG's nominal rate (Hz) and local duration (s, after any pause
    was put in place). Raises nothing for disagreeing evidence: it is reported in the notes.
    """
    options = options or SyncOptions()
    notes: list[AlignmentNote] = []
    # ---- the EEG's clock
    eeg_clock = StreamClock("eeg", sfreq, segments=eeg.segments)
    common = "eeg"
    if eeg.clock is not None and eeg.video_clock is not None:
        eeg_clock = StreamClock("eeg", sfreq, eeg.clock.start, eeg.clock.rate, eeg.clock.segments)
        common = eeg.clock_name or "xdf"
    elif eeg.clock is not None and eeg.clock.rate is not None:
        # No video on that clock, but the EEG's true rate on the recording computer's clock is still
        # evidence (a video with real timestamps from the same computer runs on that clock too).
        eeg_clock = eeg_clock.with_rate(eeg.clock.rate)
        if abs(eeg_clock.drift_ppm) >= 100:
            notes.append(AlignmentNote(
                "eeg-rate-clock", "info",
                f"the EEG runs at {eeg_clock.true_rate:.4f} Hz by its {(eeg.clock_name or 'LSL').upper()} timestamps "
                f"({eeg_clock.drift_ppm / 1e4:+.3f} % off its nominal {sfreq:g} Hz): that rate is used; "
                "--eeg-rate overrides.", "--eeg-rate"))
    if options.eeg_rate is not None:
        eeg_clock = eeg_clock.with_rate(Fact(options.eeg_rate, "option", "--eeg-rate"))
    # ---- the video's clock
    lead = container.lead_s
    rate_source = "timestamps" if container.per_frame_timestamps else "header"
    how = "frame timestamps" if rate_source == "timestamps" else "AVI header fps"
    video_clock = StreamClock("video", video.fps, rate=Fact(video.fps, rate_source, how))
    if common != "eeg":
        assert eeg.video_clock is not None
        video_clock = StreamClock("video", video.fps, eeg.video_clock.start, eeg.video_clock.rate, eeg.video_clock.segments)
    if options.video_fps is not None:
        video_clock = video_clock.with_rate(Fact(options.video_fps, "option", "--video-fps"))
    stamps = _stamps_offset(eeg, container, eeg_duration_s, video.duration_s)
    if options.offset_s is not None:
        # The video's container time (local seconds) at EEG t = 0 is the offset; on an XDF clock EEG
        # t = 0 is not 0, and local seconds are common seconds x the video's scale (--video-fps).
        eeg_zero = float(eeg_clock.to_common(0.0))
        start = eeg_zero + (lead - options.offset_s) * video_clock.scale
        if common != "eeg":
            by_clock = Alignment(eeg_clock, video_clock, common, video_lead_s=lead).offset_s
            if abs(by_clock - options.offset_s) > video.interval_s:
                notes.append(AlignmentNote(
                    "clock-disagrees", "warning",
                    f"--offset {options.offset_s:g} s differs from the {common.upper()} clock's {by_clock:+.3f} s "
                    f"(its video frame markers); --offset is used. Leave --offset out to use the clock.", "--offset"))
        video_clock = video_clock.with_start(Fact(start, "option", "--offset"))
        if stamps is not None and stamps[1] and abs(stamps[0] - options.offset_s) > 2.0:
            notes.append(AlignmentNote(
                "stamps-disagree", "warning",
                f"--offset {options.offset_s:g} s differs from the recorded start times' {stamps[0]:+.0f} s "
                f"({stamps[2]}); --offset is used. Check with --faces or a flash/blink.", "--offset"))
    elif common != "eeg":
        notes.append(AlignmentNote(
            "clock", "info", f"aligned by the {common.upper()} clock ({eeg.details.get('streams', '')}).".replace(" ()", "")))
    elif stamps is not None and stamps[1]:
        offset, _, detail = stamps
        video_clock = video_clock.with_start(Fact(lead * video_clock.scale - offset, "header", detail))
        notes.append(AlignmentNote(
            "stamps-used", "info",
            f"offset {offset:+.3f} s from the recorded start times ({detail}; whole-second stamps, "
            "and both clocks must be right): --offset SECONDS overrides.", "--offset"))
    else:
        detail = "container start = EEG start" if lead else "both start together"
        video_clock = video_clock.with_start(Fact(lead * video_clock.scale, "assumed", detail))
        if stamps is not None:
            notes.append(AlignmentNote(
                "stamps-implausible", "warning",
                f"the recorded start times disagree by {stamps[0]:+.0f} s ({stamps[2]}), more than the "
                "recordings last (a wrong clock or time zone?): offset 0 assumed; pass --offset SECONDS.",
                "--offset"))
        else:
            have = ", ".join(x for x in (
                f"EEG: {eeg.start_source} {_stamp(eeg.start_time)}" if eeg.start_time else "EEG: no start time",
                f"video: creation_time {_stamp(container.creation_time)}"
                if container.creation_time else "video: no creation_time",
            ))
            notes.append(AlignmentNote(
                "offset-assumed", "info",
                f"no pair of recorded start times ({have}): both assumed to start together (offset 0); "
                "pass --offset SECONDS if not.", "--offset"))
    if lead >= video.interval_s:  # less is an audio priming delay: applied, not worth a line
        streams = " and ".join(container.other_streams) or "another stream"
        notes.append(AlignmentNote(
            "video-start", "info",
            f"the video stream starts {lead:.3f} s into its container ({streams} from 0): its frames are "
            "placed on the container's timeline, as a player shows them."))
    for seg in eeg_clock.segments:
        notes.append(AlignmentNote(
            "eeg-pause", "info", f"EEG segment from {seg.start_s:.3f} s ({seg.detail}) placed at its recorded time."))
    alignment = Alignment(eeg_clock, video_clock, common, tuple(notes), video_lead_s=lead)
    return alignment.with_notes(*_rate_checks(alignment, eeg_duration_s, video, container, options))


def _stamps_offset(
    eeg: EEGTiming, container: VideoTiming, eeg_s: float, video_s: float
) -> tuple[float, bool, str] | None:
    """(offset s, plausible, detail) from the two recorded starts; None unless both exist.

    The offset is the container time at EEG t = 0, ``eeg_start - creation_time``. Plausible when
    each recording starts within the other's span (they overlap).
    """
    if eeg.start_time is None or container.creation_time is None:
        return None
    offset = (eeg.start_time - container.creation_time).total_seconds()
    plausible = (-offset < eeg_s) if offset < 0 else (offset < video_s)
    detail = f"EEG {eeg.start_source} {_stamp(eeg.start_time)}, video creation_time {_stamp(container.creation_time)}"
    return offset, plausible, detail


def _rate_checks(
    alignment: Alignment, eeg_s: float, video: VideoInfo, container: VideoTiming, options: SyncOptions
) -> list[AlignmentNote]:
    """The durations and AVI-rate checks (see the module docstring)."""
    eeg_clock, video_clock = alignment.eeg, alignment.video
    if eeg_clock.rate.source in ("option", "clock") or video_clock.rate.source in ("option", "clock"):
        return []
    eeg_common = eeg_s * eeg_clock.scale
    video_common = video.duration_s * video_clock.scale
    # Where the video starts and ends on the EEG's time (s after its first sample), by the offset used.
    v_start = float(video_clock.to_common(0.0) - eeg_clock.to_common(0.0))
    v_end = v_start + video_common
    longest = max(eeg_common, video_common)
    diff = v_end - eeg_common
    # The AVI check runs at any length: a header rate off by a clear factor misplaces every frame
    # of a 20 s clip as surely as of an hour (the one-minute floor is for the drift estimate only).
    avi_mismatch = abs(diff) > max(RATE_MISMATCH * longest, video.interval_s)
    if not container.per_frame_timestamps and avi_mismatch and eeg_common > v_start:
        implied = video.n_frames / (eeg_common - v_start)
        if 1.0 <= implied <= 480.0:
            return [AlignmentNote(
                "avi-fps", "warning",
                f"the AVI's header says {video.fps:.2f} fps, so its {video.n_frames} frames last {video_common:.1f} s, "
                f"but the EEG lasts {eeg_common - v_start:.1f} s from the video's start; if both were recorded "
                f"together the camera delivered {implied:.2f} fps (an AVI has no frame timestamps, and a webcam "
                f"that delivers fewer frames than its header says plays too fast): pass --video-fps {implied:.2f}.",
                "--video-fps")]
    if longest >= DRIFT_MIN_DURATION_S and video.interval_s < abs(diff) <= RATE_MISMATCH * longest:
        true_rate = eeg_clock.nominal_rate * eeg_s / v_end
        return [AlignmentNote(
            "durations-differ", "warning",
            f"the EEG ends at {eeg_common:.2f} s and the video at {v_end:.2f} s (EEG time, offset "
            f"{alignment.offset_s:+.2f} s): they differ by {abs(diff):.2f} s ({100 * abs(diff) / longest:.2f} %), "
            "more than a frame interval. If both recorders were stopped together, the amplifier's clock runs "
            f"off its nominal {eeg_clock.nominal_rate:g} Hz (drift; pass --eeg-rate {true_rate:.4f}); if not, "
            "the offset holds at the start only.",
            "--eeg-rate")]
    return []
