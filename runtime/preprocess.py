"""Video + EEG recording -> what the model sees (aligned windows and a report), and that written to a
folder (``milmer preprocess``, :mod:`milmer.app.preprocess`, prints it).

The recording goes in through :func:`~.recording.open_recording`, the same step ``milmer-infer``
uses; the training cache calls the same EEG and face functions, so training and serving cannot
drift.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import scratch
from .files import atomic_dir, write_json_atomic
from .recording import Coverage, RecordingOptions, open_recording, window_coverage
from .spec import ModelSpec
from .windows import EEGWindows, FaceWindows

if TYPE_CHECKING:
    from .eeg.preprocess import ICATrace
    from .eeg.report import EEGNote

__all__ = ["Coverage", "Preprocessed", "preprocess_recording", "window_coverage", "write_preprocessed"]


@dataclass
class Preprocessed:
    """Both modalities of one recording, aligned window by window."""

    eeg: EEGWindows
    faces: FaceWindows
    report: dict[str, Any] = field(default_factory=dict)
    ica_trace: ICATrace | None = None  # before/after-ICA excerpt, with keep_trace=True
    notes: list[EEGNote] = field(default_factory=list)  # typed: code, severity, text (report['notes']: the texts)


def preprocess_recording(
    video: str | os.PathLike[str],
    eeg: str | os.PathLike[str],
    spec: ModelSpec | None = None,
    *,
    offset_s: float | None = None,
    baseline_s: float | None = None,
    options: RecordingOptions | None = None,
    progress: bool = False,
    keep_trace: bool = False,
) -> Preprocessed:
    """Run the EEG and face paths on one recording.

    Parameters
    ----------
    video, eeg : paths of the face video and the EEG file (EDF/BDF/FIF/BrainVision, DEAP .dat).
    offset_s : video time (s) at EEG t = 0; None: from the evidence (``--offset auto``, :mod:`.sync`);
        ignored when ``options`` is given.
    baseline_s : seconds at the start of the EEG to drop (None: 3 for DEAP .dat, else 0;
        ignored when ``options`` is given).
    options : the recording options (:class:`~.recording.RecordingOptions`).

    Returns windows ``eeg.data (W, C, T)`` and ``faces.frames (W, F, S, S, 3)`` for the windows
    the video covers (:func:`~.recording.open_recording`); the rest are dropped and reported.
    """
    from .face.extract import extract_faces

    spec = spec or ModelSpec()
    options = options or RecordingOptions(offset_s=offset_s, baseline_s=baseline_s)
    t0 = time.perf_counter()
    rec = open_recording(video, eeg, spec, options, keep_trace=keep_trace)
    t1 = time.perf_counter()
    faces = extract_faces(
        rec.video, rec.windows.starts, spec.face, spec.eeg.window_s, alignment=rec.alignment,
        progress=progress, video_info=rec.video_info,
    )
    t_face = time.perf_counter() - t1
    eeg_windows = rec.windows
    report = {
        "video": str(video),
        "eeg": str(eeg),
        "eeg_source": rec.source,
        "offset_s": round(rec.alignment.offset_s, 6) if rec.alignment is not None else options.offset_s,
        "alignment": rec.alignment.to_dict() if rec.alignment is not None else None,
        "baseline_s": rec.baseline_s,
        "n_windows": int(len(eeg_windows.starts)),
        "windows_dropped_outside_video": rec.coverage.n_dropped,
        "window_flags": [list(f) for f in eeg_windows.flags or []],
        "notes": [str(n) for n in rec.notes],
        "eeg_notes": [n.to_dict() for n in rec.notes],
        "eeg_info": eeg_windows.info,
        "face_info": faces.info,
        "timings_s": {
            "read_eeg": round(rec.timings["eeg_read"], 4),
            **{f"eeg_{k}": round(v, 4) for k, v in eeg_windows.info.get("timings", {}).items()},
            **{f"face_{k}": round(v, 4) for k, v in faces.info.get("timings", {}).items()},
            "face_total": round(t_face, 4),
            "total": round(time.perf_counter() - t0, 4),
        },
        "spec": spec.to_dict(),
    }
    return Preprocessed(eeg=eeg_windows, faces=faces, report=report, ica_trace=rec.trace, notes=list(rec.notes))


def write_preprocessed(
    result: Preprocessed,
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    n_montage: int = 4,
    out_name: str = "out",
) -> Path:
    """Write ``windows.npz``, ``report.json``, ``faces.png`` and ``eeg_ica.png`` into ``out``.

    The folder appears only when everything was written (no partial output on failure).
    ``out_name`` names ``out`` in errors (``'--out'`` from the command line).
    """
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite, name=out_name) as tmp:
        scratch.savez(  # np.savez's file; long recordings' crops and windows written a block at a time
            tmp / "windows.npz",
            eeg=result.eeg.data,
            faces=result.faces.frames,
            starts=result.eeg.starts,
            face_found=result.faces.found,
            window_has_face=result.faces.window_has_face,
            frame_times=result.faces.timestamps,
            eeg_flags=np.array([";".join(f) for f in (result.eeg.flags or [])], dtype=str),
            **({"frame_flags": result.faces.flags} if result.faces.flags is not None else {}),
        )
        from .face.plots import save_montage

        save_montage(result.faces, tmp / "faces.png", max_windows=n_montage, window_starts=result.eeg.starts)
        if result.ica_trace is not None:
            from .eeg.plots import plot_ica_before_after

            plot_ica_before_after(result.ica_trace, tmp / "eeg_ica.png")
        write_json_atomic(tmp / "report.json", result.report)
    return out
