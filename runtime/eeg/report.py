"""What EEG preprocessing did and doubts, as data: :class:`EEGReport` and its :class:`EEGNote` s.

A step records facts (typed fields) and notes; each note has a ``code`` (what happened, stable
across versions and languages), a ``severity`` and a default English ``text``. Renderers (the
summary table, JSON, CSV) style a note by its severity, never by searching its text.

Severities: ``'info'`` (something was done as designed: channels mapped, mains hum notched),
``'warning'`` (the output may be less trustworthy: ICA did not converge, clipping, a gap, an
interpolated channel), ``'flag'`` (windows carry a flag because of it).

:meth:`EEGReport.to_dict` gives the JSON form (the keys of ``EEGWindows.info``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "ICATrace",
    "NOTE_CODES",
    "Severity",
    "EEGNote",
    "ChannelReport",
    "ICAReport",
    "LineNoiseReport",
    "EEGReport",
    "ica_note",
]

Severity = Literal["info", "warning", "flag"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "flag")

#: Every note code and its severity.
NOTE_CODES: dict[str, Severity] = {
    "reader-warning": "warning",  # the file reader's line (odd dates, unclean stop, EDF+D gaps put at their times)
    "recording-paused": "warning",  # the recorder paused (BrainVision New Segment, an LSL stream's gap): put at its times, BAD_ACQ_SKIP
    "segments-undated": "warning",  # later BrainVision segments carry no date: taken to follow on
    "segments-unplaced": "warning",  # dated segments that could not be placed: taken to follow on
    "unit-assumed": "warning",  # an XDF stream stated no unit: microvolts assumed (LSL's convention)
    "no-video-markers": "info",  # an XDF file without a video frame-marker stream: aligned by --offset or start times
    "deap-trial": "info",  # which DEAP trial a .dat row is, the baseline dropped
    "decimated": "info",  # a long file read in chunks and resampled early to the model's rate
    "nan-gap": "warning",  # NaN runs (dropouts) treated as gaps
    "reference-electrode": "info",  # a channel flat at 0 V taken as the reference electrode
    "bad-channel": "flag",  # a channel unusable as recorded (NaN, flat, railed, not EEG, implausible): interpolated
    "clipping": "flag",  # clipping spans marked BAD_clipped
    "gap-windows-dropped": "warning",  # windows across a gap dropped
    "channels-mapped": "info",  # channel names mapped (preset, map, shared reference suffix)
    "channel-retyped": "info",  # a channel the reader typed non-EEG used as EEG
    "interpolated": "flag",  # channels interpolated from their neighbours
    "egi-interpolated": "flag",  # every channel interpolated from an EGI net (--channel-map egi-hydrocel-*)
    "line-noise": "info",  # mains hum notched
    "ica": "info",  # ICA ran and removed eye components
    "ica-not-converged": "warning",  # the ICA solver stopped at max_iter
}


@dataclass(frozen=True)
class EEGNote:
    """One thing preprocessing did or doubts.

    code:     a key of :data:`NOTE_CODES`
    severity: 'info', 'warning' or 'flag' (see the module docstring)
    text:     the default English sentence
    data:     the facts behind it (channel names, spans in seconds, ...), JSON-able
    """

    code: str
    severity: Severity
    text: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.code in NOTE_CODES, self.code
        assert self.severity in SEVERITIES, self.severity

    @classmethod
    def of(cls, code: str, text: str, **data: Any) -> EEGNote:
        """A note with ``code``'s severity from :data:`NOTE_CODES`."""
        return cls(code, NOTE_CODES[code], text, data)

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "severity": self.severity, "text": self.text}
        if self.data:
            out["data"] = dict(self.data)
        return out


@dataclass(frozen=True)
class ChannelReport:
    """How the file's channels became the model's: names mapped, channels interpolated and why."""

    mapped_by: tuple[str, ...] = ()
    renamed: Mapping[str, str] = field(default_factory=dict)
    interpolated: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    bad_in_file: tuple[str, ...] = ()
    bad: Mapping[str, str] = field(default_factory=dict)  # channel -> bad_channels.BAD_KINDS code
    retyped: Mapping[str, str] = field(default_factory=dict)
    reference_electrode: str | None = None
    eeg_unit: str = "from the file"
    amplitude_uv_median: float | None = None
    eog_ignored: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ICAReport:
    """The eye-artefact ICA: solver, components, what was removed, whether it converged."""

    method: str | None = None
    n_components: int = 0
    excluded: tuple[int, ...] = ()
    eog_source: str = "ICA disabled"
    scores_max: float | None = None
    scores_excluded: tuple[float, ...] = ()
    n_iter: int | None = None
    converged: bool | None = None
    fit_decim: int | None = None


@dataclass(frozen=True)
class LineNoiseReport:
    """Mains hum: the frequency notched, where it came from, its share of the power before/after."""

    freq: float | None = None
    source: str = "off in the spec"
    share_before: float | None = None
    share_after: float | None = None


def ica_note(ica: ICAReport) -> EEGNote | None:
    """The ICA line of the summary: a warning when the solver stopped at its iteration limit."""
    if not ica.n_components:
        return None
    converged = bool(ica.converged)
    text = (
        f"ICA ({ica.n_components} components, {'converged' if converged else 'did NOT converge'}): "
        f"removed {len(ica.excluded)} eye component(s) using {ica.eog_source}"
    )
    return EEGNote.of("ica" if converged else "ica-not-converged", text, excluded=list(ica.excluded), method=ica.method)


@dataclass(frozen=True)
class ICATrace:
    """A short stretch of the recording before and after ICA, for plotting.

    before, after: (C, n) float32 microvolts, band-passed, at ``sfreq``; ``after`` has the
    ``excluded`` components removed. ``start_s`` is the excerpt's start in the recording: the
    stretch where ICA changed these channels most.
    """

    channels: tuple[str, ...]
    sfreq: float
    start_s: float
    before: np.ndarray
    after: np.ndarray
    excluded: tuple[int, ...]
    eog_source: str

    @property
    def times(self) -> np.ndarray:
        """(n,) float64 seconds from the recording's start."""
        return self.start_s + np.arange(self.before.shape[1]) / self.sfreq


@dataclass(frozen=True)
class EEGReport:
    """What :func:`~.preprocess.preprocess_raw` did to one recording."""

    channels: ChannelReport
    ica: ICAReport
    line_noise: LineNoiseReport
    reference: str
    bad_spans: tuple[str, ...]
    windows_dropped_gap: tuple[float, ...]
    resampled_from: float | None
    decimated_by: int  # file rate / working rate, rounded: 16 for a long 2048 Hz file (.decimate), 1 for a short one
    baseline_s: float
    n_windows: int
    duration_s: float
    timings: Mapping[str, float]
    notes: tuple[EEGNote, ...] = ()
    trace: ICATrace | None = field(default=None, compare=False, repr=False)  # with keep_trace=True; not in to_dict

    def summary_notes(self) -> tuple[EEGNote, ...]:
        """The lines every summary shows after the step notes: channels mapped, retyped,
        interpolated, line noise, ICA."""
        out = [EEGNote.of("channels-mapped", f"channels mapped by {how}", how=how) for how in self.channels.mapped_by]
        out += [
            EEGNote.of("channel-retyped", f"channel {name}: {why}", channel=name)
            for name, why in self.channels.retyped.items()
        ]
        if self.channels.interpolated:
            names = list(self.channels.interpolated)
            out.append(EEGNote.of(
                "interpolated",
                f"interpolated {len(names)} channel(s) from their neighbours: {', '.join(names)} (every window is flagged)",
                channels=names,
            ))  # fmt: skip
        line = self.line_noise
        if line.freq:
            shares = (f": {100 * line.share_before:.1f} % of the power before, {100 * line.share_after:.1f} % after"
                      if line.share_before is not None and line.share_after is not None else "")  # fmt: skip
            text = f"line noise {line.freq:g} Hz ({line.source}) notched{shares}"
            out.append(EEGNote.of("line-noise", text, freq=line.freq))
        ica = ica_note(self.ica)
        if ica is not None:
            out.append(ica)
        return tuple(out)

    def all_notes(self) -> tuple[EEGNote, ...]:
        """The step notes, then :meth:`summary_notes`."""
        return self.notes + self.summary_notes()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``EEGWindows.info``); ``notes`` as their texts."""
        ch, ica, line = self.channels, self.ica, self.line_noise
        return {
            "ica_excluded": list(ica.excluded),
            "ica_n_components": ica.n_components,
            "eog_source": ica.eog_source,
            "ica_scores_max": ica.scores_max,
            "ica_scores_excluded": list(ica.scores_excluded),
            "ica_method": ica.method,
            "ica_n_iter": ica.n_iter,
            "ica_converged": ica.converged,
            "ica_fit_decim": ica.fit_decim,
            "eog_ignored": dict(ch.eog_ignored),
            "channels_renamed": dict(ch.renamed),
            "channels": {
                "mapped_by": list(ch.mapped_by),
                "interpolated": list(ch.interpolated),
                "missing": list(ch.missing),
                "bad_in_file": list(ch.bad_in_file),
                "bad": dict(ch.bad),
                "retyped": dict(ch.retyped),
                "reference_electrode": ch.reference_electrode,
                "eeg_unit": ch.eeg_unit,
                "amplitude_uv_median": ch.amplitude_uv_median,
            },
            "reference": self.reference,
            "line_noise": {"freq": line.freq, "source": line.source, "share_before": line.share_before,
                           "share_after": line.share_after},  # fmt: skip
            "bad_spans": list(self.bad_spans),
            "windows_dropped_gap": list(self.windows_dropped_gap),
            "notes": [n.text for n in self.notes],
            "note_codes": [n.to_dict() for n in self.all_notes()],
            "resampled_from": self.resampled_from,
            "decimated_by": self.decimated_by,
            "baseline_s": self.baseline_s,
            "n_windows": self.n_windows,
            "duration_s": self.duration_s,
            "unit": "uV",
            "timings": dict(self.timings),
        }
