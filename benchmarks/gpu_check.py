"""``python -m milmer.benchmarks.gpu_check --out DIR``: everything a GPU day must measure, once.

A person with an NVIDIA GPU (desktop or Jetson) runs this one command; in ~10 minutes it writes
``DIR/gpu_check.json`` and ``DIR/gpu_check.md`` (put ``DIR`` beside ``milmer bench``'s output to
read them with the CPU results). Steps, each ``ok``, ``skipped`` (with the reason) or ``failed``
(with the error), so one missing piece never hides the others:

1. ``environment``: GPU, driver, CUDA (``nvidia-smi``, PyTorch), TensorRT, cuda-python, ONNX
   Runtime and its execution providers, CPU.
2. ``model``: the paper-size model with random weights, exported with its fp16 graphs
   (:func:`~milmer.benchmarks.model.build_bench_model`), or the graphs of ``--model``.
3. ``tensorrt_engines``: strongly typed TensorRT engines of the fp16 graphs with the default
   optimisation profile (1 / 8 / 32 bags) (:func:`~milmer.export.tensorrt_build.build_engines`).
4. ``tensorrt``, ``ort_cuda``, ``torch_cuda_fp16``: parity with ONNX Runtime fp32 on the CPU on the
   export's check bags (3 random bags, as ``milmer export`` verifies), then batched bag
   throughput at 1 / 8 / 32 bags (median of ``--repeats`` calls after one warm-up).

Without a GPU every GPU step is ``skipped: no GPU`` and the report is still written (exit 0).
Predictions of a random model mean nothing; the agreement figures and the timings do.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..runtime.check import MilmerInputError, check_int
from ..runtime.files import write_json_atomic, write_text_atomic

__all__ = ["BAG_SIZES", "CHECK_BAGS", "REPORT_JSON", "REPORT_MD", "Step", "environment", "run_gpu_check", "main"]

BAG_SIZES: tuple[int, ...] = (1, 8, 32)
#: Bags of the export's parity check (``milmer export`` verifies 3 random bags).
CHECK_BAGS = 3
REPORT_JSON, REPORT_MD = "gpu_check.json", "gpu_check.md"
NO_GPU = "no GPU"
GPU_STEPS = ("model", "tensorrt_engines", "tensorrt", "ort_cuda", "torch_cuda_fp16")

Status = Literal["ok", "skipped", "failed"]


@dataclass(frozen=True)
class Step:
    """One step's outcome: ``figures`` holds its numbers (parity, bags/s per batch size)."""

    name: str
    status: Status
    reason: str = ""
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)


def _run(command: list[str]) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict[str, Any]:
    """GPU, driver, CUDA, TensorRT, cuda-python, ONNX Runtime (+ providers), PyTorch, CPU."""
    from .machine import cpu_model

    env: dict[str, Any] = {"python": platform.python_version(), "machine": platform.machine(), "cpu": cpu_model()}
    smi = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"])
    env["nvidia_smi"] = [dict(zip(("name", "driver", "memory"), (p.strip() for p in line.split(","))))
                         for line in smi.splitlines()] if smi else None  # fmt: skip
    try:
        import torch

        cuda = torch.cuda.is_available()
        env["torch"] = {"version": torch.__version__, "cuda": torch.version.cuda, "cuda_available": cuda,
                        "device": torch.cuda.get_device_name(0) if cuda else None}  # fmt: skip
    except ImportError:
        env["torch"] = None
    try:
        import onnxruntime

        env["onnxruntime"] = {"version": onnxruntime.__version__, "providers": onnxruntime.get_available_providers()}
    except ImportError:
        env["onnxruntime"] = None
    for name, module in (("tensorrt", "tensorrt"), ("cuda_python", "cuda.bindings.runtime")):
        try:
            imported = __import__(module, fromlist=["_"])
            env[name] = str(getattr(imported, "__version__", "present"))
        except Exception as err:  # noqa: BLE001 - absent or broken (no libnvinfer): say which
            env[name] = None
            env[f"{name}_absent"] = f"{type(err).__name__}: {err}"[:200]
    return env


def gpu_present(env: dict[str, Any]) -> bool:
    """A CUDA GPU answers (``nvidia-smi`` lists one, or PyTorch sees one)."""
    return bool(env.get("nvidia_smi")) or bool((env.get("torch") or {}).get("cuda_available"))


def _agreement(got: dict[str, np.ndarray], ref: dict[str, np.ndarray], spec: Any) -> dict[str, Any]:
    _, probs, _, selected = spec.graph.fusion_outputs
    return {
        "top1_agreement": float(np.mean(got[probs].argmax(1) == ref[probs].argmax(1))),
        "selected_agreement": float(np.mean((got[selected] == ref[selected]).all(1))),
        "max_abs_probabilities": float(np.abs(got[probs].astype(np.float64) - ref[probs]).max()),
        "finite": bool(np.isfinite(got[probs]).all()),
    }


def _throughput(score: Callable[[Any], Any], spec: Any, bag_sizes: Sequence[int], repeats: int) -> list[dict[str, Any]]:
    from ..export.inputs import random_inputs

    rows = []
    for b in bag_sizes:
        inputs = random_inputs(spec, b, seed=b)
        score(inputs)  # warm-up: allocations, autotuning, lazy engine load
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            score(inputs)
            times.append(time.perf_counter() - t0)
        median = float(np.median(times))
        rows.append({"bags": b, "median_s": median, "bags_per_s": b / median, "ms_per_bag": 1e3 * median / b})
    return rows


def _runner_scorer(swin: Any, fusion: Any, spec: Any) -> Callable[[Any], dict[str, np.ndarray]]:
    """Both graphs through two activated runners: InputSet -> fusion outputs by name."""
    g = spec.graph

    def score(inputs: Any) -> dict[str, np.ndarray]:
        frames = np.ascontiguousarray(inputs.frames.reshape(-1, *inputs.frames.shape[2:]))  # (B*F, 3, S, S)
        tokens = swin.infer({g.backbone_input: frames})[g.backbone_output]  # (B*F, P, D)
        bag_tokens = np.ascontiguousarray(tokens.reshape(len(inputs.eeg), -1, *tokens.shape[1:]))  # (B, F, P, D)
        return fusion.infer(dict(zip(g.fusion_inputs, (inputs.eeg, bag_tokens))))

    return score


def _step(name: str, body: Callable[[], dict[str, Any]], log: Callable[[str], None]) -> Step:
    log(f"{name} ...")
    t0 = time.perf_counter()
    try:
        figures = body()
    except _Skip as skip:
        return Step(name, "skipped", str(skip), time.perf_counter() - t0)
    except Exception as err:  # noqa: BLE001 - one failing step must not hide the others
        return Step(name, "failed", f"{type(err).__name__}: {err}"[:500], time.perf_counter() - t0)
    return Step(name, "ok", "", time.perf_counter() - t0, figures)


class _Skip(Exception):
    """A step that cannot run here; the message says why."""


def run_gpu_check(
    out: str | os.PathLike[str],
    *,
    model_dir: str | os.PathLike[str] | None = None,
    bag_sizes: Sequence[int] = BAG_SIZES,
    repeats: int = 5,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every step (module docstring), write ``out/gpu_check.json`` and ``.md``; return the report."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    steps: list[Step] = []
    if not gpu_present(env):
        steps = [Step(name, "skipped", NO_GPU) for name in GPU_STEPS]
    else:
        steps = _gpu_steps(out, model_dir, tuple(bag_sizes), repeats, env, log)
    report = {"environment": env, "bag_sizes": list(bag_sizes), "check_bags": CHECK_BAGS,
              "steps": [asdict(s) for s in steps]}  # fmt: skip
    write_json_atomic(out / REPORT_JSON, report)
    write_text_atomic(out / REPORT_MD, markdown(report))
    return report


def _gpu_steps(out: Path, model_dir: str | os.PathLike[str] | None, bag_sizes: tuple[int, ...], repeats: int,
               env: dict[str, Any], log: Callable[[str], None]) -> list[Step]:  # fmt: skip
    from ..export.inputs import random_inputs
    from ..export.verify import OnnxModel
    from ..runtime.backends.ort import OrtRunner
    from ..runtime.backends.trt import TrtRunner
    from ..runtime.model_dir import GRAPHS, graph_filename
    from ..runtime.spec import ModelSpec

    built: dict[str, Path] = {}

    def model() -> dict[str, Any]:
        if model_dir is not None:
            built["model"] = Path(model_dir)
        else:
            from .model import build_bench_model

            built["model"], built["checkpoint"] = build_bench_model(out / "bench-model", tiny=False)
        return {"model_dir": str(built["model"])}

    steps = [_step("model", model, log)]
    if "model" not in built:
        return steps + [Step(n, "skipped", "no model (see the model step)") for n in GPU_STEPS[1:]]
    mdir = built["model"]
    spec = ModelSpec.load(mdir / "spec.json")
    fp16 = [mdir / graph_filename(g, "fp16") for g in GRAPHS]
    check = random_inputs(spec, CHECK_BAGS, seed=1)
    with OnnxModel(*(mdir / graph_filename(g, "fp32") for g in GRAPHS), spec) as cpu:
        reference = cpu.run(check)[1]

    def engines() -> dict[str, Any]:
        if env.get("tensorrt") is None or env.get("cuda_python") is None:
            raise _Skip("TensorRT or cuda-python not installed (pip install \"milmer[trt]\")")
        from ..export.tensorrt_build import build_engines

        built_engines = build_engines(mdir, ("fp16",), (1, 8, 32), log=log)
        return {"engines": [{"graph": e.graph, "seconds": e.seconds} for e in built_engines]}

    def with_runners(make: Callable[[Path], Any]) -> dict[str, Any]:
        swin, fusion = make(fp16[0]), make(fp16[1])
        with swin, fusion:
            score = _runner_scorer(swin, fusion, spec)
            return {"parity_vs_ort_cpu_fp32": _agreement(score(check), reference, spec),
                    "throughput": _throughput(score, spec, bag_sizes, repeats)}  # fmt: skip

    def tensorrt() -> dict[str, Any]:
        if not any(s.name == "tensorrt_engines" and s.status == "ok" for s in steps):
            raise _Skip("no engines (see the tensorrt_engines step)")
        return with_runners(lambda p: TrtRunner(p, device="cuda", precision="fp16"))

    def ort_cuda() -> dict[str, Any]:
        if "CUDAExecutionProvider" not in ((env.get("onnxruntime") or {}).get("providers") or []):
            raise _Skip("onnxruntime without CUDAExecutionProvider (pip install onnxruntime-gpu)")
        return with_runners(lambda p: OrtRunner(p, device="cuda", precision="fp16"))

    def torch_cuda() -> dict[str, Any]:
        if not (env.get("torch") or {}).get("cuda_available"):
            raise _Skip("PyTorch without CUDA")
        if "checkpoint" not in built:
            raise _Skip("--model given: no checkpoint for PyTorch")
        return _torch_fp16(built["checkpoint"], spec, check, reference, bag_sizes, repeats)

    for name, body in (("tensorrt_engines", engines), ("tensorrt", tensorrt), ("ort_cuda", ort_cuda),
                       ("torch_cuda_fp16", torch_cuda)):  # fmt: skip
        steps.append(_step(name, body, log))
    return steps


def _torch_fp16(ckpt: Path, spec: Any, check: Any, reference: dict[str, np.ndarray], bag_sizes: tuple[int, ...],
                repeats: int) -> dict[str, Any]:  # fmt: skip
    """The checkpoint in PyTorch on the GPU under fp16 autocast: parity and bags/s."""
    import torch

    from ..export.command import load_for_export
    from ..export.onnx_graphs import BackboneGraph, FusionGraph

    model, _ = load_for_export(ckpt)
    model = model.cuda().eval()
    backbone, head = BackboneGraph(model), FusionGraph(model)

    def score(inputs: Any) -> dict[str, np.ndarray]:
        b, f = inputs.frames.shape[:2]
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
            frames = torch.from_numpy(inputs.frames).cuda().flatten(0, 1)  # (B*F, 3, S, S)
            tokens = backbone(frames)  # (B*F, P, D)
            outs = head(torch.from_numpy(inputs.eeg).cuda(), tokens.reshape(b, f, *tokens.shape[1:]))
        torch.cuda.synchronize()
        return {name: t.float().cpu().numpy() if t.is_floating_point() else t.cpu().numpy()
                for name, t in zip(spec.graph.fusion_outputs, outs)}  # fmt: skip

    return {"parity_vs_ort_cpu_fp32": _agreement(score(check), reference, spec),
            "throughput": _throughput(score, spec, bag_sizes, repeats)}  # fmt: skip


def markdown(report: dict[str, Any]) -> str:
    """``gpu_check.md``: the environment, one row per step, then the throughput table."""
    env = report["environment"]
    gpus = ", ".join(f"{g['name']} (driver {g['driver']})" for g in env.get("nvidia_smi") or []) or "none found"
    lines = ["# GPU check", "", f"- GPU: {gpus}", f"- CPU: {env.get('cpu')} ({env.get('machine')}), "
             f"Python {env.get('python')}", f"- TensorRT: {env.get('tensorrt') or 'not installed'}; "
             f"ONNX Runtime: {(env.get('onnxruntime') or {}).get('version')} "
             f"{(env.get('onnxruntime') or {}).get('providers')}", "",
             "| step | status | seconds | max abs dp vs ORT CPU fp32 | top-1 agreement |", "|---|---|---|---|---|"]  # fmt: skip
    throughput = []
    for s in report["steps"]:
        status = s["status"] + (f": {s['reason']}" if s["reason"] else "")
        parity = s["figures"].get("parity_vs_ort_cpu_fp32") or {}
        dp, top1 = parity.get("max_abs_probabilities"), parity.get("top1_agreement")
        lines.append(f"| {s['name']} | {status} | {s['seconds']:.1f} | "
                     f"{'-' if dp is None else f'{dp:.2e}'} | {'-' if top1 is None else f'{top1:.0%}'} |")  # fmt: skip
        throughput += [(s["name"], r) for r in s["figures"].get("throughput", [])]
    if throughput:
        lines += ["", "| runtime | bags | bags/s | ms per bag |", "|---|---|---|---|"]
        lines += [f"| {n} | {r['bags']} | {r['bags_per_s']:.1f} | {r['ms_per_bag']:.2f} |" for n, r in throughput]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m milmer.benchmarks.gpu_check", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--model", help="a model directory with fp16 graphs (default: build the paper-size model)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per batch size (default 5)")
    args = parser.parse_args(argv)
    try:
        check_int("--repeats", args.repeats, low=1)
    except MilmerInputError as err:
        parser.error(str(err))
    report = run_gpu_check(args.out, model_dir=args.model, repeats=args.repeats)
    print(markdown(report))
    print(f"wrote {Path(args.out) / REPORT_JSON} and {REPORT_MD}")
    return 1 if any(s["status"] == "failed" for s in report["steps"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
