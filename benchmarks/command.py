"""``milmer bench``: latency, throughput, memory and the compute floor, written to ``bench.json``.

:func:`bench_command` runs, in order: the machine's GEMM peaks and the model's FLOPs
(:mod:`.floor`), per-stage latency (:mod:`.stages`), batched throughput (:mod:`.throughput`),
cold end-to-end runs on demo recordings of each length, one process per run
(:mod:`.endtoend`; each precision, the fastest agreeing variant, and the default settings,
:mod:`.default_settings`), peak memory of EEG preprocessing on a long 2048 Hz BDF (:mod:`.memory`), and
the official-style PyTorch reference (:mod:`.reference`). It writes
``bench.json`` (machine, settings, every figure, the derived ratios and the targets met or not,
see :mod:`.report`), ``bench.md`` (a summary table) and PNG charts (:mod:`.charts`) into ``out``.
Targets are reported, never asserted.

Without ``model`` it builds the paper-size model with random weights (:mod:`.model`; needs
torch, imported only then); the reference needs the checkpoint the graphs were exported from
(``checkpoint``; known when the model is built here) and is skipped otherwise.

Running on a GPU (Jetson or desktop), unchanged. TensorRT engines are tied to the TensorRT
version and the GPU, so build them on the machine that benchmarks them, either with
``milmer export CKPT --out DIR --fp16 --trt`` or with the ``trtexec`` lines the export writes
into ``DIR/trtexec.txt`` (then ``register_engine`` as that file shows); then::

    milmer bench --model DIR --checkpoint CKPT --out OUT --backend trt --device cuda --precision fp16
    milmer bench --model DIR --out OUT --backend ort --device cuda          # ORT CUDA EP
    milmer bench --model DIR --out OUT --backend ort --device tensorrt      # ORT TensorRT EP

With ``--backend trt`` the default precisions are fp32 and fp16 (TensorRT cannot run the int8
graphs, which are ONNX Runtime's MatMulInteger); batch sizes beyond the engines' optimisation
profile (32 bags by default) are recorded as skipped; the PyTorch reference runs on the GPU.
Cross-check the backbone alone with TensorRT's own tool, same engine, the pipeline's shapes
(F = 10 frames per bag times B bags; batch 8 is 80 frames)::

    trtexec --loadEngine=DIR/engines/swin.fp16.trtexec.engine --shapes=frames:80x3x224x224 \\
            --warmUp=500 --iterations=100 --useCudaGraph

On a GPU the compute-floor ratios still refer to the CPU's GEMM peak and mean nothing; compare
with trtexec's GPU compute time. milmer publishes no GPU figures until someone measures them.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..runtime.check import MilmerInputError, check_option
from .machine import ProgressLog
from .recordings import make_recordings
from .variants import best_side_by_side, static_int8_dir
from .settings import FULL_LENGTHS_S, QUICK_LENGTHS_S, BenchSettings

__all__ = ["BenchSettings", "bench_command", "make_recordings", "FULL_LENGTHS_S", "QUICK_LENGTHS_S"]

def _available_mb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _torch_device(pipeline_settings: dict[str, Any]) -> str:
    """The PyTorch device matching where the pipeline ran: 'cuda' for any GPU device, else 'cpu'."""
    return "cpu" if pipeline_settings["device"]["swin"] == "cpu" else "cuda"


def _scrub(obj: Any, replacements: dict[str, str]) -> Any:
    """``obj`` with every absolute path prefix in ``replacements`` rewritten (no machine paths in results)."""
    if isinstance(obj, dict):
        return {k: _scrub(v, replacements) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub(v, replacements) for v in obj]
    if isinstance(obj, str):
        for prefix, short in replacements.items():
            if obj == prefix or obj.startswith(prefix + os.sep):
                return short + obj[len(prefix) :]
    return obj


def bench_command(
    model: Path | None,
    out: Path,
    *,
    quick: bool = False,
    tiny: bool = False,
    backend: str = "ort",
    device: str = "cpu",
    precisions: Sequence[str] | None = None,
    batch_sizes: Sequence[int] | None = None,
    lengths_s: Sequence[int] | None = None,
    repeats: int | None = None,
    warmup: int | None = None,
    checkpoint: Path | None = None,
    reference_windows: int | None = None,
    pipeline_batch: int | None = None,
    threads: int | None = None,
    max_call_s: float | None = None,
    max_rss_mb: float | None = None,
    wait_quiet_s: float | None = None,
    peer_compile_timeout_s: float | None = None,
    progress: bool = True,
) -> Path:
    """Run the benchmark (module docstring) into ``out``; return the path of ``bench.json``.

    model:      an exported model folder; ``None`` builds the paper-size model (``tiny``: a
                small one) with random weights into ``out/model``
    checkpoint: the checkpoint ``model`` was exported from, for the PyTorch reference
    Other arguments override :class:`BenchSettings` (``None``: the full or ``quick`` default).
    """
    from .machine import wait_until_quiet

    settings = BenchSettings.defaults(
        quick=quick,
        backend=backend,
        device=device,
        precisions=tuple(precisions) if precisions is not None else None,
        batch_sizes=tuple(batch_sizes) if batch_sizes is not None else None,
        lengths_s=tuple(lengths_s) if lengths_s is not None else None,
        repeats=repeats,
        warmup=warmup,
        reference_windows=reference_windows,
        pipeline_batch=pipeline_batch,
        threads=threads,
        max_call_s=max_call_s,
        max_rss_mb=max_rss_mb,
        wait_quiet_s=wait_quiet_s,
        peer_compile_timeout_s=peer_compile_timeout_s,
    )
    if model is not None and tiny:
        raise MilmerInputError("Invalid combination: 'tiny' builds a model, so it cannot be used with 'model'.")
    out = Path(out).resolve()  # absolute, so _scrub finds every path under it
    out.mkdir(parents=True, exist_ok=True)
    log = ProgressLog(progress)
    started = time.perf_counter()

    model, checkpoint, built, build_s = _model_folder(model, out, tiny, checkpoint, log, progress)
    from ..runtime.model_dir import available_precisions, load_model_dir
    from .model import not_paper_size

    available = available_precisions(model)
    # TensorRT runs fp32 and fp16 engines; the int8 graphs are ONNX Runtime's (MatMulInteger).
    runnable = tuple(p for p in available if p != "int8") if settings.backend == "trt" else tuple(available)
    chosen = settings.precisions or runnable
    for p in chosen:
        check_option("precisions", p, available)
    swept = settings.throughput_precisions or tuple(p for p in chosen if p != "fp16") or chosen
    bundle = load_model_dir(model, precision="fp32" if "fp32" in available else chosen[0])  # type: ignore[arg-type]
    spec = bundle.spec
    # The MODEL decides (a --model folder may be tiny too); --tiny only picks what gets built.
    small = not_paper_size(spec)
    tiny = tiny or bool(small)

    recordings = make_recordings(out / "recordings", settings.lengths_s, log)
    quiet = wait_until_quiet(settings.max_load, settings.wait_quiet_s, log=log)
    log(f"load average {quiet['load_1min']} ({'quiet' if quiet['quiet'] else 'BUSY'})")

    run = _Run(model, out, settings, spec, chosen, swept, recordings, checkpoint, log,
               eeg_memory_s=60 if tiny else 600 if quick else 3600)
    result = _start_result(run, quiet, built=built, build_s=build_s, not_paper_size=small)
    _measure_floor(run, result, bundle)
    _measure_side_by_side(run, result)
    _measure_peers(run, result)
    _measure_stages(run, result)
    predictions = _measure_endtoend(run, result)
    _measure_reference(run, result, predictions)
    return _finish(run, result, predictions, quiet, started, progress)


@dataclass(frozen=True)
class _Run:
    """What every phase of one benchmark run shares (set up once by :func:`bench_command`)."""

    model: Path
    out: Path
    settings: BenchSettings
    spec: Any
    chosen: tuple[str, ...]
    swept: tuple[str, ...]
    recordings: dict[int, dict[str, Path]]
    checkpoint: Path | None
    log: Any
    #: Length (s) of the 2048 Hz BDF whose preprocessing peak memory is measured (:mod:`.memory`).
    eeg_memory_s: int = 3600

    @property
    def shortest(self) -> int:
        return min(self.recordings)

    @property
    def timing(self) -> Any:
        return self.settings.timing()


def _model_folder(
    model: Path | None, out: Path, tiny: bool, checkpoint: Path | None, log: Any, progress: bool
) -> tuple[Path, Path | None, bool, float | None]:
    """(model folder, checkpoint, built here, build seconds): the given folder, or the benchmark model built under ``out``."""
    if model is not None:
        return Path(model).resolve(), checkpoint, False, None
    from .model import build_bench_model

    log(f"building (or reusing) the {'tiny' if tiny else 'full-size'} benchmark model (random weights)")
    tick = time.perf_counter()
    model, checkpoint = build_bench_model(out, tiny=tiny, progress=progress)
    return Path(model).resolve(), checkpoint, True, time.perf_counter() - tick


def _start_result(run: _Run, quiet: dict[str, Any], *, built: bool, build_s: float | None,
                  not_paper_size: list[str]) -> dict[str, Any]:  # fmt: skip
    """bench.json's head: settings, machine, load before, the model measured (``tiny``: not the
    paper's size, ``not_paper_size`` saying why, from :func:`.model.not_paper_size`)."""
    from ..runtime.demo_model import model_provenance
    from .machine import machine_info

    model, spec, chosen, settings, swept = run.model, run.spec, run.chosen, run.settings, run.swept
    random_weights = built or model_provenance(spec, model).benchmark
    result: dict[str, Any] = {
        "schema": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {**dataclasses.asdict(settings), "precisions": list(chosen), "throughput_precisions": list(swept)},
        "machine": machine_info(),
        "load": {"before": quiet},
        "model": {
            "dir": str(model),
            "built_here": built,
            "benchmark_model": random_weights,
            "build_s": build_s,
            "tiny": bool(not_paper_size),
            "not_paper_size": not_paper_size,
            "weights": "random (benchmark model)" if random_weights else "as given",
            "precisions": list(chosen),
            "files_mb": {p.name: round(p.stat().st_size / 2**20, 1) for p in sorted(model.glob("*.onnx"))},
            "frames_per_window": spec.face.frames_per_window,
            "window_s": spec.eeg.window_s,
            "token_dim": spec.graph.token_dim,
        },
    }
    return result


def _measure_floor(run: _Run, result: dict[str, Any], bundle: Any) -> None:
    """GEMM peaks of every engine and the model's FLOPs (:mod:`.floor`)."""
    from . import floor, report

    settings, timing, checkpoint, log = run.settings, run.timing, run.checkpoint, run.log
    log("compute floor: GEMM peaks and FLOPs")
    result["floor"] = {
        "peaks": {
            engine: floor.matmul_peak(engine, settings.peak_sizes, timing, threads=settings.threads)  # type: ignore[arg-type]
            for engine in floor.PEAK_ENGINES
        },
        "flops": report.count_flops(bundle, checkpoint),
    }
    result["floor"]["precision_peaks"] = floor.precision_peaks(result["floor"]["peaks"])


def _measure_side_by_side(run: _Run, result: dict[str, Any]) -> None:
    """Backends and precisions side by side, in this process, on the same bags (:mod:`.variants`)."""
    settings, model, spec, chosen, out, timing, log = run.settings, run.model, run.spec, run.chosen, run.out, run.timing, run.log
    result["side_by_side"] = None
    static_dir = None
    if settings.backend != "trt" and settings.device == "cpu" and "fp32" in chosen and settings.static_int8:
        log("static int8 (QDQ) graphs, calibrated on face crops")
        static_dir = static_int8_dir(model, spec, out / "model-int8-static")
    if settings.backend != "trt" and settings.device == "cpu" and "fp32" in chosen:
        from . import variants as side

        runnable, skipped = side.list_variants(model, chosen, static_dir=static_dir, threads=settings.threads)
        rows = side.measure_variants(
            runnable, spec, timing, flops=result["floor"]["flops"], peaks=result["floor"]["precision_peaks"], log=log
        )
        best = side.fastest_agreeing(rows)
        result["side_by_side"] = {"rows": rows, "skipped": skipped, "fastest_agreeing": best["name"] if best else None,
                                  "gate": list(side.AGREEMENT_GATE)}  # fmt: skip


def _measure_peers(run: _Run, result: dict[str, Any]) -> None:
    """The PyTorch peers of the backbone (:mod:`.peers`), where the checkpoint is known."""
    settings, checkpoint, out, log = run.settings, run.checkpoint, run.out, run.log
    result["peers"] = None
    if checkpoint is not None and settings.device == "cpu":
        from .peers import measure_peers

        log("PyTorch peers of the backbone: eager fp32, autocast bf16, torch.compile (own processes)")
        flops = result["floor"]["flops"]
        result["peers"] = measure_peers(
            Path(checkpoint), out / "peers", warmup=settings.warmup, repeats=settings.repeats, threads=settings.threads,
            compile_timeout_s=settings.peer_compile_timeout_s, flops_per_frame=flops["swin_per_frame"] if flops else None,
            peaks=result["floor"]["precision_peaks"],
        )  # fmt: skip


def _measure_stages(run: _Run, result: dict[str, Any]) -> None:
    """Per-stage latency (:mod:`.stages`) and the batched throughput sweep (:mod:`.throughput`)."""
    from . import stages, throughput

    settings, model, spec, chosen, swept, log, timing = run.settings, run.model, run.spec, run.chosen, run.swept, run.log, run.timing
    recordings, shortest = run.recordings, run.shortest
    log(f"preprocessing stages on the {shortest} s recording")
    result["stages"] = {
        "preprocessing": stages.measure_preprocessing(
            recordings[shortest]["video"], recordings[shortest]["eeg"], spec, timing, settings.recording_timing()
        ),
        "model": {},
    }
    from .memory import measure_memory

    result["eeg_memory"] = measure_memory(run.out / "eeg-memory", seconds=run.eeg_memory_s, log=log)
    for p in chosen:
        log(f"model stages, {settings.backend}/{settings.device}/{p}")
        result["stages"]["model"][p] = stages.measure_model_stages(
            model, p, timing, backend=settings.backend, device=settings.device, threads=settings.threads
        )

    max_rss = settings.max_rss_mb or (_available_mb() or 8192.0) / 2
    result["throughput"] = {}
    for p in swept:
        log(f"throughput sweep {list(settings.batch_sizes)}, {p}")
        result["throughput"][p] = throughput.measure_throughput(
            model, p, settings.batch_sizes, timing, backend=settings.backend, device=settings.device,
            threads=settings.threads, max_call_s=settings.max_call_s, max_rss_mb=max_rss,
            budget_s=settings.throughput_budget_s,
        )  # fmt: skip


def _measure_endtoend(run: _Run, result: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """Cold runs of each recording, one process each (:mod:`.endtoend`), for each precision, for
    the fastest agreeing variant and at the default settings; returns every run's predictions by
    (precision, 'best:<variant>' or 'default', length)."""
    from .endtoend import endtoend_subprocess

    settings, model, chosen, recordings, out, log = run.settings, run.model, run.chosen, run.recordings, run.out, run.log
    result["endtoend"] = []
    predictions: dict[tuple[str, int], dict[str, Any]] = {}
    for length in sorted(recordings):
        for p in chosen:
            log(f"end to end, {length} s recording, {p} (own process)")
            run = endtoend_subprocess(
                model, recordings[length]["video"], recordings[length]["eeg"],
                out / "endtoend" / f"{p}-{length}s.json", precision=p, backend=settings.backend,
                device=settings.device, batch=settings.pipeline_batch, threads=settings.threads,
            )  # fmt: skip
            predictions[(p, length)] = run.pop("predictions")
            result["endtoend"].append({"precision": p, "recording_s": length, **run})
    best_row = best_side_by_side(result)
    if best_row is not None and best_row["backend"] != "trt":
        # The variant's runner options (OpenVINO's inference precision, threads) go through the
        # Pipeline's backend_options.
        for length in sorted(recordings):
            log(f"end to end, {length} s recording, fastest agreeing variant {best_row['name']} (own process)")
            run = endtoend_subprocess(
                Path(best_row["model_dir"]), recordings[length]["video"], recordings[length]["eeg"],
                out / "endtoend" / f"best-{length}s.json", precision=best_row["precision"], backend=best_row["backend"],
                device="cpu", batch=settings.pipeline_batch, threads=settings.threads,
                backend_options={best_row["backend"]: best_row["options"]},
            )  # fmt: skip
            predictions[(f"best:{best_row['name']}", length)] = run.pop("predictions")
            result["endtoend_best"] = result.get("endtoend_best", []) + [
                {"variant": best_row["name"], "precision": best_row["precision"], "recording_s": length, **run}
            ]
    # What `milmer-infer VIDEO EEG` runs with no options (:mod:`.default_settings`), its own runs.
    from .default_settings import measure_default_runs, resolve_default

    log("resolving the default settings (auto backend and precision, as milmer-infer)")
    try:
        result["default_settings"] = resolve_default(model)
    except MilmerInputError as error:  # milmer-infer would refuse too (e.g. a folder without fp32 graphs)
        result["default_settings"], result["endtoend_default"] = {"skipped": str(error)}, []
    else:
        result["endtoend_default"], default_predictions = measure_default_runs(model, recordings, out, log)
        predictions.update(default_predictions)
    used = sorted({r["settings"]["batch"] for r in result["endtoend"]})
    if settings.pipeline_batch is None and len(used) == 1:
        result["settings"]["pipeline_batch"] = used[0]
    return predictions


def _measure_reference(run: _Run, result: dict[str, Any], predictions: dict[tuple[str, int], dict[str, Any]]) -> None:
    """The official-style PyTorch reference (:mod:`.reference`), where the checkpoint is known."""
    from .reference import reference_subprocess, write_processor_config

    settings, checkpoint, spec, chosen, recordings, shortest, out, log = (
        run.settings, run.checkpoint, run.spec, run.chosen, run.recordings, run.shortest, run.out, run.log
    )  # fmt: skip
    result["reference"] = None
    if checkpoint is not None:
        log(f"official-style PyTorch reference, {settings.reference_windows} windows of the {shortest} s recording")
        processor = write_processor_config(spec, out / "reference" / "processor")
        ref = reference_subprocess(
            Path(checkpoint), processor, recordings[shortest]["video"], recordings[shortest]["eeg"],
            out / "reference" / "reference.json", windows=settings.reference_windows, warmup=1,
            device=_torch_device(result["stages"]["model"][chosen[0]]["settings"]),
        )  # fmt: skip
        ref["recording_s"] = shortest
        predictions[("reference", shortest)] = ref.pop("predictions")
        result["reference"] = ref


def _finish(run: _Run, result: dict[str, Any], predictions: dict[tuple[str, int], dict[str, Any]],
            quiet: dict[str, Any], started: float, progress: bool) -> Path:  # fmt: skip
    """Derived figures, targets and notes; paths scrubbed; charts, bench.json and bench.md written."""
    from ..runtime.files import write_json_atomic
    from . import charts, report
    from .formatting import rounded
    from .machine import load_average
    from .markdown import markdown

    settings, model, out, checkpoint, log = run.settings, run.model, run.out, run.checkpoint, run.log
    result["load"]["after"] = load_average()
    result["load"]["phases"] = log.phases
    result["summary"], result["targets"] = report.summarize(result, predictions)
    for key, run in [(f"best:{r['variant']}", r) for r in result.get("endtoend_best", [])] + [
        ("default", r) for r in result.get("endtoend_default", [])
    ]:
        base = ("fp32", run["recording_s"])
        if base in predictions:
            n, same, diff = report._agreement(predictions[(key, run["recording_s"])], predictions[base])
            run["agreement_with_fp32"] = {"windows": n, "top1": same / n if n else None, "max_probability_diff": diff}
    from .summary import speed_targets

    result["speed_targets"] = speed_targets(result)
    result["notes"] = report.notes(result, quiet, settings)
    result["duration_s"] = time.perf_counter() - started
    replacements = {str(model): "<model>", str(out): "<out>"}  # the model may lie inside out
    if checkpoint is not None:
        replacements[str(Path(checkpoint).resolve())] = "<checkpoint>"
    result = _scrub(result, replacements)
    log("charts")
    result["charts"] = charts.draw_charts(result, out)
    result = rounded(result)
    path = write_json_atomic(out / "bench.json", result)
    (out / "bench.md").write_text(markdown(result) + "\n")
    log(f"wrote {path} in {result['duration_s']:.0f} s")
    if progress:
        from .summary import summary_screen

        print(summary_screen(result), file=sys.stderr, flush=True)
    return path
