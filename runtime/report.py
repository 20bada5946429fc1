"""Predictions out: a rich table and summary for the terminal, atomic JSON and CSV files.

JSON (``--out FILE.json``)::

    {"format": "milmer-predictions", "format_version": 1, "milmer_version": ...,
     "model": {"dir", "demo", "label_scheme", "class_names", "spec_fingerprint"[, "note"]},
     "settings": {backend, device, precision, batch, video, eeg, offset_s, baseline_s, ...},
     "windows": [{"index", "start", "end", "label", "class_index", "probabilities": {class: p},
                  "selected", "selected_weights", "mil_weights", "faces_found", "n_frames",
                  "window_has_face", "predicted", "frame_times", "frame_flags", "quality"}, ...],
     "summary": {..., "eeg": {...}, "notes": [...]}}

CSV (``--out FILE.csv``), one row per window::

    start,end,label,p_<class>...,selected,mil_weights,faces_found,quality,demo_model

``demo_model`` (and JSON ``model.demo``, with a ``note``; a line above the table) is ``true`` when
the model is the demo model, trained on synthetic data (:func:`~.demo_model.is_demo_model`).

``quality`` lists what makes a window less trustworthy (``bad-span:<annotation>``,
``interpolated:<channels>``, ``no-face``, ``some-frames-without-face``; ``;``-separated in the
CSV, empty when nothing is known against it).

with ``selected`` the top-k frame indices and ``mil_weights`` all ``F`` frame weights, each
space-separated. A window without a face gets no prediction: JSON ``"label": null``,
``"predicted": false`` and null probabilities; CSV label ``no_face`` and empty probabilities and
weights; the table says "no face". Probabilities and weights have 6 decimals, times 3. A failed write leaves no
file behind (and an existing file untouched).
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .check import check_suffix
from ._io import atomic_file, write_json_atomic

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from .results import PredictionResult, WindowPrediction

__all__ = [
    "OUT_SUFFIXES",
    "NO_FACE_LABEL",
    "FORMAT_VERSION",
    "check_out_path",
    "format_selected",
    "format_faces",
    "format_quality",
    "quality_legend",
    "QUALITY_CODES",
    "prediction_record",
    "summary_dict",
    "result_to_dict",
    "write_json",
    "write_csv",
    "write_predictions",
    "render_table",
    "render_summary",
    "print_report",
    "ica_convergence_warning",
    "eeg_note_markup",
    "CLASS_LEGENDS",
]

#: The CSV label (and table text) of a window without a face, which gets no emotion prediction.
NO_FACE_LABEL = "no_face"
#: File types ``--out`` writes.
OUT_SUFFIXES: tuple[str, ...] = (".json", ".csv")
FORMAT_VERSION = 1
_P_DIGITS = 6  # probabilities and weights
_T_DIGITS = 3  # seconds


def check_out_path(out: str | os.PathLike[str], name: str = "out") -> Path:
    """``out`` as a Path if its suffix is one the writers know (checked before any slow work);
    errors name it ``name`` (``'--out'`` from the command line)."""
    path = Path(out)
    check_suffix(name, path, OUT_SUFFIXES)
    return path


# ---------------------------------------------------------------------- formatting
def format_selected(window: WindowPrediction, *, digits: int = 2) -> str:
    """The selected frames with their MIL weights, strongest first: ``'2:0.31 5:0.22 7:0.19'``."""
    return " ".join(f"{int(i)}:{w:.{digits}f}" for i, w in zip(window.selected, window.selected_weights))


def format_faces(window: WindowPrediction) -> str:
    """Frames with a detected face out of all frames: ``'10/10'``."""
    return f"{window.faces_found}/{window.n_frames}"


#: The class names spelled out under the terminal table (DEAP ratings 1-9; high iff >= 5).
CLASS_LEGENDS: dict[str, str] = {
    "deap4": "HA/LA = high/low arousal, HV/LV = high/low valence (self-ratings >= 5 are high)",
}

#: One letter per flag kind in the terminal table (the CSV and JSON spell flags out).
QUALITY_CODES: dict[str, str] = {
    "bad-span": "B",  # overlaps a BAD_* span of the EEG file
    "interpolated": "I",  # some EEG channels were interpolated
    "no-face": "F",  # no frame of the window had a face
    "some-frames-without-face": "f",  # some frames had none
}


def format_quality(window: WindowPrediction) -> str:
    """The window's flags as letters (:data:`QUALITY_CODES`, ``'?'`` for other kinds), ``'ok'``
    when it has none: ``'BIF'``."""
    letters = []
    for flag in window.flags:
        code = QUALITY_CODES.get(flag.partition(":")[0], "?")
        if code not in letters:
            letters.append(code)
    return "".join(letters) or "ok"


def quality_legend(windows: list[WindowPrediction]) -> str | None:
    """``'quality: B = bad-span, I = interpolated (T7, T8)'`` for the kinds present, else None."""
    seen: dict[str, set[str]] = {}
    for w in windows:
        for flag in w.flags:
            kind, _, detail = flag.partition(":")
            seen.setdefault(kind, set()).update(d for d in detail.split(",") if d)
    if not seen:
        return None
    parts = []
    for kind, details in seen.items():
        extra = f" ({', '.join(sorted(details))})" if details else ""
        parts.append(f"{QUALITY_CODES.get(kind, '?')} = {kind}{extra}")
    return "quality: " + "; ".join(parts)


def _clock(seconds: float) -> str:
    """``'0:03.0'``, ``'1:02:03.0'``: readable times for long recordings."""
    minutes, sec = divmod(float(seconds), 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{sec:04.1f}" if hours else f"{minutes}:{sec:04.1f}"


def _r(x: float, digits: int = _P_DIGITS) -> float | None:
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None


# ---------------------------------------------------------------------- records
def prediction_record(window: WindowPrediction, class_names: tuple[str, ...]) -> dict[str, Any]:
    """One window as plain JSON values (floats rounded; NaN frame times become null)."""
    return {
        "index": int(window.index),
        "start": _r(window.start, _T_DIGITS),
        "end": _r(window.end, _T_DIGITS),
        "label": window.label,
        "class_index": int(window.class_index),
        "probabilities": {name: _r(p) for name, p in zip(class_names, window.probabilities)},
        "selected": [int(i) for i in window.selected],
        "selected_weights": [_r(w) for w in window.selected_weights],
        "mil_weights": [_r(w) for w in window.mil_weights],
        "faces_found": window.faces_found,
        "n_frames": window.n_frames,
        "window_has_face": window.window_has_face,
        "predicted": window.predicted,
        "frame_times": [_r(t, 4) for t in window.frame_times],
        "frame_flags": None if window.frame_flags is None else [int(f) for f in window.frame_flags],
        "quality": list(window.flags),
    }


#: ``ICASpec.method`` -> the solver's name in messages.
_ICA_SOLVERS = {"picard": "Picard", "fastica": "FastICA"}


def ica_convergence_warning(eeg_info: dict[str, Any]) -> str | None:
    """One line when the ICA solver (``eeg_info['ica_method']``: Picard or FastICA) stopped at its
    iteration limit (``eeg_info['ica_converged']`` is False), else None: the eye-artefact removal
    may then be incomplete."""
    if eeg_info.get("ica_converged") is not False:
        return None
    method = eeg_info.get("ica_method")
    solver = f" ({_ICA_SOLVERS.get(method, method)})" if method else ""
    return (
        f"ICA{solver} did not converge: the eye-artefact removal may be incomplete "
        "(ica_converged: false in the report); check the EEG's quality, e.g. with `milmer preprocess` and its eeg_ica.png."
    )


def eeg_note_markup(note: str) -> str:
    """An EEG note (:func:`~.recording.summary_notes`) as rich markup for a summary table: yellow when
    it says ICA "did NOT converge" (the solver stopped at ``max_iter``; also a warning line)."""
    return f"[yellow]{note}[/yellow]" if "did NOT converge" in note else note


def _is_demo(result: PredictionResult) -> bool:
    from .demo_model import is_demo_model

    return is_demo_model(result.model_dir)


def summary_dict(result: PredictionResult) -> dict[str, Any]:
    """Counts, coverage, per-stage timings (s and ms per window) and the real-time factor."""
    stats = result.stats
    n = len(result.windows)
    per_window = {k: _r(1000.0 * v / n, 3) if n else None for k, v in stats.timings.items()}
    frames_with_face = sum(w.faces_found for w in result.windows)
    return {
        "n_windows": n,
        "seconds_covered": _r(result.seconds_covered, _T_DIGITS),
        "class_counts": result.class_counts(),
        "frames_with_face": frames_with_face,
        "frames_total": sum(w.n_frames for w in result.windows),
        "windows_without_face": sum(not w.window_has_face for w in result.windows),
        "windows_without_prediction": sum(not w.predicted for w in result.windows),
        "coverage": stats.coverage.to_dict() if stats.coverage is not None else None,
        "n_batches": stats.n_batches,
        "wall_s": _r(stats.wall_s, 4),
        "real_time_factor": _r(result.real_time_factor, 4),
        "timings_s": {k: _r(v, 4) for k, v in stats.timings.items()},
        "timings_ms_per_window": per_window,
        "face_timings_s": {k: _r(v, 4) for k, v in stats.face.timings.items()},
        "eeg": {
            k: stats.eeg_info.get(k)
            for k in (
                "ica_excluded", "ica_converged", "ica_n_components", "eog_source", "reference", "line_noise",
                "channels", "bad_spans", "windows_dropped_gap", "resampled_from", "duration_s",
            )
        },
        "eeg_source": stats.source,
        "windows_flagged": sum(bool(w.flags) for w in result.windows),
        "notes": list(stats.notes),
    }


def result_to_dict(result: PredictionResult) -> dict[str, Any]:
    """The whole result as the JSON document described in the module docstring."""
    from .demo_model import DEMO_NOTE

    spec = result.spec
    demo = _is_demo(result)
    return {
        "format": "milmer-predictions",
        "format_version": FORMAT_VERSION,
        "milmer_version": spec.versions.get("milmer"),
        "model": {
            "dir": str(result.model_dir),
            "demo": demo,
            "label_scheme": spec.label_scheme,
            "class_names": list(spec.class_names),
            "spec_fingerprint": spec.fingerprint(),
            **({"note": DEMO_NOTE} if demo else {}),
        },
        "settings": result.settings,
        "windows": [prediction_record(w, spec.class_names) for w in result.windows],
        "summary": summary_dict(result),
    }


# ---------------------------------------------------------------------- writers
def write_json(result: PredictionResult, path: str | os.PathLike[str]) -> Path:
    """Write :func:`result_to_dict` atomically."""
    return write_json_atomic(path, result_to_dict(result))


def csv_header(class_names: tuple[str, ...]) -> list[str]:
    return [
        "start", "end", "label", *(f"p_{c}" for c in class_names), "selected", "mil_weights", "faces_found", "quality",
        "demo_model",
    ]


def write_csv(result: PredictionResult, path: str | os.PathLike[str]) -> Path:
    """One row per window (see the module docstring), written atomically."""
    names = result.class_names
    demo = "true" if _is_demo(result) else "false"
    with atomic_file(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(csv_header(names))
        for w in result.windows:
            record = prediction_record(w, names)
            writer.writerow(
                [
                    f"{w.start:.{_T_DIGITS}f}",
                    f"{w.end:.{_T_DIGITS}f}",
                    record["label"] if w.predicted else NO_FACE_LABEL,
                    *(f"{p:.{_P_DIGITS}f}" if w.predicted else "" for p in w.probabilities),
                    " ".join(str(i) for i in record["selected"]),
                    " ".join(f"{x:.{_P_DIGITS}f}" for x in w.mil_weights) if w.predicted else "",
                    record["faces_found"],
                    ";".join(w.flags),
                    demo,
                ]
            )
    return Path(path)


_WRITERS = {".json": write_json, ".csv": write_csv}


def write_predictions(result: PredictionResult, out: str | os.PathLike[str]) -> Path:
    """Write ``result`` to ``out`` as JSON or CSV, chosen by its suffix (``.json``, ``.csv``)."""
    path = check_out_path(out)
    return _WRITERS[path.suffix.lower()](result, path)


# ---------------------------------------------------------------------- terminal
def render_table(result: PredictionResult) -> Table:
    """One row per window: start, label, class probabilities, chosen frames, face quality.

    Fits 80 columns for four classes; the predicted class's probability is bold, face counts
    are yellow when some frames had no face and red when none had.
    """
    from rich import box
    from rich.table import Table

    from .demo_model import DEMO_NOTE

    names = result.class_names
    title = f"Predictions per {result.spec.eeg.window_s:g} s window"
    if _is_demo(result):
        title = f"[bold red]{DEMO_NOTE}[/bold red]\n{title}"
    legends = [CLASS_LEGENDS.get(result.spec.label_scheme), quality_legend(result.windows)]
    legend = "\n".join(line for line in legends if line) or None
    table = Table(
        title=title, caption=legend, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0)
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("start", justify="right", no_wrap=True)
    table.add_column("label", no_wrap=True)
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("frame:MIL weight", no_wrap=True)
    table.add_column("faces", justify="right", no_wrap=True)
    table.add_column("quality", no_wrap=True)
    for w in result.windows:
        probs = [
            f"[bold]{p:.2f}[/bold]" if k == w.class_index else f"{p:.2f}" if w.predicted else "-"
            for k, p in enumerate(w.probabilities)
        ]
        faces = format_faces(w)
        if not w.window_has_face:
            faces = f"[red]{faces}[/red]"
        elif w.faces_found < w.n_frames:
            faces = f"[yellow]{faces}[/yellow]"
        table.add_row(
            str(w.index),
            _clock(w.start),
            f"[bold]{w.label}[/bold]" if w.predicted else "[red]no face[/red]",
            *probs,
            format_selected(w),
            faces,
            format_quality(w),
        )
    return table


def render_summary(result: PredictionResult) -> Table:
    """Windows, class counts, face quality, coverage, per-stage ms per window, real-time factor."""
    from rich.table import Table

    summary = summary_dict(result)
    settings = result.settings
    table = Table(title="Summary", show_header=False)
    if _is_demo(result):
        from .demo_model import DEMO_NOTE

        table.add_row("model", f"[bold red]{DEMO_NOTE}[/bold red]")
    table.add_row("windows", f"{summary['n_windows']} ({summary['seconds_covered']:g} s of recording)")
    table.add_row("classes", ", ".join(f"{k} {v}" for k, v in summary["class_counts"].items()))
    table.add_row(
        "faces",
        f"{summary['frames_with_face']}/{summary['frames_total']} frames with a face; "
        f"{summary['windows_without_face']} of {summary['n_windows']} windows without any"
        + (
            f" ({summary['windows_without_prediction']} not predicted)"
            if summary["windows_without_prediction"]
            else ""
        ),
    )
    coverage = summary["coverage"]
    if coverage is not None and (coverage["n_dropped_start"] or coverage["n_dropped_end"]):
        table.add_row(
            "dropped windows",
            f"{coverage['n_dropped_start']} at the start, {coverage['n_dropped_end']} at the end (outside the video)",
        )
    if summary["windows_flagged"]:
        table.add_row("flagged windows", f"{summary['windows_flagged']} of {summary['n_windows']} (see the quality column)")
    for note in summary["notes"]:
        table.add_row("eeg", eeg_note_markup(note))
    stages = summary["timings_ms_per_window"]
    table.add_row(
        "ms per window",
        ", ".join(f"{k} {v:.1f}" for k, v in stages.items() if v is not None),
    )
    table.add_row(
        "real-time factor",
        f"{summary['real_time_factor']:.3f} ({summary['wall_s']:.2f} s for {summary['seconds_covered']:g} s; "
        "below 1 is faster than real time)",
    )
    backend = settings.get("backend", {})
    device = settings.get("device", {})
    if backend:
        table.add_row(
            "ran on",
            f"swin {backend.get('swin')}/{device.get('swin')}, fusion {backend.get('fusion')}/{device.get('fusion')}, "
            f"{settings.get('precision')}, batch {settings.get('batch')}",
        )
    return table


def print_report(result: PredictionResult, console: Console | None = None, *, table: bool = True) -> None:
    """Print the per-window table (unless ``table=False``) and the summary."""
    from rich.console import Console

    console = console or Console()
    if table:
        console.print(render_table(result))
    console.print(render_summary(result))
