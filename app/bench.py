"""``milmer bench --out DIR``: latency per stage, batched throughput, memory, reference and floor."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from milmer.runtime.check import check_option, check_writable_dir, parse_ints

from .errors import finite_option, handle_errors
from .options import BACKEND_HELP, DEVICE_HELP, PRECISION_HELP

__all__ = ["BENCH_OPENVINO_NOTE", "bench", "bench_epilog", "check_bench_precision"]


def bench_epilog() -> str:
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



@handle_errors
def bench(
    out: Path = typer.Option(..., "--out", help="Folder for bench.json, bench.md and the charts."),
    model: Optional[Path] = typer.Option(None, "--model", help="Exported model folder (default: build a paper-size one); one not of the paper's size is reported as TINY."),
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
        None, "--precision", help=PRECISION_HELP + " Repeatable (default: every precision in the model folder). bf16 (OpenVINO on a CPU "
        "with avx512_bf16/amx_bf16) is timed side by side without it."
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
        None, "--max-call-s", metavar="SECONDS", min=0.0, callback=finite_option,
        help="Skip batch sizes slower than this per call.",
    ),
    max_rss_mb: Optional[float] = typer.Option(
        None, "--max-rss-mb", metavar="MB", min=0.0, callback=finite_option, help="Skip batch sizes needing more memory."
    ),
    wait_quiet: Optional[float] = typer.Option(
        None, "--wait-quiet", metavar="SECONDS", min=0.0, callback=finite_option,
        help="Wait up to S seconds for a quiet machine.",
    ),
    live: int = typer.Option(
        0, "--live", metavar="SECONDS", min=0,
        help="Also run milmer live for SECONDS of the demo recording over loopback LSL: decision latency p50/p95 "
        "and replay agreement (live_latency.json; needs the live extra).",
    ),
) -> None:
    """Latency per stage, batched throughput, end-to-end memory, reference and compute floor."""
    from milmer.benchmarks.command import bench_command
    from .infer import check_infer_options

    check_writable_dir("--out", out, hint="give a folder in a writable place")
    for p in precision or ["fp32"]:
        check_bench_precision(p)
        check_infer_options(backend=backend, device=device, precision=p, batch=None)
    backend, device = _resolve_auto(model, backend, device, (precision or ["fp32"])[0])

    bench_command(
        model, out, quick=quick, tiny=tiny, backend=backend, device=device, precisions=precision or None,
        batch_sizes=_int_list("--batch-sizes", batch_sizes), lengths_s=_int_list("--lengths", lengths),
        repeats=repeats, warmup=warmup, checkpoint=checkpoint, reference_windows=reference_windows,
        pipeline_batch=pipeline_batch, threads=threads, max_call_s=max_call_s, max_rss_mb=max_rss_mb,
        wait_quiet_s=wait_quiet,
    )
    if live:
        from milmer.benchmarks.live_latency import live_line, measure_live

        typer.echo(live_line(measure_live(
            model or out / "model", out, seconds=live, backend=backend, device=device,
            precision=(precision or ["fp32"])[0], threads=threads,
        )))


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
    from .infer import MODEL_OPTION_NAMES, check_model_option
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


def check_bench_precision(precision: str) -> str:
    """``--precision`` of ``milmer bench`` names graphs to time: fp32, fp16 or int8.

    bf16 is not a graph (it is the fp32 graphs computed in bfloat16 by OpenVINO) and ``auto`` is
    ``milmer-infer``'s choice between them: bench times both kinds on its own, so each is refused
    with the way to get what it would have measured.
    """
    from milmer.runtime.choices import PRECISIONS

    hints = {
        "bf16": "bf16 is the fp32 graphs computed in bfloat16 by OpenVINO: bench times it in its side-by-side "
        "table ('openvino bf16') on a CPU with avx512_bf16 or amx_bf16, and its floor in the floor table; "
        "run with --precision fp32 (or without --precision)",
        "auto": "auto is milmer-infer's choice between the fp32 graphs and bf16; bench times every graph "
        "precision of the model folder when --precision is left out, and bf16 side by side",
    }
    hint = hints.get(precision, "leave --precision out to time every graph precision of the model folder")
    return check_option("--precision", precision, PRECISIONS, hint=hint)


def _int_list(name: str, text: Optional[str]) -> Optional[list[int]]:
    if text is None:
        return None
    return list(parse_ints(name, text))

