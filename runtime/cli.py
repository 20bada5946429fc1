"""The runtime's command line: ``milmer-infer`` and the runtime commands of ``milmer``.

This module is the leaf's CLI: it imports nothing from training, export or benchmarks, not even
lazily. The multi-command ``milmer`` app (``milmer.app.cli``) adds train/export/bench/demo on top of
:data:`app`.

Exit codes: 0 success, 2 bad input or usage, 1 internal error. Bad input never prints a
traceback; an internal error prints one only with ``MILMER_DEBUG=1``.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, TypeVar

import typer

from .check import MilmerInputError
from ._choices import BACKEND_NAMES, DETECTORS, DEVICES, PRECISIONS

__all__ = [
    "app",
    "infer_main",
    "handle_errors",
    "run_app",
    "check_finite",
    "EXIT_OK",
    "EXIT_INTERNAL",
    "EXIT_USAGE",
    "BACKEND_HELP",
    "DEVICE_HELP",
    "PRECISION_HELP",
]

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="milmer",
    help="Milmer: EEG + facial-video emotion recognition, from training to deployment.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

# --backend / --device / --precision: the backend table's choices (numpy-free), shared with `milmer bench`.
BACKEND_HELP = "auto (the best that runs here), " + ", ".join(f"{k} ({v})" for k, v in BACKEND_NAMES.items())
DEVICE_HELP = (
    f"{', '.join(DEVICES)}. auto: TensorRT (with an engine) > CUDA > CPU, with a note of what was "
    "picked; tensorrt: ONNX Runtime's TensorRT EP (only on request: it builds engines on first use)."
)
PRECISION_HELP = f"{', '.join(PRECISIONS)}: which graphs of the model folder to run."


def _err(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(message, markup=False)


def check_finite(value: Any) -> Any:
    """Option callback: refuse ``nan`` and ``inf`` for a float option (Click parses both)."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        raise typer.BadParameter("not a finite number")
    return value


def handle_errors(func: F) -> F:
    """Map user errors to exit 2 and anything else to exit 1, without tracebacks."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except MilmerInputError as err:
            _err(f"Error: {err}")
            raise typer.Exit(EXIT_USAGE) from None
        except KeyboardInterrupt:
            _err("Interrupted.")
            raise typer.Exit(130) from None
        except Exception as err:  # noqa: BLE001 - the CLI boundary
            if os.environ.get("MILMER_DEBUG"):
                raise
            _err(
                f"Internal error: {type(err).__name__}: {err}\n"
                "This is a bug in milmer; rerun with MILMER_DEBUG=1 for the traceback and report it."
            )
            raise typer.Exit(EXIT_INTERNAL) from None

    return wrapper  # type: ignore[return-value]


def _load_spec(spec: Optional[Path]):
    from .spec import ModelSpec

    return ModelSpec.load(spec) if spec else ModelSpec()


# --------------------------------------------------------------------------- demo-data
@app.command("demo-data")
@handle_errors
def demo_data(
    out: Path = typer.Option(..., "--out", help="Folder to write the synthetic DEAP-format data into."),
    subjects: int = typer.Option(2, "--subjects", metavar="N", min=1, max=99, help="Number of synthetic participants."),
    trials: int = typer.Option(8, "--trials", metavar="N", min=4, max=99, help="Trials per participant (DEAP has 40)."),
    trial_seconds: float = typer.Option(
        30.0, "--trial-seconds", metavar="SECONDS", min=0.0, callback=check_finite, help="Seconds per trial after the 3 s baseline (DEAP: 60)."
    ),
    recording_seconds: float = typer.Option(
        60.0, "--recording-seconds", metavar="SECONDS", min=0.0, callback=check_finite, help="Length of the continuous demo recording."
    ),
    seed: int = typer.Option(0, "--seed", metavar="N", min=0, help="Random seed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier demo dataset in OUT."),
) -> None:
    """Write SYNTHETIC DEAP-format data (and one continuous recording) for demos and tests."""
    from .demo import make_demo_data

    manifest = make_demo_data(
        out, n_subjects=subjects, n_trials=trials, trial_s=trial_seconds,
        recording_s=recording_seconds, seed=seed, progress=True, overwrite=overwrite,
        names={"out": "--out", "overwrite": "--overwrite"},
    )
    typer.echo(f"Wrote synthetic DEAP-format data to {out}: {manifest.summary()}.")


# The recording arguments and options shared by `milmer preprocess` and `milmer-infer` (one
# definition each).
_VIDEO = typer.Argument(..., metavar="VIDEO", help="Face video (.mp4, .avi, .mov, .mkv, .webm).")
_EEG = typer.Argument(
    ..., metavar="EEG",
    help="EEG recording (.edf, .bdf, .fif, .vhdr, or DEAP sXX.dat with --trial). It must hold the model's 32 "
    "channels (DEAP's 10-20 set: Fp1, AF3, F3, ... O2; see --channel-map for other names, "
    "--interpolate-missing for a few missing ones).",
)
_OFFSET = typer.Option(
    0.0, "--offset", metavar="SECONDS", callback=check_finite,
    help="Video time (s) at EEG t=0: positive when the video started first, negative when the EEG did. "
    "Example: the video started 2.5 s before the EEG -> --offset 2.5; 1 s after -> --offset -1.",
)
_BASELINE = typer.Option(
    None, "--baseline", metavar="SECONDS", min=0.0, callback=check_finite,
    help="Seconds to drop at the EEG start (default: 3 for DEAP .dat, else 0).",
)
_EEG_UNIT = typer.Option(
    None, "--eeg-unit", help="Unit the EEG file's numbers are really in (V, mV, uV, nV), overriding its unit field."
)
_CHANNEL_MAP = typer.Option(
    None, "--channel-map",
    help="Rename EEG channels: 'old=new,...', a file of old=new lines or a JSON object, or the preset biosemi32 (A1..A32).",
)
_INTERPOLATE_MISSING = typer.Option(
    False, "--interpolate-missing",
    help="Interpolate missing and bad-marked channels from standard 10-20 positions (flagged in every output).",
)
_MAX_INTERPOLATED = typer.Option(
    8, "--max-interpolated", metavar="N", min=0, max=32, help="Most channels --interpolate-missing may fill in."
)
_TRIAL = typer.Option(
    None, "--trial", metavar="N", min=1, max=40, help="DEAP sXX.dat input: the trial (presentation order, as in sXX_trialN.avi)."
)


# --------------------------------------------------------------------------- preprocess
@app.command("preprocess")
@handle_errors
def preprocess(
    video: Path = _VIDEO,
    eeg: Path = _EEG,
    out: Path = typer.Option(..., "--out", help="Output folder (must not exist or be empty)."),
    offset: float = _OFFSET,
    baseline: Optional[float] = _BASELINE,
    eeg_unit: Optional[str] = _EEG_UNIT,
    channel_map: Optional[str] = _CHANNEL_MAP,
    interpolate_missing: bool = _INTERPOLATE_MISSING,
    max_interpolated: int = _MAX_INTERPOLATED,
    trial: Optional[int] = _TRIAL,
    detector: Optional[str] = typer.Option(
        None, "--detector", help=f"Face detector: {' or '.join(DETECTORS)} (default: the spec's, {DETECTORS[0]})."
    ),
    spec_file: Optional[Path] = typer.Option(None, "--spec", help="A spec.json to preprocess for."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output folder."),
) -> None:
    """Preprocess one recording exactly as the model sees it; write windows, report and pictures."""
    import dataclasses

    from ._io import check_out_dir
    from .check import check_option
    from .infer_command import recording_options
    from .preprocess_command import preprocess_recording, write_preprocessed
    from .report import ica_convergence_warning

    # Everything cheap first: a taken --out or a bad option is refused before the slow work.
    check_out_dir(out, overwrite=overwrite, name="--out")
    options = recording_options(
        offset=offset, baseline=baseline, eeg_unit=eeg_unit, channel_map=channel_map,
        interpolate_missing=interpolate_missing, max_interpolated=max_interpolated, trial=trial,
    )
    if detector is not None:
        check_option("--detector", detector, DETECTORS)
    spec = _load_spec(spec_file)
    if detector is not None:
        spec = spec.replace(face=dataclasses.replace(spec.face, detector=detector))
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # shown below as one line each, not as file:line warnings
        result = preprocess_recording(video, eeg, spec, options=options, progress=True, keep_trace=True)
    for w in caught:
        _err(f"Warning: {' '.join(str(w.message).split())}")
    ica_warning = ica_convergence_warning(result.report.get("eeg_info", {}))
    if ica_warning:
        _err(f"Warning: {ica_warning}")
    write_preprocessed(result, out, overwrite=overwrite, out_name="--out")
    _print_preprocess_summary(result, out)


def _print_preprocess_summary(result: Any, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from .report import eeg_note_markup

    r = result.report
    fi, ei = r["face_info"], r["eeg_info"]
    table = Table(title=f"Preprocessed -> {out}", show_header=False)
    table.add_row("windows", f"{r['n_windows']} x {result.eeg.data.shape[1:]} EEG, {result.faces.frames.shape[1:]} faces")
    table.add_row("ICA components removed", str(ei.get("ica_excluded")))
    table.add_row("frames without a face", f"{fi.get('frames_without_face')} of {fi.get('frames_total')}")
    table.add_row("windows without a face", str(fi.get("windows_without_face")))
    table.add_row("frames with several faces", str(fi.get("frames_several_faces", 0)))
    table.add_row("frames far from their time", str(fi.get("frames_timing_off", 0)))
    video = fi.get("video", {})
    if video:
        table.add_row(
            "video",
            f"{video.get('duration_s', 0):.2f} s, {video.get('n_frames')} frames at {video.get('fps', 0):.2f} fps, "
            f"{video.get('width')}x{video.get('height')}, rotation {video.get('rotation', 0)}",
        )
    table.add_row("dropped (outside video)", str(r["windows_dropped_outside_video"]))
    flagged = sum(bool(f) for f in r.get("window_flags", []))
    table.add_row("flagged windows", f"{flagged} of {r['n_windows']}")
    for note in r.get("notes", []):
        table.add_row("eeg", eeg_note_markup(note))
    table.add_row("time (s)", ", ".join(f"{k} {v:.2f}" for k, v in r["timings_s"].items()))
    Console().print(table)


# --------------------------------------------------------------------------- entry points
infer_app = typer.Typer(
    name="milmer-infer",
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Predict emotions window by window from a face video and an EEG recording.",
)


@infer_app.command()
@handle_errors
def infer(
    video: Path = _VIDEO,
    eeg: Path = _EEG,
    model: Optional[Path] = typer.Option(
        None, "--model",
        help="Exported model folder; its spec fixes the preprocessing, face detector included. Default: the DEMO "
        "model of `milmer demo` (synthetic data, outputs marked as such), if one was made.",
    ),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
    batch: Optional[int] = typer.Option(
        None, "--batch", metavar="N", min=1, help="Bags (windows) per backbone call (default: 1 on a CPU, 16 on a GPU)."
    ),
    offset: float = _OFFSET,
    baseline: Optional[float] = _BASELINE,
    eeg_unit: Optional[str] = _EEG_UNIT,
    channel_map: Optional[str] = _CHANNEL_MAP,
    interpolate_missing: bool = _INTERPOLATE_MISSING,
    max_interpolated: int = _MAX_INTERPOLATED,
    trial: Optional[int] = _TRIAL,
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
) -> None:
    """Predict emotions window by window: video + EEG -> table of classes and probabilities."""
    from .infer_command import run_infer_cli

    run_infer_cli(
        video=video, eeg=eeg, model=model, backend=backend, device=device, precision=precision,
        batch=batch, offset=offset, baseline=baseline, out=out, quiet=quiet, eeg_unit=eeg_unit,
        channel_map=channel_map, interpolate_missing=interpolate_missing, max_interpolated=max_interpolated,
        trial=trial, faces=faces, predict_without_face=predict_without_face, server=server,
    )


# `milmer infer` is the same command as `milmer-infer`.
app.command("infer")(infer)


# --------------------------------------------------------------------------- serve / score-study
@app.command("serve")
@handle_errors
def serve(
    model: Path = typer.Option(..., "--model", help="Exported model folder (spec.json, swin.onnx, fusion.onnx)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    http_port: int = typer.Option(
        8000, "--http-port", metavar="PORT", min=1, max=65535, help="Triton HTTP port (clients: --server http://HOST:PORT)."
    ),
    grpc_port: int = typer.Option(8001, "--grpc-port", metavar="PORT", min=1, max=65535, help="Triton gRPC port."),
    metrics_port: int = typer.Option(8002, "--metrics-port", metavar="PORT", min=1, max=65535, help="Prometheus metrics port (/metrics)."),
    max_batch: int = typer.Option(
        8, "--max-batch", metavar="N", min=1, help="Most bags Triton's dynamic batcher puts into one model call."
    ),
    max_queue_delay_us: int = typer.Option(
        2000, "--max-queue-delay-us", metavar="US", min=0, help="Microseconds a request may wait for others to fill a batch."
    ),
    backend: str = typer.Option("auto", "--backend", help="auto, ort (ONNX Runtime) or trt (TensorRT)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or tensorrt (ONNX Runtime EP)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, fp16 or int8."),
) -> None:
    """Serve the model with NVIDIA Triton Inference Server: clients send bags, Triton batches them."""
    from .serve.server import ServeConfig, serve as run_server

    config = ServeConfig(
        host=host, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port,
        max_batch=max_batch, max_queue_delay_us=max_queue_delay_us,
    )

    def ready(urls: dict[str, str]) -> None:
        typer.echo(
            f"Serving {model} as model 'milmer' (Ctrl-C stops): HTTP {urls['http']}, gRPC {urls['grpc']}, "
            f"metrics {urls['metrics']}; clients: milmer-infer VIDEO EEG --server {urls['http']}",
        )
        sys.stdout.flush()

    run_server(model, config, backend=backend, device=device, precision=precision, on_ready=ready)
    typer.echo("Server stopped.")


@app.command("score-study")
@handle_errors
def score_study(
    manifest: Path = typer.Argument(..., help="CSV with columns id, video, eeg[, offset, baseline]."),
    server: str = typer.Option(..., "--server", help="Triton server running the model: http://HOST:PORT."),
    out: Path = typer.Option(..., "--out", help="Folder for one result file per recording (reruns skip done ones)."),
    workers: int = typer.Option(2, "--workers", metavar="N", min=1, help="Recordings in progress at once (= most requests in flight)."),
    batch: Optional[int] = typer.Option(None, "--batch", metavar="N", min=1, help="Bags per request (default 4)."),
    fmt: str = typer.Option("json", "--format", help="Result file format: json or csv."),
) -> None:
    """Score every recording of a manifest against a server; resumable, failures reported per recording."""
    from .serve.study import FAILURES_FILE, score_study as run_study

    report = run_study(manifest, server, out, workers=workers, batch=batch, fmt=fmt, progress=True)  # type: ignore[arg-type]
    typer.echo(
        f"Scored {len(report.scored)}, skipped {len(report.skipped)} already scored, failed {len(report.failed)}; results in {out}"
    )
    for ident, error in sorted(report.failed.items()):
        _err(f"Failed {ident}: {error}")
    if not report.ok:
        _err(f"Failures are listed in {out / FAILURES_FILE}; rerun the same command to retry them.")
        raise typer.Exit(EXIT_INTERNAL)


def infer_main(argv: Optional[list[str]] = None) -> int:
    """Console entry point ``milmer-infer``."""
    return run_app(infer_app, argv)


def run_app(typer_app: typer.Typer, argv: Optional[list[str]]) -> int:
    """Run ``typer_app`` on ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    Every usage error is one line on stderr (exit 2): a bad value names the option, what it
    accepts and what was received (``Invalid value for '--offset': expected a finite number, got
    'abc'.``, ``... '--batch': expected an integer >= 1, got 0.``: the range comes from the option's
    ``min``/``max``); a missing or unknown option or argument is Click's message with where to find
    help. No usage box, no traceback.
    Flags show no value type in the help (Typer 0.29's rich help gives every flag ``<bool>``,
    even ``--help``).
    """
    from typer.main import get_command

    command = get_command(typer_app)
    _hide_flag_types(command)
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    prog = typer_app.info.name if isinstance(typer_app.info.name, str) else None
    click_exceptions = _click_exceptions()
    try:
        result = command.main(args=args, prog_name=prog, standalone_mode=False)
    except click_exceptions.ClickException as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # the help was printed
            return EXIT_USAGE
        _err(f"Error: {_usage_error_message(err, args)}")
        return err.exit_code if isinstance(err, click_exceptions.UsageError) else EXIT_USAGE
    except typer.Abort:
        _err("Aborted.")
        return EXIT_INTERNAL
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    return result if isinstance(result, int) else EXIT_OK


def _click_exceptions() -> Any:
    """Click's exception module: vendored in Typer >= 0.2x (``typer._click``), else click's own."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older Typer on plain click
        from click import exceptions  # type: ignore[no-redef]
    return exceptions


def _walk_commands(command: Any) -> Any:
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from _walk_commands(sub)


def _hide_flag_types(command: Any) -> None:
    """Give every flag an empty metavar: the rich help shows the metavar in the type column."""
    def plain(param: Any) -> Any:
        if param is not None and getattr(param, "is_flag", False) and not param.metavar:
            param.metavar = ""
        return param

    for cmd in _walk_commands(command):
        for param in cmd.params:
            plain(param)
        # --help is made per context, after this walk: mark it when it is made.
        cmd.get_help_option = functools.partial(lambda made, ctx: plain(made(ctx)), cmd.get_help_option)


def _option_hint(param: Any) -> str:
    longs = [o for o in getattr(param, "opts", ()) if o.startswith("--")]
    return longs[0] if longs else str(getattr(param, "human_readable_name", None) or param.name).upper()


def _received(param: Any, args: list[str], err: BaseException) -> Optional[str]:
    """The text the user gave ``param`` on the command line (the last occurrence wins, as in Click)."""
    value = None
    opts = tuple(getattr(param, "opts", ()))
    for i, arg in enumerate(args):
        if arg in opts and i + 1 < len(args):
            value = args[i + 1]
        for opt in opts:
            if opt.startswith("--") and arg.startswith(opt + "="):
                value = arg[len(opt) + 1 :]
    if value is None:  # an argument, or a value the parser saw elsewhere: Typer's validator keeps it
        cause = err.__cause__
        errors = getattr(cause, "errors", None)
        if callable(errors):
            try:
                first = errors()[0].get("input")
            except (IndexError, TypeError, AttributeError):
                first = None
            value = None if first is None else str(first)
    return value


def _as_typed(text: str) -> str:
    """``'0'`` -> ``0``, ``'1.5'`` -> ``1.5``, ``'abc'`` -> ``'abc'`` (repr of what was received)."""
    for convert in (int, float):
        try:
            return repr(convert(text))
        except ValueError:
            pass
    return repr(text)


def _number_kind(param: Any) -> Optional[str]:
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    name = getattr(annotation, "__name__", None) or getattr(getattr(param, "type", None), "name", "")
    if name in ("int", "integer", "integer range"):
        return "an integer"
    if name in ("float", "float range"):
        return "a number"
    return None


def _expected_number(param: Any, kind: str) -> str:
    """``'an integer >= 1'``, ``'an integer in [1, 40]'``, ``'a number'`` (finite, any sign)."""
    ptype = getattr(param, "type", None)
    lo = getattr(param, "min", getattr(ptype, "min", None))
    hi = getattr(param, "max", getattr(ptype, "max", None))
    if lo is not None and hi is not None:
        return f"{kind} in [{lo:g}, {hi:g}]"
    if lo is not None:
        return f"{kind} >= {lo:g}"
    if hi is not None:
        return f"{kind} <= {hi:g}"
    return kind if kind == "an integer" else "a finite number"


def _usage_error_message(err: Any, args: list[str]) -> str:
    """One line for a Click usage error (see :func:`run_app`)."""
    exceptions = _click_exceptions()
    param = getattr(err, "param", None)
    if isinstance(err, exceptions.BadParameter) and not isinstance(err, exceptions.MissingParameter) and param is not None:
        text = _received(param, args, err)
        kind = _number_kind(param)
        got = "" if text is None else f", got {_as_typed(text) if kind else repr(text)}"
        if kind is not None:
            return f"Invalid value for {_option_hint(param)!r}: expected {_expected_number(param, kind)}{got}."
        return f"{' '.join(err.format_message().split())}{got}."
    message = " ".join(err.format_message().split())
    ctx = getattr(err, "ctx", None)
    where = f" See '{ctx.command_path} --help'." if ctx is not None else ""
    return f"{message.rstrip('.')}.{where}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(infer_main())
