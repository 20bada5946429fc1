"""Predictions out as files: the JSON document and the CSV table, written atomically.

The terminal table and summary are drawn from the same records by ``milmer.app.render``.

JSON (``--out FILE.json``)::

    {"format": "milmer-predictions", "format_version": 1, "milmer_version": ...,
     "model": {"dir", "provenance", "provenance_source", "demo", "label_scheme", "class_names",
               "spec_fingerprint"[, "note"]},
     "settings": {backend, device, precision, batch, video, eeg, offset_s, baseline_s, ...},
     "windows": [{"index", "start", "end", "label", "class_index", "probabilities": {class: p},
                  "selected", "selected_weights", "mil_weights", "faces_found", "n_frames",
                  "window_has_face", "predicted", "frame_times", "frame_flags", "quality"}, ...],
     "summary": {..., "eeg": {...}, "notes": [...]}}

CSV (``--out FILE.csv``), one row per window::

    start,end,label,p_<class>...,selected,mil_weights,faces_found,quality,demo_model,video_start,alignment

``video_start`` is the video time (s, first frame = 0, as ``frame_times``) the window's start was paired with and
``alignment`` the offset and its source (``-5.000 s (header)``); JSON ``summary.alignment`` and
``settings.alignment`` hold the whole time model (:class:`~.timebase.Alignment`), the table's
title and the summary state it too.

``demo_model`` (and JSON ``model.demo``, with a ``note``; a line above the table) is ``true`` when
the model is the demo model, trained on synthetic data. JSON ``model.provenance`` is where the
model came from (``'trained'``, ``'demo'``, ``'benchmark'``) and ``model.provenance_source``
``'spec'`` or, for a spec written before it was recorded, ``'inferred'``
(:func:`~.demo_model.model_provenance`).

``quality`` lists what makes a window less trustworthy (``bad-span:<annotation>``,
``interpolated:<channels>``, ``interpolated:<EGI preset>`` when every channel was interpolated
from an EGI net, ``no-face``, ``some-frames-without-face``; ``;``-separated in the
CSV, empty when nothing is known against it).

with ``selected`` the top-k frame indices and ``mil_weights`` all ``F`` frame weights, each
space-separated. A window without a face gets no prediction: JSON ``"label": null``,
``"predicted": false`` and null probabilities; CSV label ``no_face`` and empty probabilities and
weights. Probabilities and weights have 6 decimals, times 3. A failed write leaves no
file behind (and an existing file untouched).
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .check import check_suffix, check_writable_file
from .files import atomic_file, write_json_atomic

if TYPE_CHECKING:
    from .demo_model import ModelProvenance
    from .results import PredictionResult, WindowPrediction

__all__ = [
    "OUT_SUFFIXES",
    "NO_FACE_LABEL",
    "FORMAT_VERSION",
    "check_out_path",
    "prediction_record",
    "is_demo_result",
    "result_provenance",
    "summary_dict",
    "result_to_dict",
    "write_json",
    "write_csv",
    "write_predictions",
]

#: The CSV label (and table text) of a window without a face, which gets no emotion prediction.
NO_FACE_LABEL = "no_face"
#: File types ``--out`` writes.
OUT_SUFFIXES: tuple[str, ...] = (".json", ".csv")
FORMAT_VERSION = 1
_P_DIGITS = 6  # probabilities and weights
_T_DIGITS = 3  # seconds


def check_out_path(out: str | os.PathLike[str], name: str = "out") -> Path:
    """``out`` as a Path if its suffix is one the writers know and it can be written (its folder is
    one or can be made: :func:`~.check.check_writable_file`), checked before any slow work;
    errors name it ``name`` (``'--out'`` from the command line)."""
    path = Path(out)
    check_suffix(name, path, OUT_SUFFIXES)
    return check_writable_file(name, path, hint="give a FILE.json or FILE.csv in a writable folder")


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


def result_provenance(result: PredictionResult) -> ModelProvenance:
    """Where the model behind ``result`` came from (:func:`~.demo_model.model_provenance`)."""
    from .demo_model import model_provenance

    return model_provenance(result.spec, result.model_dir)


def is_demo_result(result: PredictionResult) -> bool:
    """Whether ``result`` came from the demo model, trained on synthetic data."""
    return result_provenance(result).demo


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
        "alignment": stats.alignment.to_dict() if stats.alignment is not None else None,
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
        "notes": [str(n) for n in stats.notes],
    }


def result_to_dict(result: PredictionResult) -> dict[str, Any]:
    """The whole result as the JSON document described in the module docstring."""
    from .demo_model import DEMO_NOTE

    spec = result.spec
    provenance = result_provenance(result)
    demo = provenance.demo
    return {
        "format": "milmer-predictions",
        "format_version": FORMAT_VERSION,
        "milmer_version": spec.versions.get("milmer"),
        "model": {
            "dir": str(result.model_dir),
            "provenance": provenance.kind,
            "provenance_source": provenance.source,
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
        "demo_model", "video_start", "alignment",
    ]


def write_csv(result: PredictionResult, path: str | os.PathLike[str]) -> Path:
    """One row per window (see the module docstring), written atomically."""
    names = result.class_names
    demo = "true" if is_demo_result(result) else "false"
    alignment = result.stats.alignment
    how = f"{alignment.offset_s:+.3f} s ({alignment.offset_source})" if alignment is not None else ""
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
                    f"{float(alignment.eeg_to_video(w.start)):.{_T_DIGITS}f}" if alignment is not None else "",
                    how,
                ]
            )
    return Path(path)


_WRITERS = {".json": write_json, ".csv": write_csv}


def write_predictions(result: PredictionResult, out: str | os.PathLike[str]) -> Path:
    """Write ``result`` to ``out`` as JSON or CSV, chosen by its suffix (``.json``, ``.csv``)."""
    path = check_out_path(out)
    return _WRITERS[path.suffix.lower()](result, path)

