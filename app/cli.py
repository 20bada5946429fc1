"""Command line ``milmer``: the runtime's commands plus train, export, bench and demo.

This is the one module above every layer: it adds the commands that need the training stack to the
runtime's Typer app (:mod:`milmer.runtime.cli`), importing each implementation lazily, so
``milmer --help`` and the runtime commands never load torch. Exit codes as in the runtime CLI:
0 success, 2 bad input or usage, 1 internal error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from milmer.runtime._check import MilmerInputError
from milmer.runtime.cli import app, handle_errors, run_app

__all__ = ["app", "main"]


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
    int8: Optional[str] = typer.Option(
        None, "--int8", metavar="static|dynamic",
        help="Also write int8 graphs for CPU: static (QDQ, calibrated on face crops; ONNX Runtime and "
        "OpenVINO) or dynamic (ONNX Runtime MatMulInteger).",
    ),
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
    backend: str = typer.Option("ort", "--backend", help="ort, openvino or trt."),
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


def main(argv: Optional[list[str]] = None) -> int:
    """Console entry point ``milmer``."""
    return run_app(app, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
