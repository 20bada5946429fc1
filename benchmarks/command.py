"""``milmer bench``: latency, throughput, memory and the compute floor, written to ``bench.json``.

:func:`bench_command` runs, in order: the machine's GEMM peaks and the model's FLOPs
(:mod:`.floor`), per-stage latency (:mod:`.stages`), batched throughput (:mod:`.throughput`),
cold end-to-end runs on demo recordings of each length, one process per run
(:mod:`.endtoend`), peak memory of EEG preprocessing on a long 2048 Hz BDF (:mod:`.memory`), and
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
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..runtime.check import MilmerInputError, check_option
from ..runtime.backends.base import PRECISIONS
from ..runtime.backends.registry import BACKENDS, DEVICES
from .timing import TimingConfig

__all__ = ["BenchSettings", "bench_command", "make_recordings", "publish_results", "FULL_LENGTHS_S", "QUICK_LENGTHS_S"]

FULL_BATCH_SIZES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
QUICK_BATCH_SIZES: tuple[int, ...] = (1, 2, 4)
FULL_LENGTHS_S: tuple[int, ...] = (60, 600)
QUICK_LENGTHS_S: tuple[int, ...] = (12, 24)
#: The demo recordings' video frame rate and seed.
DEMO_FPS, DEMO_SEED = 25.0, 0


def _check_int(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise MilmerInputError(f"Invalid value for {name!r}: expected an integer >= {minimum}, got {value!r}.")
    return value


@dataclass(frozen=True)
class BenchSettings:
    """Everything a benchmark run is told; ``None`` fields were left to :meth:`defaults`.

    precisions:          the model's graphs to measure (default: all present in the model folder)
    batch_sizes:         bags per call for the throughput sweep
    lengths_s:           demo recording lengths (whole seconds) for the end-to-end runs
    warmup, repeats:     untimed / timed calls of each millisecond-scale stage
    recording_repeats:   timed calls of each recording-scale stage (EEG steps, decoding), after
                         one warm-up call
    reference_windows:   windows the PyTorch reference scores (after one warm-up window)
    pipeline_batch:      bags per call in the end-to-end runs (``Pipeline(batch=...)``); ``None``:
                         the pipeline's default for the device, as ``milmer-infer`` uses (the batch
                         actually used is written into the results' settings)
    throughput_precisions: precisions swept for throughput (default: all but fp16, which has no
                         fast kernels on CPU)
    max_call_s, throughput_budget_s, max_rss_mb: throughput caps (see :mod:`.throughput`;
                         ``max_rss_mb`` None: half the memory available at the start)
    peak_sizes:          square GEMM sizes for the machine's peak
    max_load, wait_quiet_s: wait up to ``wait_quiet_s`` for a 1-minute load average below
                         ``max_load`` before measuring (0: do not wait; the load is recorded)
    static_int8:         build static int8 (QDQ) graphs next to the model (``<out>/model-int8-static``)
                         and measure them side by side with the others
    """

    backend: str = "ort"
    device: str = "cpu"
    precisions: tuple[str, ...] | None = None
    batch_sizes: tuple[int, ...] = FULL_BATCH_SIZES
    lengths_s: tuple[int, ...] = FULL_LENGTHS_S
    warmup: int = 2
    repeats: int = 10
    recording_repeats: int = 3
    reference_windows: int = 8
    pipeline_batch: int | None = None
    threads: int | None = None
    throughput_precisions: tuple[str, ...] | None = None
    max_call_s: float = 30.0
    throughput_budget_s: float = 10.0
    max_rss_mb: float | None = None
    peak_sizes: tuple[int, ...] = (512, 1024, 2048)
    max_load: float = 0.7
    wait_quiet_s: float = 0.0
    static_int8: bool = True

    def __post_init__(self) -> None:
        check_option("backend", self.backend, ("auto", *BACKENDS))
        check_option("device", self.device, DEVICES)
        for name in ("precisions", "throughput_precisions"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))
                if not value:
                    raise MilmerInputError(f"Invalid value for {name!r}: expected at least one precision, got none.")
                for p in value:
                    check_option(name, p, PRECISIONS)
        for name in ("batch_sizes", "lengths_s", "peak_sizes"):
            values = tuple(getattr(self, name))
            object.__setattr__(self, name, values)
            if not values:
                raise MilmerInputError(f"Invalid value for {name!r}: expected at least one value, got none.")
            for v in values:
                _check_int(name, v, 1)
        _check_int("warmup", self.warmup, 0)
        for name in ("repeats", "recording_repeats", "reference_windows"):
            _check_int(name, getattr(self, name), 1)
        for name in ("pipeline_batch", "threads"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        for name in ("max_call_s", "throughput_budget_s", "max_load"):
            if not getattr(self, name) > 0:
                raise MilmerInputError(f"Invalid value for {name!r}: expected > 0, got {getattr(self, name)!r}.")
        if self.max_rss_mb is not None and not self.max_rss_mb > 0:
            raise MilmerInputError(f"Invalid value for 'max_rss_mb': expected > 0 or None, got {self.max_rss_mb!r}.")
        if not self.wait_quiet_s >= 0:
            raise MilmerInputError(f"Invalid value for 'wait_quiet_s': expected >= 0, got {self.wait_quiet_s!r}.")

    @classmethod
    def defaults(cls, *, quick: bool, **given: Any) -> BenchSettings:
        """Settings for a full run, or with ``quick`` a run of a minute or two; ``given`` values
        that are not None win."""
        base: dict[str, Any] = {}
        if quick:
            base = {
                "batch_sizes": QUICK_BATCH_SIZES,
                "lengths_s": QUICK_LENGTHS_S,
                "warmup": 1,
                "repeats": 3,
                "recording_repeats": 1,
                "reference_windows": 2,
                "throughput_budget_s": 3.0,
                "peak_sizes": (256, 512),
            }
        base.update({k: v for k, v in given.items() if v is not None})
        return cls(**base)

    def timing(self) -> TimingConfig:
        return TimingConfig(self.warmup, self.repeats)

    def recording_timing(self) -> TimingConfig:
        return TimingConfig(min(self.warmup, 1), self.recording_repeats)


class _Log:
    """Progress lines on stderr with the time since the run started; each line's 1-minute load
    average is kept (``phases``), so a busy spell in the middle of a run shows in bench.json."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.perf_counter()
        self.phases: list[dict[str, Any]] = []

    def __call__(self, message: str) -> None:
        from .machine import load_average

        elapsed = time.perf_counter() - self.started
        self.phases.append({"t_s": round(elapsed, 1), "load_1min": load_average(), "phase": message})
        if self.enabled:
            print(f"[bench {elapsed:6.0f} s] {message}", file=sys.stderr, flush=True)


def make_recordings(folder: Path, lengths_s: Sequence[int], log: Any = None) -> dict[int, dict[str, Path]]:
    """Demo recordings (``video.mp4`` + ``eeg.edf``) of each length under ``folder/<n>s``,
    reusing one written earlier with the same length and seed."""
    from ..synthetic.recording_writer import write_recording

    result = {}
    for length in sorted(set(lengths_s)):
        target = folder / f"{length}s"
        truth = target / "truth.json"
        reuse = False
        if truth.is_file():
            known = json.loads(truth.read_text())
            reuse = known.get("duration_s") == length and known.get("seed", DEMO_SEED) == DEMO_SEED
        if not reuse:
            if log is not None:
                log(f"writing a {length} s demo recording")
            _, paths = write_recording(target, duration_s=float(length), fps=DEMO_FPS, seed=DEMO_SEED)
        result[length] = {"video": target / "video.mp4", "eeg": target / "eeg.edf"}
    return result


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
    progress: bool = True,
) -> Path:
    """Run the benchmark (module docstring) into ``out``; return the path of ``bench.json``.

    model:      an exported model folder; ``None`` builds the paper-size model (``tiny``: a
                small one) with random weights into ``out/model``
    checkpoint: the checkpoint ``model`` was exported from, for the PyTorch reference
    Other arguments override :class:`BenchSettings` (``None``: the full or ``quick`` default).
    """
    from ..runtime.files import write_json_atomic
    from ..runtime.model_dir import available_precisions, load_model_dir
    from . import charts, floor, report, stages, throughput
    from .endtoend import endtoend_subprocess
    from .machine import load_average, machine_info, wait_until_quiet
    from .reference import reference_subprocess, write_processor_config

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
    )
    if model is not None and tiny:
        raise MilmerInputError("Invalid combination: 'tiny' builds a model, so it cannot be used with 'model'.")
    out = Path(out).resolve()  # absolute, so _scrub finds every path under it
    out.mkdir(parents=True, exist_ok=True)
    log = _Log(progress)
    started = time.perf_counter()

    built = model is None
    build_s = None
    if model is None:
        from .model import build_bench_model

        log(f"building (or reusing) the {'tiny' if tiny else 'full-size'} benchmark model (random weights)")
        tick = time.perf_counter()
        model, checkpoint = build_bench_model(out, tiny=tiny, progress=progress)
        build_s = time.perf_counter() - tick
    model = Path(model).resolve()
    from .model import read_marker

    marker = read_marker(model)  # a benchmark model built by an earlier run and given as --model
    available = available_precisions(model)
    # TensorRT runs fp32 and fp16 engines; the int8 graphs are ONNX Runtime's (MatMulInteger).
    runnable = tuple(p for p in available if p != "int8") if settings.backend == "trt" else tuple(available)
    chosen = settings.precisions or runnable
    for p in chosen:
        check_option("precisions", p, available)
    swept = settings.throughput_precisions or tuple(p for p in chosen if p != "fp16") or chosen
    bundle = load_model_dir(model, precision="fp32" if "fp32" in available else chosen[0])  # type: ignore[arg-type]
    spec = bundle.spec

    recordings = make_recordings(out / "recordings", settings.lengths_s, log)
    shortest = min(recordings)

    quiet = wait_until_quiet(settings.max_load, settings.wait_quiet_s, log=log)
    log(f"load average {quiet['load_1min']} ({'quiet' if quiet['quiet'] else 'BUSY'})")

    result: dict[str, Any] = {
        "schema": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {**dataclasses.asdict(settings), "precisions": list(chosen), "throughput_precisions": list(swept)},
        "machine": machine_info(),
        "load": {"before": quiet},
        "model": {
            "dir": str(model),
            "built_here": built,
            "benchmark_model": built or marker is not None,
            "build_s": build_s,
            "tiny": tiny if built else (marker or {}).get("tiny"),
            "weights": "random (benchmark model)" if built or marker is not None else "as given",
            "precisions": list(chosen),
            "files_mb": {p.name: round(p.stat().st_size / 2**20, 1) for p in sorted(model.glob("*.onnx"))},
            "frames_per_window": spec.face.frames_per_window,
            "window_s": spec.eeg.window_s,
            "token_dim": spec.graph.token_dim,
        },
    }

    log("compute floor: GEMM peaks and FLOPs")
    timing = settings.timing()
    result["floor"] = {
        "peaks": {
            engine: floor.matmul_peak(engine, settings.peak_sizes, timing, threads=settings.threads)  # type: ignore[arg-type]
            for engine in floor.PEAK_ENGINES
        },
        "flops": report.count_flops(bundle, checkpoint),
    }
    result["floor"]["precision_peaks"] = floor.precision_peaks(result["floor"]["peaks"])

    # Backends and precisions side by side, in this process, on the same bags (see .variants).
    result["side_by_side"] = None
    static_dir = None
    if settings.backend != "trt" and settings.device == "cpu" and "fp32" in chosen and settings.static_int8:
        log("static int8 (QDQ) graphs, calibrated on face crops")
        static_dir = _static_int8_dir(model, spec, out / "model-int8-static")
    if settings.backend != "trt" and settings.device == "cpu" and "fp32" in chosen:
        from . import variants as side

        runnable, skipped = side.list_variants(model, chosen, static_dir=static_dir, threads=settings.threads)
        rows = side.measure_variants(
            runnable, spec, timing, flops=result["floor"]["flops"], peaks=result["floor"]["precision_peaks"], log=log
        )
        best = side.fastest_agreeing(rows)
        result["side_by_side"] = {"rows": rows, "skipped": skipped, "fastest_agreeing": best["name"] if best else None,
                                  "gate": list(side.AGREEMENT_GATE)}  # fmt: skip

    log(f"preprocessing stages on the {shortest} s recording")
    result["stages"] = {
        "preprocessing": stages.measure_preprocessing(
            recordings[shortest]["video"], recordings[shortest]["eeg"], spec, timing, settings.recording_timing()
        ),
        "model": {},
    }
    from .memory import measure_memory

    result["eeg_memory"] = measure_memory(out / "eeg-memory", seconds=60 if tiny else 600 if quick else 3600, log=log)
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
    best_row = _best_side_by_side(result)
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
    used = sorted({r["settings"]["batch"] for r in result["endtoend"]})
    if settings.pipeline_batch is None and len(used) == 1:
        result["settings"]["pipeline_batch"] = used[0]

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

    result["load"]["after"] = load_average()
    result["load"]["phases"] = log.phases
    result["summary"], result["targets"] = report.summarize(result, predictions)
    for run in result.get("endtoend_best", []):
        base = ("fp32", run["recording_s"])
        if base in predictions:
            n, same, diff = report._agreement(predictions[(f"best:{run['variant']}", run["recording_s"])], predictions[base])
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
    result = report.rounded(result)
    path = write_json_atomic(out / "bench.json", result)
    (out / "bench.md").write_text(report.markdown(result) + "\n")
    log(f"wrote {path} in {result['duration_s']:.0f} s")
    if progress:
        from .summary import summary_screen

        print(summary_screen(result), file=sys.stderr, flush=True)
    return path


def _static_int8_dir(model: Path, spec: Any, target: Path) -> Path:
    """``target`` with links to the fp32 graphs and spec of ``model`` plus static int8 graphs
    (:func:`milmer.export.variants.make_int8_static`); reused when already there."""
    from ..export.variants import make_int8_static
    from ..runtime.model_dir import SPEC_FILE, graph_filename

    target.mkdir(parents=True, exist_ok=True)
    for name in (SPEC_FILE, graph_filename("swin", "fp32"), graph_filename("fusion", "fp32")):
        link = target / name
        if not link.exists():
            link.symlink_to(model / name)
    if not all((target / graph_filename(stem, "int8")).is_file() for stem in ("swin", "fusion")):
        make_int8_static(model, spec, out_dir=target)
    return target


def _best_side_by_side(result: dict[str, Any]) -> dict[str, Any] | None:
    """The fastest agreeing side-by-side row, unless it is a plain ONNX Runtime precision (whose
    end-to-end runs the loop above already made)."""
    side = result.get("side_by_side")
    if not side or not side.get("fastest_agreeing"):
        return None
    row = next(r for r in side["rows"] if r["name"] == side["fastest_agreeing"])
    if row["backend"] == result["settings"]["backend"] and row["model_dir"] == str(result["model"]["dir"]):
        return None
    return row


def publish_results(bench_json: Path, results_dir: Path, name: str | None = None) -> list[Path]:
    """Copy a finished benchmark into ``results_dir`` as ``<name>.json`` with its charts
    (``<name>-stages.png`` ...) and markdown summary (``<name>.md``); returns the files.

    name: file stem; ``None``: ``<kind>-<machine>`` (kind: 'cpu' or the GPU device used, machine:
    the CPU's short name). Give one where two hosts share a CPU name (e.g. 'cpu-amd-epyc-avx2').
    """
    from ..runtime.files import write_json_atomic
    from . import charts, report

    result = json.loads(Path(bench_json).read_text())
    kind = "cpu" if result["settings"]["device"] == "cpu" else result["settings"]["device"]
    if name is None:
        name = f"{kind}-{result['machine']['cpu_short_name']}"
    elif not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise MilmerInputError(
            f"Invalid value for 'name': expected a file stem that starts with a letter or digit, then letters, "
            f"digits, '.', '_' or '-', got {name!r}."
        )
    results_dir.mkdir(parents=True, exist_ok=True)
    result["charts"] = charts.draw_charts(result, results_dir, prefix=f"{name}-")
    paths = [write_json_atomic(results_dir / f"{name}.json", result), results_dir / f"{name}.md"]
    paths[1].write_text(report.markdown(result) + "\n")
    return paths + [results_dir / c for c in result["charts"].values()]
