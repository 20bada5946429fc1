"""Command line ``milmer``: the runtime's commands plus train, export, bench and demo.

This is the one module above every layer: it adds the commands that need the training stack to the
runtime's Typer app (:mod:`milmer.runtime.cli`), importing each implementation lazily, so
``milmer --help`` and the runtime commands never load torch. Exit codes as in the runtime CLI:
0 success, 2 bad input or usage, 1 internal error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from typer.core import TyperCommand

from milmer.app.demo import DEMO_ABLATIONS
from milmer.runtime.check import MilmerInputError
from milmer.runtime._choices import DEFAULT_BAG_PROFILE
from milmer.runtime.cli import BACKEND_HELP, DEVICE_HELP, PRECISION_HELP, app, check_finite, handle_errors, run_app

__all__ = ["app", "main"]


# --------------------------------------------------------------------------- train / export / bench
def _lazy_epilog(make: Callable[[], str]) -> type[TyperCommand]:
    """A command class whose help epilog is ``make()``, built only when help is shown: the text
    comes from config dataclasses whose modules import numpy, which ``milmer --help`` avoids."""

    class Command(TyperCommand):
        @property  # type: ignore[override]
        def epilog(self) -> str:
            return make()

        @epilog.setter
        def epilog(self, value: object) -> None:  # click's __init__ assigns it; ignored
            pass

    return Command


def _train_epilog() -> str:
    """The config keys with their defaults, generated from ``TrainConfig`` (torch-free import)."""
    from milmer.training.run_config import config_keys_help

    # \b keeps click/typer from re-wrapping the lines that follow it.
    return (
        "Config keys (in the file, or KEY=VALUE after the options) and their defaults; data_root "
        "and out_dir are required (--out may give out_dir):\n\n\b\n" + "\n".join(config_keys_help())
    )


_TRAIN_HELP = "\n\n".join((
    "Train Milmer on DEAP-format data (needs the training extra).",
    "Extra KEY=VALUE arguments override the config file, e.g. epochs=5 protocol=loso model.d_model=64 "
    "(dotted keys for tables; values are JSON, else text).",
    "Relative paths in the config file are read from the config file's folder; relative paths in --out "
    "and in KEY=VALUE from the working directory.",
    "Everything (paths, the DEAP layout, the backbone checkpoint, option values) is checked before any "
    "work, and a run that fails to start leaves no run folder. Preprocessed windows are cached in "
    "cache_dir (default: $MILMER_CACHE_DIR, else ~/.cache/milmer/windows), shared by runs and kept when "
    "a run folder is deleted. Rerunning with the same config resumes the run.",
))  # fmt: skip


@app.command(
    "train",
    cls=_lazy_epilog(_train_epilog),
    help=_TRAIN_HELP,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
)
@handle_errors
def train(
    ctx: typer.Context,
    config: Path = typer.Option(
        ..., "--config", help="Training config file (JSON or TOML). Relative paths in it are read from its folder."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Run folder (sets out_dir; relative to the working directory)."
    ),
) -> None:
    """``milmer train``: see :data:`_TRAIN_HELP` (the docstring is not the help text)."""
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
        ",".join(map(str, DEFAULT_BAG_PROFILE)),
        "--trt-profile",
        help="TensorRT optimisation profile in bags: MIN,OPT,MAX.",
    ),
    workspace_gb: float = typer.Option(
        4.0, "--workspace-gb", metavar="GIB", min=0.0, callback=check_finite, help="TensorRT builder workspace limit (GiB)."
    ),
    demo_windows: Optional[Path] = typer.Option(
        None, "--demo-windows", help="windows.npz from `milmer preprocess`: real inputs for the parity check."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model folder."),
) -> None:
    """Export a checkpoint to two ONNX graphs, each checked against PyTorch."""
    profile = _parse_profile(trt_profile)  # options first: the export stack (torch) loads slowly
    from milmer.export.command import CLI_NAMES, export_command

    export_command(
        ckpt, out, fp16=fp16, int8=int8, trt=trt, trt_profile=profile, workspace_gb=workspace_gb,
        overwrite=overwrite, progress=True, demo_windows=demo_windows, names=CLI_NAMES,
    )


def _parse_profile(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise MilmerInputError(
            f"Invalid value for '--trt-profile': expected three integers MIN,OPT,MAX, got {text!r}."
        )
    return values  # type: ignore[return-value]


@app.command("export-triton")
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
        profile=_parse_profile(trt_profile), max_queue_delay_us=max_queue_delay_us, overwrite=overwrite,
    )
    typer.echo(f"Wrote Triton model repository {repo} (model 'milmer'); see {repo / 'README.md'}.")


def _bench_epilog() -> str:
    """The defaults of the options above that show none, from ``BenchSettings`` (full / --quick)."""
    from milmer.benchmarks.command import BenchSettings
    from milmer.runtime.pipeline import DEFAULT_BATCH, DEFAULT_BATCH_GPU

    full, quick = BenchSettings.defaults(quick=False), BenchSettings.defaults(quick=True)

    def text(value: object) -> str:
        return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)

    rows = [(f"--{opt}", text(getattr(full, key)), text(getattr(quick, key))) for opt, key in (
        ("batch-sizes", "batch_sizes"), ("lengths", "lengths_s"), ("repeats", "repeats"), ("warmup", "warmup"),
        ("reference-windows", "reference_windows"), ("max-call-s", "max_call_s"), ("wait-quiet", "wait_quiet_s"),
    )]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    cpu_batch = ", ".join(f"{d} {b}" for d, b in DEFAULT_BATCH.items())
    return "\n\n".join((
        "Defaults (full run | with --quick):\n\b\n"
        + "\n".join(f"{o:<{width}}  {f} | {q}" for o, f, q in rows),
        "\b\n--model: none, a paper-size model with random weights is built into OUT/model (--tiny: a small "
        "one)\n--precision: every graph in the model folder (--backend trt: fp32 and fp16)\n"
        f"--pipeline-batch: the pipeline's default for the device ({cpu_batch}, GPU {DEFAULT_BATCH_GPU})\n"
        "--threads: ONNX Runtime's default (the cores this process may use)\n"
        "--max-rss-mb: half the memory available at the start",
    ))  # fmt: skip


@app.command("bench", cls=_lazy_epilog(_bench_epilog))
@handle_errors
def bench(
    out: Path = typer.Option(..., "--out", help="Folder for bench.json, bench.md and the charts."),
    model: Optional[Path] = typer.Option(None, "--model", help="Exported model folder (default: build a paper-size one)."),
    checkpoint: Optional[Path] = typer.Option(
        None, "--checkpoint", help="Checkpoint the model was exported from (for the PyTorch reference)."
    ),
    quick: bool = typer.Option(False, "--quick", help="Few repeats and short recordings."),
    tiny: bool = typer.Option(False, "--tiny", help="Benchmark the tiny demo architecture instead of full size."),
    backend: str = typer.Option(
        "auto", "--backend",
        help=BACKEND_HELP + ". On a CPU, auto gives the main tables to ONNX Runtime; OpenVINO is measured side by side.",
    ),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    precision: Optional[list[str]] = typer.Option(
        None, "--precision", help=PRECISION_HELP + " Repeatable (default: every precision in the model folder)."
    ),
    batch_sizes: Optional[str] = typer.Option(None, "--batch-sizes", help="Bags per call to sweep, e.g. 1,2,4,8."),
    lengths: Optional[str] = typer.Option(None, "--lengths", help="End-to-end recording lengths (s), e.g. 60,600."),
    repeats: Optional[int] = typer.Option(None, "--repeats", metavar="N", min=1, help="Timed repeats per measurement."),
    warmup: Optional[int] = typer.Option(None, "--warmup", metavar="N", min=0, help="Untimed warm-up runs."),
    reference_windows: Optional[int] = typer.Option(
        None, "--reference-windows", metavar="N", min=1, help="Windows timed for the reference."
    ),
    pipeline_batch: Optional[int] = typer.Option(
        None, "--pipeline-batch", metavar="N", min=1, help="Bags per call end to end."
    ),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="N", min=1, help="ONNX Runtime threads."),
    max_call_s: Optional[float] = typer.Option(
        None, "--max-call-s", metavar="SECONDS", min=0.0, callback=check_finite,
        help="Skip batch sizes slower than this per call.",
    ),
    max_rss_mb: Optional[float] = typer.Option(
        None, "--max-rss-mb", metavar="MB", min=0.0, callback=check_finite, help="Skip batch sizes needing more memory."
    ),
    wait_quiet: Optional[float] = typer.Option(
        None, "--wait-quiet", metavar="SECONDS", min=0.0, callback=check_finite,
        help="Wait up to S seconds for a quiet machine.",
    ),
) -> None:
    """Latency per stage, batched throughput, end-to-end memory, reference and compute floor."""
    from milmer.benchmarks.command import bench_command
    from milmer.runtime.infer_command import check_infer_options

    for p in precision or ["fp32"]:
        check_infer_options(backend=backend, device=device, precision=p, batch=None)
    backend, device = _resolve_auto(model, backend, device, (precision or ["fp32"])[0])

    bench_command(
        model, out, quick=quick, tiny=tiny, backend=backend, device=device, precisions=precision or None,
        batch_sizes=_int_list("--batch-sizes", batch_sizes), lengths_s=_int_list("--lengths", lengths),
        repeats=repeats, warmup=warmup, checkpoint=checkpoint, reference_windows=reference_windows,
        pipeline_batch=pipeline_batch, threads=threads, max_call_s=max_call_s, max_rss_mb=max_rss_mb,
        wait_quiet_s=wait_quiet,
    )


#: Why ``milmer bench --backend auto`` does not take OpenVINO for its main tables on a CPU.
BENCH_OPENVINO_NOTE = (
    "bench's stage, throughput and end-to-end tables use ONNX Runtime on a CPU for every precision, and OpenVINO "
    "runs in the side-by-side table (--backend openvino for its own tables)"
)


def _resolve_auto(model: Optional[Path], backend: str, device: str, precision: str) -> tuple[str, str]:
    """Concrete backend and device for ``auto`` (printed as one line), so results name what ran.

    One rule with or without ``--model``: TensorRT where an engine fits (only an exported model
    can have one), else ONNX Runtime (CUDA, then CPU). OpenVINO, which ``milmer-infer`` picks on an
    x86 CPU for float graphs, is measured side by side instead, so the main tables of every
    precision come from one backend (:data:`BENCH_OPENVINO_NOTE`).
    """
    if "auto" not in (backend, device):
        return backend, device
    import dataclasses

    from milmer.runtime.backends.registry import choose
    from milmer.runtime.infer_command import MODEL_OPTION_NAMES, check_model_option
    from milmer.runtime.model_dir import load_model_dir

    if model is not None:
        check_model_option(model, precision)
        bundle = load_model_dir(model, precision=precision, names=MODEL_OPTION_NAMES)  # type: ignore[arg-type]
        graphs = [bundle.swin_path, bundle.fusion_path]
        choice = choose(graphs, backend=backend, device=device, precision=precision)  # type: ignore[arg-type]
    else:
        # bench builds a fresh model, for which no TensorRT engine can exist yet: ONNX Runtime.
        choice = choose("the model bench builds", backend="ort" if backend == "auto" else backend, device=device)
        choice = dataclasses.replace(choice, asked=(backend, device))
    choice = _bench_choice(choice, backend)
    typer.echo(choice.note(), err=True)
    return choice.backend, choice.device


def _bench_choice(choice: Any, backend: str) -> Any:
    """``choice`` for bench's main tables: ONNX Runtime on a CPU where ``auto`` picked OpenVINO or
    passed it over, with :data:`BENCH_OPENVINO_NOTE` as the reason, when OpenVINO runs here (it is
    then in the side-by-side table); other choices unchanged."""
    from milmer.runtime.backends.openvino import OpenVinoRunner
    from milmer.runtime.backends.registry import Choice

    if backend != "auto" or choice.device != "cpu" or choice.backend not in ("openvino", "ort"):
        return choice
    if OpenVinoRunner.unavailable_reason("the benchmark model", device="cpu", precision="fp32") is not None:
        return choice
    skipped = tuple(s for s in choice.skipped if s[0][0] != "openvino")
    return Choice("ort", "cpu", skipped + ((("openvino", "cpu"), BENCH_OPENVINO_NOTE),), asked=choice.asked)


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
    epochs: Optional[int] = typer.Option(
        None, "--epochs", metavar="N", min=1, help="Training epochs per fold (default: the demo's)."
    ),
    ablations: bool = typer.Option(
        False, "--ablations",
        help=f"Also train the {len(DEMO_ABLATIONS)} ablations ({', '.join(DEMO_ABLATIONS)}) under the trial "
        f"protocol and print them side by side ({4 * len(DEMO_ABLATIONS)} more fold trainings: about a minute per "
        "ablation on 2 cores).",
    ),
) -> None:
    """The quick-start demo on SYNTHETIC data: generate -> preprocess -> train -> export -> infer."""
    from milmer.app.demo import run_demo

    run_demo(out, epochs=epochs, ablations=None if ablations else {})


def main(argv: Optional[list[str]] = None) -> int:
    """Console entry point ``milmer``."""
    return run_app(app, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
