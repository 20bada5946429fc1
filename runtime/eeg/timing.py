"""What an EEG file says about time: its recorded start, its segments (recorder pauses), its clock.

- EDF/BDF headers carry the start date and time (whole seconds; EDF+ adds a fraction in the first
  annotation), BrainVision its first "New Segment" marker's date, FIF ``meas_date``: MNE reads all
  of them into ``raw.info['meas_date']`` (UTC).
- BrainVision Recorder writes a new "New Segment" marker, with its date, each time recording is
  resumed after a pause; MNE concatenates the segments as if contiguous. :func:`brainvision_segments`
  reads the markers' positions and dates from the ``.vmrk`` (BrainVision Core Data Format 1.0,
  "Mk<n>=New Segment,,<position>,<points>,<channel>,<YYYYMMDDhhmmssuuuuuu>") and
  :func:`place_segments` puts each segment at its true time, the pause marked ``BAD_ACQ_SKIP``
  (windows across it are dropped, like EDF+D gaps).
- An XDF/LSL recording has a clock (:mod:`.xdf`).
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..timebase import Segment, StreamClock

if TYPE_CHECKING:
    import mne

__all__ = ["EEGTiming", "BrainVisionSegment", "brainvision_segments", "place_segments", "meas_date_of"]

#: A pause longer than this (s) is not filled in (the recording would grow by hours of filler):
#: its segment stays where it is, and :func:`place_segments` says so.
MAX_PAUSE_S = 3600.0
# A recorded start before this year is a placeholder (EDF's "01.01.85 00:00:00" for unknown).
_PLAUSIBLE_YEAR = 1990


@dataclass(frozen=True)
class EEGTiming:
    """Facts about time from the EEG file (each empty/None when the file does not carry it).

    start_time:   the recording's start (UTC), from ``start_source``
    start_source: ``"EDF header"``, ``"BDF header"``, ``"BrainVision New Segment"``, ``"FIF meas_date"``
    segments:     later segments (recorder pauses), local time = true time after :func:`place_segments`
    clock:        the EEG stream's clock on a shared clock (XDF/LSL), else None
    video_clock:  the video's frames on that same clock (an XDF video frame-marker stream), else None
    clock_name:   what that shared clock is (``"xdf"``)
    details:      JSON-able extras for the report (the stream names used)
    """

    start_time: datetime | None = None
    start_source: str = ""
    segments: tuple[Segment, ...] = ()
    clock: StreamClock | None = None
    video_clock: StreamClock | None = None
    clock_name: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def meas_date_of(raw: mne.io.BaseRaw, suffix: str) -> tuple[datetime | None, str]:
    """The recorded start of ``raw`` (UTC) and where it came from; None for placeholders."""
    stamp = raw.info.get("meas_date")
    if stamp is None or stamp.year < _PLAUSIBLE_YEAR:
        return None, ""
    source = {
        ".edf": "EDF header", ".bdf": "BDF header", ".vhdr": "BrainVision New Segment", ".fif": "FIF meas_date",
    }.get(suffix, f"{suffix.lstrip('.')} header")
    return stamp.astimezone(timezone.utc), source


@dataclass(frozen=True)
class BrainVisionSegment:
    """One "New Segment" marker: ``sample`` 0-based position, ``date`` (UTC as written) or None."""

    sample: int
    date: datetime | None


_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{6})$")


def _parse_date(text: str) -> datetime | None:
    m = _DATE.match(text.strip())
    if not m or text.strip("0") == "":
        return None
    y, mo, d, h, mi, s, us = map(int, m.groups())
    try:
        return datetime(y, mo, d, h, mi, s, us, tzinfo=timezone.utc)
    except ValueError:
        return None


def brainvision_segments(vhdr: str | os.PathLike[str]) -> list[BrainVisionSegment]:
    """The "New Segment" markers of a BrainVision recording, in file order ([] without a marker file).

    The marker file is the header's ``[Common Infos] MarkerFile`` (next to the header).
    """
    vhdr = Path(vhdr)
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    text = vhdr.read_text(encoding="latin-1")
    try:
        parser.read_string(text[text.index("[") :] if "[" in text else text)
    except configparser.Error:
        return []  # MNE read the header; a marker list it cannot give is no evidence either way
    name = parser.get("Common Infos", "MarkerFile", fallback=None)
    if not name or not (vhdr.parent / name).is_file():
        return []
    out = []
    for line in (vhdr.parent / name).read_text(encoding="latin-1").splitlines():
        key, _, value = line.partition("=")
        if not re.fullmatch(r"Mk\d+", key.strip()):
            continue
        parts = value.split(",")
        if parts[0].strip() == "New Segment" and len(parts) >= 3 and parts[2].strip().isdigit():
            out.append(BrainVisionSegment(int(parts[2]) - 1, _parse_date(parts[5]) if len(parts) > 5 else None))
    return out


def place_segments(
    raw: mne.io.BaseRaw, segments: list[BrainVisionSegment]
) -> tuple[mne.io.BaseRaw, tuple[Segment, ...], list[tuple[float, float]]]:
    """Put each dated segment of ``raw`` (read as if contiguous) at its true time after the first.

    Pauses are filled with a straight line between the samples either side (filters do not ring
    at a step) and annotated ``BAD_ACQ_SKIP``; the file's annotations are moved with their segment.
    A segment without a date, dated before the previous one's end, or after a pause of over
    :data:`MAX_PAUSE_S`, stays where it is (the caller says so). Returns the recording (``raw`` itself when nothing moved), the later segments as
    time-model :class:`~..timebase.Segment` (local time = true time) and the pauses (start, end) s.
    """
    import mne

    sfreq = float(raw.info["sfreq"])
    n = raw.n_times
    segs = sorted((s for s in segments if 0 <= s.sample < n), key=lambda s: s.sample)
    if len(segs) < 2 or segs[0].date is None:
        return raw, (), []
    first = segs[0]
    bounds = [s.sample for s in segs[1:]] + [n]
    shift = np.zeros(len(segs))  # seconds each segment moves (cumulative pauses)
    for k in range(1, len(segs)):
        s = segs[k]
        shift[k] = shift[k - 1]
        if s.date is None:
            continue
        true_start = (s.date - first.date).total_seconds() - first.sample / sfreq
        pause = true_start - s.sample / sfreq - shift[k - 1]
        if 0.5 / sfreq < pause <= MAX_PAUSE_S:
            shift[k] = shift[k - 1] + pause
    if not np.any(shift > 0):
        return raw, (), []
    data = raw.get_data()  # (C, n)
    offsets = np.round(shift * sfreq).astype(int)
    n_total = n + int(offsets[-1])
    out = np.empty((data.shape[0], n_total))
    starts = [0] + bounds[:-1]
    starts[0] = 0
    pauses: list[tuple[float, float]] = []
    model: list[Segment] = []
    for k, (a, b) in enumerate(zip(starts, bounds)):
        out[:, a + offsets[k] : b + offsets[k]] = data[:, a:b]
        if k and offsets[k] > offsets[k - 1]:
            gap_a, gap_b = a + offsets[k - 1], a + offsets[k]
            left, right = data[:, a - 1], data[:, a]
            ramp = np.linspace(0, 1, gap_b - gap_a + 2)[1:-1]
            out[:, gap_a:gap_b] = left[:, None] + (right - left)[:, None] * ramp[None, :]
            pauses.append((gap_a / sfreq, gap_b / sfreq))
        if k:
            t = (a + offsets[k]) / sfreq
            date = segs[k].date
            model.append(Segment(t, t, (b - a) / sfreq, "header" if date else "assumed",
                                 f"New Segment {date.isoformat() if date else '(no date)'}"))
    new = mne.io.RawArray(out, raw.info.copy(), verbose=False)
    new._orig_units = dict(getattr(raw, "_orig_units", {}) or {})
    ann = raw.annotations
    onset = np.asarray(ann.onset, float) - raw.first_time if len(ann) else np.zeros(0)
    seg_of = np.searchsorted(np.asarray(bounds) / sfreq, onset, side="right")
    moved = onset + shift[np.clip(seg_of, 0, len(segs) - 1)]
    annotations = mne.Annotations(moved, ann.duration, ann.description, orig_time=ann.orig_time)
    for a, b in pauses:
        annotations.append(a, b - a, "BAD_ACQ_SKIP")
    new.set_annotations(annotations)
    return new, tuple(model), pauses
