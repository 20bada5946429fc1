"""``milmer export CKPT --out DIR`` and ``milmer export-triton MODEL --out REPO`` (export extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from milmer.runtime.choices import DEFAULT_BAG_PROFILE
from milmer.runtime.check import parse_ints

from .errors import finite_option, handle_errors

__all__ = ["export", "export_triton", "parse_profile"]


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
        ",".join(map(str, DEFAULT_BAG_PROFILE)),
        "--trt-profile",
        help="TensorRT optimisation profile in bags: MIN,OPT,MAX.",
    ),
    workspace_gb: float = typer.Option(
        4.0, "--workspace-gb", metavar="GIB", min=0.0, callback=finite_option, help="TensorRT builder workspace limit (GiB)."
    ),
    demo_windows: Optional[Path] = typer.Option(
        None, "--demo-windows", help="windows.npz from `milmer preprocess`: real inputs for the parity check."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model folder."),
) -> None:
    """Export a checkpoint to two ONNX graphs, each checked against PyTorch."""
    from milmer.runtime.files import check_out_dir

    profile = parse_profile(trt_profile)  # options first: the export stack (torch) loads slowly
    check_out_dir(out, overwrite=overwrite, name="--out")
    from milmer.export.command import CLI_NAMES, export_command

    export_command(
        ckpt, out, fp16=fp16, int8=int8, trt=trt, trt_profile=profile, workspace_gb=workspace_gb,
        overwrite=overwrite, progress=True, demo_windows=demo_windows, names=CLI_NAMES,
    )


def parse_profile(text: str) -> tuple[int, int, int]:
    return parse_ints("--trt-profile", text, length=3, what="three integers MIN,OPT,MAX")  # type: ignore[return-value]



@handle_errors
def export_triton(
    model: Path = typer.Argument(..., help="Exported model folder (spec.json, swin.onnx, fusion.onnx)."),
    out: Path = typer.Option(..., "--out", help="Triton model repository to write."),
    backend: str = typer.Option("onnxruntime", "--backend", help="Triton backend: onnxruntime or tensorrt."),
    precision: str = typer.Option("fp32", "--precision", help="Graphs to serve: fp32, fp16 (or int8 on CPU)."),
    device: str = typer.Option("gpu", "--device", help="Instance kind: gpu or cpu (onnxruntime only)."),
    trt_profile: str = typer.Option(
        "1,8,32", "--trt-profile", help="Bags MIN,OPT,MAX: batch limits, preferred batch and engine shapes."
    ),
    max_queue_delay_us: int = typer.Option(
        2000, "--max-queue-delay-us", metavar="US", min=0, help="Dynamic batcher queue delay."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing repository folder."),
) -> None:
    """Write a model repository for the stock Triton server: backbone + fusion as an ensemble."""
    from milmer.export.triton_repo import write_triton_repo

    repo = write_triton_repo(
        model, out, backend=backend, precision=precision, device=device,  # type: ignore[arg-type]
        profile=parse_profile(trt_profile), max_queue_delay_us=max_queue_delay_us, overwrite=overwrite,
    )
    typer.echo(f"Wrote Triton model repository {repo} (model 'milmer'); see {repo / 'README.md'}.")
