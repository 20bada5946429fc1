"""Video + EEG recording -> what the model sees: ``milmer preprocess``.

The one preprocessing path: the runtime pipeline and the training cache both call the EEG and
face functions used here, so training and serving cannot drift.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._io import atomic_dir, write_json_atomic
from .spec import ModelSpec
from .windows import EEGWindows, FaceWindows

__all__ = ["Preprocessed", "preprocess_recording", "write_preprocessed"]


@dataclass
class Preprocessed:
    """Both modalities of one recording, aligned window by window."""

    eeg: EEGWindows
    faces: FaceWindows
    report: dict[str, Any] = field(default_factory=dict)
    ica_trace: Any = None


def preprocess_recording(
    video: str | os.PathLike[str],
    eeg: str | os.PathLike[str],
    spec: ModelSpec | None = None,
    *,
    offset_s: float = 0.0,
    baseline_s: float = 0.0,
    progress: bool = False,
    keep_trace: bool = False,
) -> Preprocessed:
    """Run the EEG and face paths on one recording.

    Parameters
    ----------
    video, eeg : paths of the face video and the EEG file (EDF/BDF/FIF/BrainVision).
    offset_s : video time (s) at EEG t = 0.
    baseline_s : seconds at the start of the EEG to drop (DEAP's pre-trial baseline is 3 s).

    Returns windows ``eeg.data (W, C, T)`` and ``faces.frames (W, F, S, S, 3)`` for the windows
    the video covers; windows past the end of the video are dropped and reported.
    """
    from ._check import check_path_exists
    from .eeg.io import read_raw
    from .eeg.preprocess import preprocess_raw
    from .face.extract import extract_faces
    from .face.video import probe_video

    spec = spec or ModelSpec()
    check_path_exists("video", video)
    check_path_exists("eeg", eeg)
    t0 = time.perf_counter()
    info = probe_video(video)  # fail fast on a bad video before the slow EEG work
    raw = read_raw(eeg)
    t_read = time.perf_counter() - t0
    result = preprocess_raw(raw, spec.eeg, baseline_s=baseline_s, keep_trace=keep_trace)
    eeg_windows, trace = (result if isinstance(result, tuple) else (result, None))
    if trace is None:
        trace = getattr(eeg_windows, "trace", None)

    # Keep only windows whose whole span lies inside the video (video t = eeg t + offset).
    ends = eeg_windows.starts + spec.eeg.window_s + offset_s
    covered = (eeg_windows.starts + offset_s >= 0) & (ends <= info.duration_s + 1e-6)
    dropped = int((~covered).sum())
    if not covered.any():
        from ._check import MilmerInputError

        raise MilmerInputError(
            f"Invalid value for 'video': the video ({info.duration_s:.1f} s, offset {offset_s:+.1f} s) "
            f"does not cover any {spec.eeg.window_s:g} s EEG window "
            f"(EEG: {eeg_windows.info.get('duration_s', float('nan')):.1f} s)."
        )
    eeg_windows = EEGWindows(
        data=np.ascontiguousarray(eeg_windows.data[covered]),
        starts=eeg_windows.starts[covered],
        info=eeg_windows.info,
    )
    t1 = time.perf_counter()
    faces = extract_faces(
        video, eeg_windows.starts, spec.face, spec.eeg.window_s, offset_s=offset_s, progress=progress
    )
    t_face = time.perf_counter() - t1
    report = {
        "video": str(video),
        "eeg": str(eeg),
        "offset_s": offset_s,
        "baseline_s": baseline_s,
        "n_windows": int(len(eeg_windows.starts)),
        "windows_dropped_outside_video": dropped,
        "eeg_info": eeg_windows.info,
        "face_info": faces.info,
        "timings_s": {
            "read_eeg": round(t_read, 4),
            **{f"eeg_{k}": round(v, 4) for k, v in eeg_windows.info.get("timings", {}).items()},
            **{f"face_{k}": round(v, 4) for k, v in faces.info.get("timings", {}).items()},
            "face_total": round(t_face, 4),
            "total": round(time.perf_counter() - t0, 4),
        },
        "spec": spec.to_dict(),
    }
    return Preprocessed(eeg=eeg_windows, faces=faces, report=report, ica_trace=trace)


def write_preprocessed(
    result: Preprocessed, out: str | os.PathLike[str], *, overwrite: bool = False, n_montage: int = 4
) -> Path:
    """Write ``windows.npz``, ``report.json``, ``faces.png`` and ``eeg_ica.png`` into ``out``.

    The folder appears only when everything was written (no partial output on failure).
    """
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        np.savez(
            tmp / "windows.npz",
            eeg=result.eeg.data,
            faces=result.faces.frames,
            starts=result.eeg.starts,
            face_found=result.faces.found,
            window_has_face=result.faces.window_has_face,
            frame_times=result.faces.timestamps,
        )
        from .face.plots import save_montage

        save_montage(result.faces, tmp / "faces.png", max_windows=n_montage)
        if result.ica_trace is not None:
            from .eeg.plots import plot_ica_before_after

            plot_ica_before_after(result.ica_trace, tmp / "eeg_ica.png")
        write_json_atomic(tmp / "report.json", result.report)
    return out
