"""``milmer-infer VIDEO EEG`` (also ``milmer infer``): options checked, the model found, predictions
printed and written.

Without ``--model`` the demo model is used (:mod:`milmer.runtime.demo_model`): every output then says it comes
from the demo model, and stderr gets a one-line warning.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from milmer.runtime.check import (
    MilmerInputError,
    check_exclusive,
    check_int,
    check_nonempty,
    check_option,
    check_path_exists,
    check_positive,
    check_requires,
    check_suffix,
    check_writable_file,
)
from milmer.runtime.hints import export_hint
from milmer.runtime.choices import (
    INFER_PRECISION_HELP, Backend, Device, InferPrecision, check_backend, check_device, check_precision,
)
from milmer.runtime.demo_model import (
    BENCH_MODEL_WARNING,
    DEMO_POINTER,
    DEMO_WARNING,
    default_model_dir,
    milmer_home,
    record_demo_model,
)

from .errors import finite_option, handle_errors, run_app
from .options import (
    BACKEND_HELP, BASELINE, CHANNEL_MAP, DEVICE_HELP, EEG, EEG_RATE, EEG_UNIT, INTERPOLATE_MISSING, MAX_INTERPOLATED,
    OFFSET, TRIAL, VIDEO, VIDEO_FPS,
)

if TYPE_CHECKING:
    from milmer.runtime.backends.registry import Choice
    from milmer.runtime.model_dir import ModelBundle
    from milmer.runtime.pipeline import Pipeline
    from milmer.runtime.recording import RecordingOptions
    from milmer.runtime.results import PredictionResult

__all__ = [
    "infer",
    "infer_app",
    "main",
    "DEMO_POINTER",
    "milmer_home",
    "record_demo_model",
    "default_model_dir",
    "check_infer_options",
    "MODEL_OPTION_NAMES",
    "check_model_option",
    "recording_options",
    "InferRequest",
    "run_infer",
    "run_infer_cli",
    "write_faces_png",
]

#: How errors of :func:`~milmer.runtime.model_dir.load_model_dir` name its arguments on the command line.
MODEL_OPTION_NAMES = {"model_dir": "--model", "precision": "--precision"}


def check_infer_options(
    *, backend: str, device: str, precision: str, batch: int | None
) -> tuple[Backend, Device, InferPrecision]:
    """``(backend, device, precision)`` typed, checked once here (the layers below trust them);
    raise MilmerInputError naming the first CLI option out of its allowed values (the choices come
    from :mod:`milmer.runtime.choices`, which tests check against the backend table)."""
    checked = check_backend(backend, "--backend"), check_device(device, "--device"), check_precision(precision, "--precision")
    if batch is not None:  # the message says what --batch accepts: not None, which means its default
        check_int("--batch", batch, low=1)
    return checked


def check_model_option(model_dir: Path, precision: str) -> None:
    """``--model`` is a directory holding ``--precision``'s graphs (the full check is on load)."""
    from milmer.runtime.model_dir import available_precisions, model_dir_hint

    check_path_exists("--model", model_dir, "dir", hint=f"{model_dir_hint()}, or `milmer demo` for a demo model")
    available = available_precisions(model_dir)
    if available:
        check_option(
            "--precision", precision, available, among=f"the precisions exported to {str(model_dir)!r}",
            hint=f"export the {precision} graphs with: {export_hint(precision)}",
        )


def recording_options(
    *,
    offset: str | float | None = None,
    baseline: float | None = None,
    eeg_unit: str | None = None,
    channel_map: str | None = None,
    interpolate_missing: bool = False,
    max_interpolated: int | None = None,
    trial: int | None = None,
    eeg_rate: float | None = None,
    video_fps: float | None = None,
) -> RecordingOptions:
    """The recording options of ``milmer-infer`` and ``milmer preprocess``, checked (the channel
    map is parsed here, before any slow work)."""
    from milmer.runtime.eeg.channels import parse_channel_map
    from milmer.runtime.eeg.preprocess import MAX_INTERPOLATED as DEFAULT_MAX_INTERPOLATED
    from milmer.runtime.eeg.preprocess import EEGInputOptions
    from milmer.runtime.recording import RecordingOptions
    from milmer.runtime.sync import SyncOptions, check_rate, parse_offset

    if baseline is not None:
        check_positive("baseline", baseline, allow_zero=True)
    if channel_map is not None:
        parse_channel_map(channel_map)
    eeg = EEGInputOptions(
        eeg_unit=eeg_unit, channel_map=channel_map, interpolate_missing=interpolate_missing,
        max_interpolated=DEFAULT_MAX_INTERPOLATED if max_interpolated is None else max_interpolated,
    )
    # Checked here, under the command line's names, before any slow work; "auto" -> None.
    sync = SyncOptions(
        parse_offset(offset, "--offset"), check_rate("--eeg-rate", eeg_rate), check_rate("--video-fps", video_fps)
    )
    return RecordingOptions(
        offset_s=sync.offset_s, baseline_s=baseline, trial=trial, eeg=eeg, eeg_rate=sync.eeg_rate,
        video_fps=sync.video_fps,
    )


@dataclass(frozen=True)
class InferRequest:
    """One ``milmer-infer`` run, parsed and checked once at the command line (:meth:`parse`).

    Everything below trusts these values. ``bundle`` and ``choice`` (the model folder, loaded, and
    the backend and device picked for it) are set for a local model, ``server`` (and ``timeout``,
    seconds per answer; None: the client's default) for scoring on a Triton server; ``note`` is
    the one line saying what ``auto`` picked (None when not asked).
    """

    video: Path
    eeg: Path
    recording: RecordingOptions
    batch: int | None
    out: Path | None
    faces: Path | None
    faces_windows: int
    quiet: bool
    predict_without_face: bool
    bundle: ModelBundle | None = None
    choice: Choice | None = None
    note: str | None = None
    backend_options: dict[str, dict[str, Any]] | None = None
    server: str | None = None
    timeout: float | None = None

    @classmethod
    def parse(
        cls,
        *,
        video: Path,
        eeg: Path,
        model: Path | None,
        backend: str = "auto",
        device: str = "auto",
        precision: str = "auto",
        batch: int | None = None,
        offset: str | float | None = None,
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
        timeout: float | None = None,
        eeg_rate: float | None = None,
        video_fps: float | None = None,
    ) -> InferRequest:
        """Check the command line's values, cheapest first, before any slow work.

        Order: options (``--model``/``--server``/``--timeout`` together), the --out suffix, the input files (existence, kind, swapped arguments),
        which model (``--model`` or the demo model), the model directory's contents (spec and graphs); then, for ``auto``,
        the backend and device (TensorRT > CUDA EP > CPU, see
        :func:`~milmer.runtime.backends.registry.choose`). Raises MilmerInputError naming the
        option. With ``server`` (http://HOST:PORT) ``--model`` must not be given; ``timeout``
        (seconds per answer, see :class:`~milmer.runtime.serve.client.RemoteScorer`) only with ``server``.
        """
        from milmer.runtime.backends.registry import select_backend
        from milmer.runtime.model_dir import open_model_dir
        from milmer.runtime.precision import choose_precision, graph_precision
        from milmer.runtime.recording import check_recording_paths
        from milmer.runtime.report import check_out_path

        # The one check of backend, device and precision: everything below takes them as typed.
        backend_, device_, precision_ = check_infer_options(backend=backend, device=device, precision=precision, batch=batch)
        options = recording_options(
            offset=offset, baseline=baseline, eeg_unit=eeg_unit, channel_map=channel_map,
            interpolate_missing=interpolate_missing, max_interpolated=max_interpolated, trial=trial,
            eeg_rate=eeg_rate, video_fps=video_fps,
        )
        check_exclusive("--model", None if model is None else str(model), "--server", server, hint="the server's model is used")
        if timeout is not None:
            check_requires("--timeout", timeout, "--server (it applies to a server only)", server is not None, "no --server")
        if out is not None:
            out = check_out_path(out, "--out")
        check_recording_paths(video, eeg)  # before any model: swapped arguments named; an .mff recording is a folder
        if faces is not None:
            check_suffix("faces", Path(faces), (".png",))
            check_writable_file("--faces", faces, hint="give a FILE.png in a writable folder")
        model_dir = Path(model) if model is not None else (None if server is not None else default_model_dir())
        if Path(eeg).suffix.lower() == ".dat" and trial is None:
            from milmer.runtime.eeg.deap import deap_trial

            deap_trial(eeg, None)  # refuses before the model loads, saying to pass --trial
        common = dict(
            video=Path(video), eeg=Path(eeg), recording=options, batch=batch, out=out,
            faces=None if faces is None else Path(faces), faces_windows=faces_windows, quiet=quiet,
            predict_without_face=predict_without_face,
        )
        if server is not None:
            return cls(**common, server=server, timeout=timeout)  # type: ignore[arg-type]
        assert model_dir is not None
        bundle = open_model_dir(model_dir, precision=graph_precision(precision_), names=MODEL_OPTION_NAMES)
        say = None if quiet else (lambda line: print(line, file=sys.stderr, flush=True))
        plan = choose_precision(bundle.dir, precision_, backend=backend_, device=device_, log=say)  # bf16 where it agrees
        choice = select_backend([bundle.swin_path, bundle.fusion_path], plan.backend or backend_, device_,  # type: ignore[arg-type]
                                bundle.precision, plan.backend_options)  # fmt: skip
        notes = [choice.note() if "auto" in (backend, device) else None, plan.note]
        note = "\n".join(n for n in notes if n) or None if not quiet else None
        return cls(**common, bundle=bundle, choice=choice, note=note, backend_options=plan.backend_options)  # type: ignore[arg-type]

    def open_pipeline(self) -> Pipeline:
        """The pipeline this request scores with: the model folder's graphs on the chosen backend,
        or the server (:class:`~milmer.runtime.serve.client.RemotePipeline`)."""
        from milmer.runtime.pipeline import Pipeline

        if self.server is not None:
            from milmer.runtime.serve.client import RemotePipeline

            return RemotePipeline(self.server, batch=self.batch, **({} if self.timeout is None else {"timeout_s": self.timeout}))
        assert self.bundle is not None and self.choice is not None
        return Pipeline(
            self.bundle, backend=self.choice.backend, device=self.choice.device, batch=self.batch,  # type: ignore[arg-type]
            backend_options=self.backend_options or {},
        )


def run_infer_cli(**options: Any) -> None:
    """What ``milmer-infer`` does: :meth:`InferRequest.parse` on the options, then :func:`run_infer`."""
    run_infer(InferRequest.parse(**options))


def run_infer(request: InferRequest) -> None:
    """Predict (a progress bar on stderr for long recordings), print the per-window table (unless
    ``quiet``) and the summary, and write ``out`` atomically. ``faces``: also draw the crops of the
    first ``faces_windows`` windows to this PNG, the MIL-selected frames marked
    (:func:`write_faces_png`). Windows without a face get no prediction unless
    ``predict_without_face``. Warnings are one line each on stderr.
    """
    from rich.console import Console

    from milmer.runtime.report import result_provenance, write_predictions

    from .render import print_report, warning_lines

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if request.note is not None:
        err.print(request.note, markup=False)
    quiet, faces, out = request.quiet, request.faces, request.out
    with request.open_pipeline() as pipeline:
        with warnings.catch_warnings(record=True) as caught:
            # Every warning (coverage, faces, MNE, ...) is shown as one line, not as Python's file:line.
            warnings.simplefilter("always")
            result = pipeline.predict(
                request.video, request.eeg, options=request.recording, progress=not quiet,
                keep_crops=request.faces_windows if faces is not None else 0,
                predict_without_face=request.predict_without_face,
            )
    for w in caught:
        err.print(f"Warning: {' '.join(str(w.message).split())}", style="yellow", markup=False)
    for line in warning_lines(result.stats.notes, result.stats.eeg_info):
        err.print(line, style="yellow", markup=False)
    provenance = result_provenance(result)
    if provenance.demo:
        err.print(DEMO_WARNING, style="bold red", markup=False)
    elif provenance.benchmark:
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

    from milmer.runtime.face.plots import save_montage
    from milmer.runtime.windows import FaceWindows

    kept = result.stats.kept_crops
    check_nonempty("--faces", kept, "kept face window to draw")
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


# --------------------------------------------------------------------------- the command
infer_app = typer.Typer(
    name="milmer-infer",
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Predict emotions window by window from a face video and an EEG recording.",
)


@infer_app.command()
@handle_errors
def infer(
    video: Path = VIDEO,
    eeg: Path = EEG,
    model: Optional[Path] = typer.Option(
        None, "--model",
        help="Exported model folder; its spec fixes the preprocessing, face detector included. Default: the DEMO "
        "model of `milmer demo` (synthetic data, outputs marked as such), if one was made.",
    ),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    precision: str = typer.Option("auto", "--precision", help=INFER_PRECISION_HELP),
    batch: Optional[int] = typer.Option(
        None, "--batch", metavar="N", min=1, help="Bags (windows) per backbone call (default: 1 on a CPU, 16 on a GPU)."
    ),
    offset: str = OFFSET,
    eeg_rate: Optional[float] = EEG_RATE,
    video_fps: Optional[float] = VIDEO_FPS,
    baseline: Optional[float] = BASELINE,
    eeg_unit: Optional[str] = EEG_UNIT,
    channel_map: Optional[str] = CHANNEL_MAP,
    interpolate_missing: bool = INTERPOLATE_MISSING,
    max_interpolated: int = MAX_INTERPOLATED,
    trial: Optional[int] = TRIAL,
    out: Optional[Path] = typer.Option(None, "--out", help="Also write predictions to FILE.json or FILE.csv."),
    quiet: bool = typer.Option(False, "--quiet", help="Print only the summary."),
    faces: Optional[Path] = typer.Option(
        None, "--faces", help="Also draw the first 4 windows' face crops (MIL-selected frames marked) to FILE.png."
    ),
    predict_without_face: bool = typer.Option(
        False, "--predict-without-face", help="Also predict windows in which no frame shows a face."
    ),
    server: Optional[str] = typer.Option(
        None, "--server", help="Score on a Triton server (http://HOST:PORT, see `milmer serve`); preprocessing stays local."
    ),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", metavar="SECONDS", min=0.001, callback=finite_option,
        help="With --server: the most seconds to wait for the connection (a server starting or restarting is waited for), for each answer and for the model to be ready (default 60).",
    ),
) -> None:
    """Predict emotions window by window: video + EEG -> table of classes and probabilities."""
    run_infer_cli(
        video=video, eeg=eeg, model=model, backend=backend, device=device, precision=precision,
        batch=batch, offset=offset, baseline=baseline, out=out, quiet=quiet, eeg_unit=eeg_unit,
        channel_map=channel_map, interpolate_missing=interpolate_missing, max_interpolated=max_interpolated,
        trial=trial, faces=faces, predict_without_face=predict_without_face, server=server, timeout=timeout,
        eeg_rate=eeg_rate, video_fps=video_fps,
    )



def main(argv: Optional[list[str]] = None) -> int:
    """Console entry point ``milmer-infer``."""
    return run_app(infer_app, argv)

