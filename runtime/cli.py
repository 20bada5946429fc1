"""Command line: ``milmer <command>`` and ``milmer-infer``.

Exit codes: 0 success, 2 bad input or usage, 1 internal error. Bad input never prints a
traceback; an internal error prints one only with ``MILMER_DEBUG=1``. Commands import their
implementation lazily, so ``milmer --help`` and the runtime commands never load torch.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, TypeVar

import typer

from ._check import MilmerInputError

__all__ = ["app", "main", "infer_main", "EXIT_OK", "EXIT_INTERNAL", "EXIT_USAGE"]

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2

app = typer.Typer(
    name="milmer",
    help="Milmer: EEG + facial-video emotion recognition, from training to deployment.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def _err(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(message, markup=False)


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
    subjects: int = typer.Option(2, help="Number of synthetic participants."),
    trials: int = typer.Option(8, help="Trials per participant (DEAP has 40)."),
    trial_seconds: float = typer.Option(30.0, help="Seconds per trial after the 3 s baseline (DEAP: 60)."),
    recording_seconds: float = typer.Option(60.0, help="Length of the continuous demo recording."),
    seed: int = typer.Option(0, help="Random seed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier demo dataset in OUT."),
) -> None:
    """Write SYNTHETIC DEAP-format data (and one continuous recording) for demos and tests."""
    from .demo import make_demo_data

    manifest = make_demo_data(
        out, n_subjects=subjects, n_trials=trials, trial_s=trial_seconds,
        recording_s=recording_seconds, seed=seed, progress=True, overwrite=overwrite,
    )
    typer.echo(f"Wrote synthetic DEAP-format data to {out}: {manifest.summary()}.")


# --------------------------------------------------------------------------- preprocess
@app.command("preprocess")
@handle_errors
def preprocess(
    video: Path = typer.Argument(..., help="Face video (.mp4, .avi, .mov, .mkv, .webm)."),
    eeg: Path = typer.Argument(..., help="EEG recording (.edf, .bdf, .fif, .vhdr)."),
    out: Path = typer.Option(..., "--out", help="Output folder (must not exist or be empty)."),
    offset: float = typer.Option(0.0, "--offset", help="Video time (s) at EEG t=0."),
    baseline: float = typer.Option(0.0, "--baseline", help="Seconds to drop at the EEG start (DEAP: 3)."),
    detector: Optional[str] = typer.Option(
        None, "--detector", help="Face detector: blazeface-short-range (default) or opencv-haar."
    ),
    spec_file: Optional[Path] = typer.Option(None, "--spec", help="A spec.json to preprocess for."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output folder."),
) -> None:
    """Preprocess one recording exactly as the model sees it; write windows, report and pictures."""
    import dataclasses

    from .preprocess import preprocess_recording, write_preprocessed

    spec = _load_spec(spec_file)
    if detector is not None:
        spec = spec.replace(face=dataclasses.replace(spec.face, detector=detector))
    result = preprocess_recording(
        video, eeg, spec, offset_s=offset, baseline_s=baseline, progress=True, keep_trace=True
    )
    write_preprocessed(result, out, overwrite=overwrite)
    _print_preprocess_summary(result, out)


def _print_preprocess_summary(result: Any, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    r = result.report
    fi, ei = r["face_info"], r["eeg_info"]
    table = Table(title=f"Preprocessed -> {out}", show_header=False)
    table.add_row("windows", f"{r['n_windows']} x {result.eeg.data.shape[1:]} EEG, {result.faces.frames.shape[1:]} faces")
    table.add_row("ICA components removed", str(ei.get("ica_excluded")))
    table.add_row("frames without a face", f"{fi.get('frames_without_face')} of {fi.get('frames_total')}")
    table.add_row("windows without a face", str(fi.get("windows_without_face")))
    table.add_row("dropped (outside video)", str(r["windows_dropped_outside_video"]))
    table.add_row("time (s)", ", ".join(f"{k} {v:.2f}" for k, v in r["timings_s"].items()))
    Console().print(table)


# --------------------------------------------------------------------------- train / export / bench
@app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": False})
@handle_errors
def train(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", help="Training config file (JSON or TOML)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (overrides out_dir in the config)."),
) -> None:
    """Train Milmer on DEAP-format data (needs the training extra). Extra KEY=VALUE arguments
    override the config, e.g. ``epochs=5 protocol=loso model.d_model=64``."""
    from milmer.training.experiment import train_command

    run_dir = train_command(config, list(ctx.args), out)
    typer.echo(f"Run folder: {run_dir}")


@app.command("export")
@handle_errors
def export(
    ckpt: Path = typer.Argument(..., help="Checkpoint folder written by training (e.g. RUN/best_model)."),
    out: Path = typer.Option(..., "--out", help="Model folder to write (swin.onnx, fusion.onnx, spec.json)."),
    fp16: bool = typer.Option(False, "--fp16", help="Also write fp16 graphs (fp32 inputs/outputs)."),
    int8: bool = typer.Option(False, "--int8", help="Also write int8 graphs for CPU (ONNX Runtime quantization)."),
    trt: bool = typer.Option(False, "--trt", help="Also build TensorRT engines (needs tensorrt and a GPU)."),
    trt_profile: str = typer.Option(
        "1,8,32", "--trt-profile", help="TensorRT optimisation profile in bags: MIN,OPT,MAX."
    ),
    workspace_gb: float = typer.Option(4.0, "--workspace-gb", help="TensorRT builder workspace limit (GiB)."),
    demo_windows: Optional[Path] = typer.Option(
        None, "--demo-windows", help="windows.npz from `milmer preprocess`: real inputs for the parity check."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model folder."),
) -> None:
    """Export a checkpoint to two ONNX graphs, each checked against PyTorch."""
    from milmer.export.command import export_command

    export_command(
        ckpt, out, fp16=fp16, int8=int8, trt=trt, trt_profile=_parse_profile(trt_profile),
        workspace_gb=workspace_gb, overwrite=overwrite, progress=True, demo_windows=demo_windows,
    )


def _parse_profile(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise MilmerInputError(
            f"Invalid value for 'trt_profile': expected three integers MIN,OPT,MAX, got {text!r}."
        )
    return values  # type: ignore[return-value]


@app.command("bench")
@handle_errors
def bench(
    out: Path = typer.Option(..., "--out", help="Folder for bench.json, bench.md and the charts."),
    model: Optional[Path] = typer.Option(None, "--model", help="Exported model folder (default: build a paper-size one)."),
    checkpoint: Optional[Path] = typer.Option(
        None, "--checkpoint", help="Checkpoint the model was exported from (for the PyTorch reference)."
    ),
    quick: bool = typer.Option(False, "--quick", help="Few repeats and short recordings."),
    tiny: bool = typer.Option(False, "--tiny", help="Benchmark the tiny demo architecture instead of full size."),
    backend: str = typer.Option("ort", "--backend", help="ort or trt."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or tensorrt."),
    precision: Optional[list[str]] = typer.Option(None, "--precision", help="fp32, fp16, int8 (repeatable)."),
    batch_sizes: Optional[str] = typer.Option(None, "--batch-sizes", help="Bags per call to sweep, e.g. 1,2,4,8."),
    lengths: Optional[str] = typer.Option(None, "--lengths", help="End-to-end recording lengths (s), e.g. 60,600."),
    repeats: Optional[int] = typer.Option(None, "--repeats", help="Timed repeats per measurement."),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="Untimed warm-up runs."),
    reference_windows: Optional[int] = typer.Option(None, "--reference-windows", help="Windows timed for the reference."),
    pipeline_batch: Optional[int] = typer.Option(None, "--pipeline-batch", help="Bags per call end to end."),
    threads: Optional[int] = typer.Option(None, "--threads", help="ONNX Runtime threads."),
    max_call_s: Optional[float] = typer.Option(None, "--max-call-s", help="Skip batch sizes slower than this per call."),
    max_rss_mb: Optional[float] = typer.Option(None, "--max-rss-mb", help="Skip batch sizes needing more memory."),
    wait_quiet: Optional[float] = typer.Option(None, "--wait-quiet", help="Wait up to S seconds for a quiet machine."),
) -> None:
    """Latency per stage, batched throughput, end-to-end memory, reference and compute floor."""
    from milmer.benchmarks.command import bench_command

    bench_command(
        model, out, quick=quick, tiny=tiny, backend=backend, device=device, precisions=precision or None,
        batch_sizes=_int_list("batch_sizes", batch_sizes), lengths_s=_int_list("lengths", lengths),
        repeats=repeats, warmup=warmup, checkpoint=checkpoint, reference_windows=reference_windows,
        pipeline_batch=pipeline_batch, threads=threads, max_call_s=max_call_s, max_rss_mb=max_rss_mb,
        wait_quiet_s=wait_quiet,
    )


def _int_list(name: str, text: Optional[str]) -> Optional[list[int]]:
    if text is None:
        return None
    try:
        return [int(p) for p in text.split(",")]
    except ValueError:
        raise MilmerInputError(
            f"Invalid value for {name!r}: expected comma-separated integers, got {text!r}."
        ) from None


@app.command("demo")
@handle_errors
def demo(
    out: Path = typer.Option(Path("demo"), "--out", help="Folder for everything the demo writes."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Training epochs per fold (default: the demo's)."),
) -> None:
    """The quick-start demo on SYNTHETIC data: generate -> preprocess -> train -> export -> infer."""
    from milmer.export.demo import run_demo

    run_demo(out, epochs=epochs)


# --------------------------------------------------------------------------- entry points
def main(argv: Optional[list[str]] = None) -> int:
    """Console entry point ``milmer``."""
    return _run(app, argv)


infer_app = typer.Typer(
    name="milmer-infer",
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Predict emotions window by window from a face video and an EEG recording.",
)


@infer_app.command()
@handle_errors
def infer(
    video: Path = typer.Argument(..., help="Face video (.mp4, .avi, .mov, .mkv, .webm)."),
    eeg: Path = typer.Argument(..., help="EEG recording (.edf, .bdf, .fif, .vhdr)."),
    model: Optional[Path] = typer.Option(
        None, "--model", help="Exported model folder (default: the demo model, if one was made)."
    ),
    backend: str = typer.Option("auto", "--backend", help="auto, ort (ONNX Runtime) or trt (TensorRT)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or tensorrt (ONNX Runtime EP)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, fp16 or int8."),
    batch: Optional[int] = typer.Option(
        None, "--batch", help="Bags (windows) per backbone call (default: 2 on a CPU, 16 on a GPU)."
    ),
    offset: float = typer.Option(0.0, "--offset", help="Video time (s) at EEG t=0."),
    baseline: float = typer.Option(0.0, "--baseline", help="Seconds to drop at the EEG start."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write predictions to FILE.json or FILE.csv."),
    quiet: bool = typer.Option(False, "--quiet", help="Print only the summary."),
) -> None:
    """Predict emotions window by window: video + EEG -> table of classes and probabilities."""
    from .infer import run_infer_cli

    run_infer_cli(
        video=video, eeg=eeg, model=model, backend=backend, device=device, precision=precision,
        batch=batch, offset=offset, baseline=baseline, out=out, quiet=quiet,
    )


# `milmer infer` is the same command as `milmer-infer`.
app.command("infer")(infer)


def infer_main(argv: Optional[list[str]] = None) -> int:
    """Console entry point ``milmer-infer``."""
    return _run(infer_app, argv)


def _run(typer_app: typer.Typer, argv: Optional[list[str]]) -> int:
    try:
        typer_app(args=argv, standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
