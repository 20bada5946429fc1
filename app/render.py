"""Predictions on the terminal: the per-window table and the summary (rich), one-line warnings.

The files (JSON, CSV) are written by :mod:`milmer.runtime.report`; this module decides only the
words, letters and colours of the terminal. ``milmer-infer``, ``milmer demo`` and
``milmer preprocess`` print through it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from milmer.runtime.report import is_demo_result, result_provenance, summary_dict

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import Console
    from rich.table import Table

    from milmer.runtime.eeg.report import EEGNote
    from milmer.runtime.results import PredictionResult, WindowPrediction

__all__ = [
    "CLASS_LEGENDS",
    "QUALITY_CODES",
    "format_selected",
    "format_faces",
    "format_quality",
    "quality_legend",
    "ica_convergence_warning",
    "NOTE_STYLES",
    "eeg_note_markup",
    "warning_lines",
    "render_table",
    "render_summary",
    "print_report",
]


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


#: Rich style of an EEG note per severity (:class:`~milmer.runtime.eeg.report.EEGNote`): doubts stand out.
NOTE_STYLES: dict[str, str] = {"info": "", "warning": "yellow", "flag": "yellow"}


def eeg_note_markup(note: EEGNote) -> str:
    """An EEG note as rich markup for a summary table, styled by its severity (:data:`NOTE_STYLES`:
    warnings and flags yellow, e.g. ICA stopped at ``max_iter``), never by its words."""
    from rich.markup import escape

    style = NOTE_STYLES[note.severity]
    return f"[{style}]{escape(note.text)}[/{style}]" if style else escape(note.text)


def warning_lines(notes: Sequence[EEGNote], eeg_info: dict[str, Any]) -> list[str]:
    """The stderr lines, one each, of the EEG notes of severity 'warning' (a paused recording, NaN
    gaps, windows dropped across a gap, undated segments, ...; :data:`NOTE_STYLES`), as
    ``'Warning: <text>'``; the ICA one in :func:`ica_convergence_warning`'s words (it names the way
    forward), shown even where no note says so. Flags are not repeated here: every window carries them."""
    ica = ica_convergence_warning(eeg_info)
    texts = [ica if note.code == "ica-not-converged" and ica else note.text for note in notes if note.severity == "warning"]
    if ica and ica not in texts:
        texts.append(ica)
    return [f"Warning: {' '.join(t.split())}" for t in dict.fromkeys(texts)]


def render_table(result: PredictionResult) -> Table:
    """One row per window: start, label, class probabilities, chosen frames, face quality.

    Fits 80 columns for four classes; the predicted class's probability is bold, face counts
    are yellow when some frames had no face and red when none had.
    """
    from rich import box
    from rich.table import Table

    from milmer.runtime.demo_model import DEMO_NOTE

    names = result.class_names
    title = f"Predictions per {result.spec.eeg.window_s:g} s window"
    if result.stats.alignment is not None:
        title += f"\n[dim]aligned: {result.stats.alignment.summary()}[/dim]"
    if is_demo_result(result):
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


#: The summary's model line for a benchmark model (random weights).
BENCH_NOTE = "BENCHMARK MODEL, random weights: its predictions mean nothing"


def model_markup(result: PredictionResult) -> str:
    """Where the model came from, for the summary: the demo and benchmark models in bold red, and
    whether the spec said so or it was inferred (a spec written before provenance existed)."""
    from milmer.runtime.demo_model import DEMO_NOTE

    provenance = result_provenance(result)
    text = {"demo": f"[bold red]{DEMO_NOTE}[/bold red]", "benchmark": f"[bold red]{BENCH_NOTE}[/bold red]"}.get(
        provenance.kind, provenance.kind
    )
    return text if provenance.source == "spec" else f"{text} (inferred: the spec predates provenance)"


def render_summary(result: PredictionResult) -> Table:
    """Windows, class counts, face quality, coverage, per-stage ms per window, real-time factor."""
    from rich.table import Table

    summary = summary_dict(result)
    settings = result.settings
    table = Table(title="Summary", show_header=False)
    table.add_row("model", model_markup(result))
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
    alignment = result.stats.alignment
    if alignment is not None:
        table.add_row("alignment", alignment.summary())
        for note in alignment.notes:
            table.add_row("", f"[yellow]{note.message}[/yellow]" if note.severity == "warning" else note.message)
    if summary["windows_flagged"]:
        table.add_row("flagged windows", f"{summary['windows_flagged']} of {summary['n_windows']} (see the quality column)")
    for note in result.stats.notes:
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
            f"{_precision_text(settings)}, batch {settings.get('batch')}",
        )
    return table


def print_report(result: PredictionResult, console: Console | None = None, *, table: bool = True) -> None:
    """Print the per-window table (unless ``table=False``) and the summary."""
    from rich.console import Console

    console = console or Console()
    if table:
        console.print(render_table(result))
    console.print(render_summary(result))


def _precision_text(settings: dict[str, Any]) -> str:
    """'fp32', or 'bf16 (fp32 graphs)' where the products ran in another precision than the files."""
    graphs, compute = settings.get("precision"), settings.get("compute_precision")
    return f"{compute} ({graphs} graphs)" if compute and compute != graphs else str(graphs)
