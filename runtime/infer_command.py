"""``milmer-infer VIDEO EEG``: options checked, the model found, predictions printed and written.

Without ``--model`` the demo model is used (:mod:`.demo_model`): every output then says it comes
from the demo model, and stderr gets a one-line warning.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .check import MilmerInputError, check_option, check_positive, check_suffix
from ._hints import export_hint
from .backends.base import PRECISIONS
from .backends.registry import BACKENDS, DEVICES
from .demo_model import (
    BENCH_MODEL_WARNING,
    DEMO_POINTER,
    DEMO_WARNING,
    default_model_dir,
    is_bench_model,
    is_demo_model,
    milmer_home,
    record_demo_model,
)
from .recording import RecordingOptions

if TYPE_CHECKING:
    from .results import PredictionResult

__all__ = [
    "DEMO_POINTER",
    "milmer_home",
    "record_demo_model",
    "default_model_dir",
    "is_demo_model",
    "check_infer_options",
    "MODEL_OPTION_NAMES",
    "check_model_option",
    "recording_options",
    "run_infer_cli",
    "write_faces_png",
]

#: How errors of :func:`~.model_dir.load_model_dir` name its arguments on the command line.
MODEL_OPTION_NAMES = {"model_dir": "--model", "precision": "--precision"}


def check_infer_options(*, backend: str, device: str, precision: str, batch: int | None) -> None:
    """Raise MilmerInputError naming the first CLI option out of its allowed values (the choices
    come from the backend table, :mod:`.backends.registry`)."""
    check_option("--backend", backend, ("auto", *BACKENDS))
    check_option("--device", device, DEVICES)
    check_option("--precision", precision, PRECISIONS)
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise MilmerInputError(f"Invalid value for '--batch': expected an integer >= 1, got {batch!r}.")


def check_model_option(model_dir: Path, precision: str) -> None:
    """``--model`` is a directory holding ``--precision``'s graphs (the full check is on load)."""
    from .model_dir import available_precisions

    if not model_dir.is_dir():
        raise MilmerInputError(f"Invalid value for '--model': not a model directory: {str(model_dir)!r}.")
    available = available_precisions(model_dir)
    if available and precision not in available:
        raise MilmerInputError(
            f"Invalid value for '--precision': {precision!r} needs the {precision} graphs, which "
            f"{str(model_dir)!r} lacks; it has {', '.join(repr(p) for p in available)}. "
            f"Export them with: {export_hint(precision)}."
        )


def recording_options(
    *,
    offset: float = 0.0,
    baseline: float | None = None,
    eeg_unit: str | None = None,
    channel_map: str | None = None,
    interpolate_missing: bool = False,
    max_interpolated: int | None = None,
    trial: int | None = None,
) -> RecordingOptions:
    """The recording options of ``milmer-infer`` and ``milmer preprocess``, checked (the channel
    map is parsed here, before any slow work)."""
    from .eeg.channels import parse_channel_map
    from .eeg.preprocess import MAX_INTERPOLATED, EEGInputOptions

    if baseline is not None:
        check_positive("baseline", baseline, allow_zero=True)
    if channel_map is not None:
        parse_channel_map(channel_map)
    eeg = EEGInputOptions(
        eeg_unit=eeg_unit, channel_map=channel_map, interpolate_missing=interpolate_missing,
        max_interpolated=MAX_INTERPOLATED if max_interpolated is None else max_interpolated,
    )
    return RecordingOptions(offset_s=offset, baseline_s=baseline, trial=trial, eeg=eeg)


def run_infer_cli(
    *,
    video: Path,
    eeg: Path,
    model: Path | None,
    backend: str = "auto",
    device: str = "auto",
    precision: str = "fp32",
    batch: int | None = None,
    offset: float = 0.0,
    baseline: float | None = None,
    out: Path | None = None,
    quiet: bool = False,
    eeg_unit: str | None = None,
    channel_map: str | None = None,
    interpolate_missing: bool = False,
    max_interpolated: int | None = None,
    trial: int | None = None,
    faces: Path | None = None,
    faces_windows: int = 4,
    predict_without_face: bool = False,
    server: str | None = None,
) -> None:
    """What ``milmer-infer`` does: everything cheap is checked before the slow work starts.

    Order: options, the --out suffix, which model (``--model`` or the demo model), the input
    files' existence, the model directory's contents (spec and graphs); then, for ``auto``, the
    backend and device (TensorRT > CUDA EP > CPU, see :func:`~.backends.registry.choose`, with a
    one-line note on stderr of what was picked and why better ones were skipped); then predict (a
    progress bar on stderr for long recordings), print the per-window table (unless ``quiet``) and
    the summary, and write ``out`` atomically. ``faces``: also draw the crops of the first
    ``faces_windows`` windows to this PNG, the MIL-selected frames marked (:func:`write_faces_png`).
    Windows without a face get no prediction unless ``predict_without_face``.
    With ``server`` (http://HOST:PORT) the bags are scored on that Triton server
    (:class:`~.serve.client.RemotePipeline`) and ``--model`` must not be given.
    """
    from rich.console import Console

    from .check import check_path_exists
    from .backends.registry import choose
    from .model_dir import load_model_dir
    from .pipeline import Pipeline
    from .report import check_out_path, ica_convergence_warning, print_report, write_predictions

    check_infer_options(backend=backend, device=device, precision=precision, batch=batch)
    options = recording_options(
        offset=offset, baseline=baseline, eeg_unit=eeg_unit, channel_map=channel_map,
        interpolate_missing=interpolate_missing, max_interpolated=max_interpolated, trial=trial,
    )
    if out is not None:
        check_out_path(out, "--out")
    if faces is not None:
        check_suffix("faces", Path(faces), (".png",))
    if server is not None and model is not None:
        raise MilmerInputError(
            f"Invalid value for '--model': --model and --server exclude each other (the server's model is used), got {str(model)!r}."
        )
    model_dir = Path(model) if model is not None else (None if server is not None else default_model_dir())
    check_path_exists("video", video)
    check_path_exists("eeg", eeg)
    if Path(eeg).suffix.lower() == ".dat" and trial is None:
        from .eeg.deap import deap_trial

        deap_trial(eeg, None)  # refuses before the model loads, saying to pass --trial
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    opened: Pipeline
    if server is not None:
        from .serve.client import RemotePipeline

        opened = RemotePipeline(server, batch=batch)
    else:
        assert model_dir is not None
        check_model_option(model_dir, precision)
        bundle = load_model_dir(model_dir, precision=precision, names=MODEL_OPTION_NAMES)  # type: ignore[arg-type]
        graphs = [bundle.swin_path, bundle.fusion_path]
        choice = choose(graphs, backend=backend, device=device, precision=precision)  # type: ignore[arg-type]
        if "auto" in (backend, device) and not quiet:
            err.print(choice.note(), markup=False)
        opened = Pipeline(bundle, backend=choice.backend, device=choice.device, batch=batch)  # type: ignore[arg-type]
    with opened as pipeline:
        with warnings.catch_warnings(record=True) as caught:
            # Every warning (coverage, faces, MNE, ...) is shown as one line, not as Python's file:line.
            warnings.simplefilter("always")
            result = pipeline.predict(
                video, eeg, options=options, progress=not quiet,
                keep_crops=faces_windows if faces is not None else 0, predict_without_face=predict_without_face,
            )
    for w in caught:
        err.print(f"Warning: {' '.join(str(w.message).split())}", style="yellow", markup=False)
    ica_warning = ica_convergence_warning(result.stats.eeg_info)
    if ica_warning:
        err.print(f"Warning: {ica_warning}", style="yellow", markup=False)
    if is_demo_model(result.model_dir):
        err.print(DEMO_WARNING, style="bold red", markup=False)
    elif is_bench_model(result.model_dir):
        err.print(BENCH_MODEL_WARNING, style="bold red", markup=False)
    print_report(result, table=not quiet)
    if out is not None:
        path = write_predictions(result, out)
        Console().print(f"Wrote {len(result.windows)} predictions to {path}", markup=False, highlight=False)
    if faces is not None:
        path = write_faces_png(result, faces)
        n_kept = len(result.stats.kept_crops)
        Console().print(f"Wrote the face crops of {n_kept} windows to {path}", markup=False, highlight=False)


def write_faces_png(result: PredictionResult, path: str | os.PathLike[str]) -> Path:
    """The montage of ``result.stats.kept_crops`` (see ``Pipeline.predict(keep_crops=...)``): rows
    labelled with the window's time, crops with the frame's time, frames without a face in red,
    the frames the MIL selected for the prediction marked (none for a window without a face)."""
    import numpy as np

    from .face.plots import save_montage
    from .windows import FaceWindows

    kept = result.stats.kept_crops
    if not kept:
        raise MilmerInputError("Invalid value for 'faces': no face windows were kept to draw.")
    # kept_crops index into the covered windows, in order: the i-th kept is the i-th prediction.
    preds = result.windows[: len(kept)]
    fw = FaceWindows(
        frames=np.stack([w.crops for w in kept]),
        found=np.stack([np.asarray(w.found, bool) for w in kept]),
        timestamps=np.stack([np.asarray(w.timestamps, np.float64) for w in kept]),
    )
    return save_montage(
        fw, path, max_windows=len(kept), window_starts=np.array([p.start for p in preds]),
        window_s=result.spec.eeg.window_s, selected=[p.selected for p in preds],
    )
