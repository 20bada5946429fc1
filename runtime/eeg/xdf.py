"""LabRecorder ``.xdf`` files (LSL): the EEG stream, and the video's frames on the same clock.

pyxdf (https://github.com/xdf-modules/pyxdf, the ``xdf`` extra) reads the file with clock
synchronisation (each stream's recorded clock offsets applied, so streams from several computers
share LabRecorder's clock) and dejittering (a least-squares line through each regular stream's
timestamps). The EEG stream is the one of type ``EEG`` (the most channels when several). The video
frame-marker stream, if any, is an irregular stream whose name or type mentions "video" or
"frame" and whose values are frame numbers (0 = the video file's first frame), one sample per
marked frame, as a camera recorder that pushes an LSL marker per written frame makes (e.g.
``VideoFrames``/``frame_index``); a line through (frame, time) gives the video's start and true
frame rate on the EEG's clock (:func:`~milmer.runtime.timebase.fit_clock` does the same for the EEG).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..check import MilmerInputError, check_nonempty, read_error
from ..dependencies import missing_package_error
from ..timebase import Fact, StreamClock, fit_clock
from .report import EEGNote
from .timing import EEGTiming

if TYPE_CHECKING:
    import mne

__all__ = ["read_xdf", "video_clock_from_markers"]

# LSL's EEG convention is microvolts; these unit strings say otherwise.
_UNIT_SCALE = {"v": 1.0, "volt": 1.0, "volts": 1.0, "mv": 1e-3, "millivolt": 1e-3, "millivolts": 1e-3,
               "uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "microvolt": 1e-6, "microvolts": 1e-6, "nv": 1e-9}
_VIDEO_WORDS = re.compile(r"video|frame|camera", re.IGNORECASE)


def _first(info: dict[str, Any], key: str, default: str = "") -> str:
    value = info.get(key)
    if isinstance(value, list) and value:
        value = value[0]
    return str(value) if value is not None else default


def _channels(info: dict[str, Any], n: int) -> tuple[list[str], list[str]]:
    """Channel labels and units from the stream's ``desc/channels`` (``Ch1``... when missing)."""
    try:
        chans = info["desc"][0]["channels"][0]["channel"]
        labels = [_first(c, "label") or f"Ch{i + 1}" for i, c in enumerate(chans)]
        units = [_first(c, "unit") for c in chans]
    except (KeyError, IndexError, TypeError):
        labels, units = [], []
    if len(labels) != n:
        labels, units = [f"Ch{i + 1}" for i in range(n)], [""] * n
    return labels, units


def video_clock_from_markers(values: Any, stamps: np.ndarray, name: str) -> StreamClock | None:
    """The video's clock from a frame-marker stream: (frame number, LSL time) pairs; None when
    fewer than 2 markers carry frame numbers. The clock's nominal rate is the fitted one (the
    alignment re-expresses it on the probed video's own rate)."""
    frames, times = [], []
    for v, t in zip(values, stamps):
        item = v[0] if isinstance(v, (list, tuple, np.ndarray)) and len(v) else v
        m = re.search(r"-?\d+", str(item))
        if m:
            frames.append(float(m.group()))
            times.append(float(t))
    if len(frames) < 2 or np.ptp(frames) == 0:
        return None
    slope, intercept = np.polyfit(np.asarray(frames), np.asarray(times), 1)
    if not slope > 0:
        return None
    detail = f"XDF stream {name!r}: {len(frames)} frame markers"
    return StreamClock("video", 1.0 / slope, Fact(intercept, "clock", detail), Fact(1.0 / slope, "clock", detail))


def _place_pauses(
    raw: mne.io.BaseRaw, clock: StreamClock, name: str, notes: list[EEGNote]
) -> tuple[mne.io.BaseRaw, StreamClock]:
    """Put the EEG stream's pieces (a stream that stopped and resumed) at their LSL times, the
    pauses marked ``BAD_ACQ_SKIP`` (:func:`~.timing.place_segments`); the clock keeps its start and
    rate, its local time now counting the pauses."""
    from dataclasses import replace
    from datetime import datetime, timedelta, timezone

    from .timing import BrainVisionSegment, place_segments

    epoch = datetime(2000, 1, 1, tzinfo=timezone.utc)  # any: only differences count

    def at(t: float) -> datetime:
        return epoch + timedelta(seconds=t - clock.start.value)

    pieces = [BrainVisionSegment(0, at(clock.start.value))] + [
        BrainVisionSegment(int(round(seg.local_s * clock.nominal_rate)), at(seg.start_s)) for seg in clock.segments
    ]
    raw, _, pauses = place_segments(raw, pieces)
    if pauses:
        notes.append(EEGNote.of(
            "recording-paused",
            f"{name}: the EEG stream paused {len(pauses)} time(s) "
            + ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in pauses)
            + " (LSL timestamps): put at their times and marked BAD_ACQ_SKIP",
            pauses_s=[[a, b] for a, b in pauses],
        ))  # fmt: skip
    return raw, replace(clock, segments=())


def read_xdf(path: str | os.PathLike[str], notes: list[EEGNote]) -> tuple[mne.io.BaseRaw, EEGTiming]:
    """The EEG stream of an ``.xdf`` as an MNE recording (volts) and its clock facts.

    Raises MilmerInputError (parameter 'eeg') when pyxdf is missing (how to install it), the file
    cannot be read, it holds no EEG stream (naming the streams it holds), or its EEG stream has
    fewer than 2 samples (a truncated file).
    """
    try:
        import pyxdf
    except ImportError:
        raise missing_package_error("pyxdf", needed_for="reading .xdf") from None
    import mne

    p = Path(path)
    try:
        streams, _ = pyxdf.load_xdf(str(p), synchronize_clocks=True, dejitter_timestamps=True, verbose=False)
    except Exception as err:  # pyxdf raises many types for a damaged file
        raise read_error("eeg", p, err, what=".xdf file") from err
    described = [f"{_first(s['info'], 'name')!r} ({_first(s['info'], 'type')})" for s in streams]
    eeg = [s for s in streams if _first(s["info"], "type").upper() == "EEG" and len(s["time_stamps"]) >= 2]
    if not eeg:
        empty = [s for s in streams if _first(s["info"], "type").upper() == "EEG"]
        if empty:  # the stream's header was written, its samples were not: a recording cut short
            counts = ", ".join(f"{_first(s['info'], 'name')!r} ({len(s['time_stamps'])})" for s in empty)
            raise MilmerInputError(
                f"Invalid value for 'eeg': {p.name!r} has an EEG stream but fewer than 2 samples in it "
                f"({counts}): the file looks truncated (LabRecorder stopped or crashed before writing the "
                "data?). Use a complete recording."
            )
        check_nonempty("eeg", eeg, "EEG stream (type 'EEG')", hint=f"{p.name!r} holds {', '.join(described) or 'no streams'}")
    stream = max(eeg, key=lambda s: np.asarray(s["time_series"]).shape[1])
    info = stream["info"]
    name = _first(info, "name", "EEG")
    data = np.asarray(stream["time_series"], dtype=np.float64).T  # (C, N)
    stamps = np.asarray(stream["time_stamps"], dtype=np.float64)
    nominal = float(_first(info, "nominal_srate", "0") or 0)
    if not nominal > 0:
        nominal = (stamps.size - 1) / (stamps[-1] - stamps[0])
    labels, units = _channels(info, data.shape[0])
    scales = [_UNIT_SCALE.get(u.strip().lower()) for u in units]
    if any(s is None for s in scales):
        notes.append(EEGNote.of(
            "unit-assumed", f"{p.name}: stream {name!r} states no unit for some channels: microvolts assumed (LSL's convention)"
        ))  # fmt: skip
    data *= np.array([1e-6 if s is None else s for s in scales])[:, None]
    raw = mne.io.RawArray(data, mne.create_info(labels, nominal, "eeg", verbose=False), verbose=False)
    eeg_clock = fit_clock("eeg", stamps, nominal, detail=f"XDF stream {name!r}")
    if eeg_clock.segments:
        raw, eeg_clock = _place_pauses(raw, eeg_clock, p.name, notes)
    markers = [
        s for s in streams
        if s is not stream and _VIDEO_WORDS.search(_first(s["info"], "name") + " " + _first(s["info"], "type"))
    ]
    video_clock, marker_name = None, ""
    for m in markers:
        marker_name = _first(m["info"], "name")
        video_clock = video_clock_from_markers(m["time_series"], np.asarray(m["time_stamps"]), marker_name)
        if video_clock is not None:
            break
    if video_clock is None:
        notes.append(EEGNote.of(
            "no-video-markers",
            f"{p.name}: no video frame-marker stream (of {', '.join(described)}): the video is aligned by "
            "--offset or the recorded start times, not by the XDF clock",
        ))  # fmt: skip
    streams_used = f"EEG stream {name!r}" + (f", video frame markers {marker_name!r}" if video_clock else "")
    details = {"format": "xdf", "streams": streams_used, "eeg_stream": name}
    return raw, EEGTiming(clock=eeg_clock, video_clock=video_clock, clock_name="xdf", details=details)
