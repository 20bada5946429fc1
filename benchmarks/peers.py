"""The PyTorch peers a user would pick for the backbone, timed beside the exported graphs.

The exported runtime competes with what a PyTorch user gets from a line or two of code, so
the side-by-side table is incomplete without them. On the checkpoint the graphs came from, one
bag (F frames, batched: ``forward_backbone`` on (F, 3, S, S)), under ``torch.inference_mode``:

- ``torch eager fp32``;
- ``torch autocast bf16`` (``torch.autocast('cpu', dtype=torch.bfloat16)``: oneDNN bf16 kernels,
  AMX where present); skipped, with the reason, on a CPU without native bfloat16, where torch
  would emulate it;
- ``torch.compile fp32`` (inductor), in its own process with a time limit: compiling Swin-T
  can take minutes on a small CPU; past the limit it is reported as skipped, with the time.

Each worker sets torch's threads to the benchmark's (default: the usable cores) and says so.
Tokens are compared with eager fp32 (max |d token|). Run as ``python -m milmer.benchmarks.peers``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PEERS", "measure_peers", "run_peers", "main"]

#: Peer name -> (compile, bf16).
PEERS: dict[str, tuple[bool, bool]] = {
    "torch eager fp32": (False, False),
    "torch autocast bf16": (False, True),
    "torch.compile fp32": (True, False),
}


def run_peers(
    checkpoint: str, names: Sequence[str], *, warmup: int, repeats: int, threads: int | None
) -> dict[str, Any]:
    """Time ``names`` (keys of :data:`PEERS`) in this process; returns ``{'rows', 'skipped', 'torch_threads'}``."""
    import torch

    from ..runtime.backends.openvino import BF16_FLAGS, cpu_flags, has_bf16
    from ..runtime.backends.ort import default_threads
    from ..training.checkpoint import load_checkpoint
    from .timing import TimingConfig, time_call

    torch.set_num_threads(threads or default_threads())
    model, _, spec, _ = load_checkpoint(checkpoint)
    model.eval()
    f, s = spec.face.frames_per_window, spec.face.frame_size
    frames = torch.from_numpy(np.random.default_rng(0).standard_normal((f, 3, s, s), dtype=np.float32))
    timing = TimingConfig(warmup, repeats)
    rows, skipped = [], {}
    reference = None
    for name in names:
        compiled, bf16 = PEERS[name]
        if bf16 and not has_bf16(cpu_flags()):
            skipped[name] = f"no native bfloat16 on this CPU ({' or '.join(sorted(BF16_FLAGS))}): torch would emulate it"
            continue
        fn = model.forward_backbone
        compile_s = None
        if compiled:
            tick = time.perf_counter()
            fn = torch.compile(model.forward_backbone)
            with torch.inference_mode():
                fn(frames)  # compiles
            compile_s = time.perf_counter() - tick

        def call(fn: Any = fn, bf16: bool = bf16) -> Any:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return fn(frames)

        tokens = call().float().numpy()
        if reference is None and not bf16 and not compiled:
            reference = tokens
        timed = time_call(call, timing, per="bag")
        rows.append({
            "name": name, "backbone_s": timed.median_s, "backbone_p95_s": timed.p95_s, "compile_s": compile_s,
            "compute": "bf16" if bf16 else "fp32", "frames": f,
            "max_abs_tokens_vs_eager": float(np.abs(tokens - reference).max()) if reference is not None else None,
        })  # fmt: skip
    return {"rows": rows, "skipped": skipped, "torch_threads": torch.get_num_threads()}


def _worker(checkpoint: Path, names: Sequence[str], out_json: Path, *, warmup: int, repeats: int,
            threads: int | None, timeout_s: float | None) -> dict[str, Any]:  # fmt: skip
    """:func:`run_peers` in a fresh process; ``{'error': why}`` when it fails or runs past ``timeout_s``
    (``None``: no limit)."""
    command = [sys.executable, "-m", "milmer.benchmarks.peers", "--checkpoint", str(checkpoint),
               "--warmup", str(warmup), "--repeats", str(repeats), "--json", str(out_json)]  # fmt: skip
    command += [arg for name in names for arg in ("--peer", name)]
    if threads:
        command += ["--threads", str(threads)]
    out_json.parent.mkdir(parents=True, exist_ok=True)
    log = out_json.with_suffix(".log")
    try:
        with log.open("w") as stream:
            code = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, timeout=timeout_s, check=False).returncode
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout_s:g} s (compiling took too long on this CPU)"}
    if code != 0:
        return {"error": f"failed (exit {code}): {log.read_text()[-300:].strip()}"}
    return json.loads(out_json.read_text())


def measure_peers(
    checkpoint: Path,
    folder: Path,
    *,
    warmup: int,
    repeats: int,
    threads: int | None = None,
    compile_timeout_s: float = 300.0,
    flops_per_frame: float | None = None,
    peaks: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Eager and autocast in one worker, ``torch.compile`` in another (its own time limit).

    Returns ``{'rows', 'skipped', 'torch_threads'}``; rows carry ``gflops``/``x_floor`` (against
    their precision's GEMM peak) when ``flops_per_frame`` and ``peaks`` are given."""
    eager = [n for n, (c, _) in PEERS.items() if not c]
    result = _worker(checkpoint, eager, folder / "eager.json", warmup=warmup, repeats=repeats, threads=threads,
                     timeout_s=None)  # fmt: skip
    out: dict[str, Any] = {"rows": [], "skipped": {}, "torch_threads": result.get("torch_threads")}
    if "error" in result:
        out["skipped"].update({n: result["error"] for n in eager})
    else:
        out["rows"] += result["rows"]
        out["skipped"].update(result["skipped"])
    compiled = [n for n, (c, _) in PEERS.items() if c]
    result = _worker(checkpoint, ["torch eager fp32", *compiled], folder / "compile.json", warmup=warmup,
                     repeats=repeats, threads=threads, timeout_s=compile_timeout_s)  # fmt: skip
    if "error" in result:
        out["skipped"].update({n: f"torch.compile {result['error']}" for n in compiled})
    else:
        out["rows"] += [r for r in result["rows"] if r["name"] in compiled]
    for row in out["rows"]:
        peak = ((peaks or {}).get(row["compute"]) or {}).get("peak_gflops")
        if flops_per_frame:
            flops = flops_per_frame * row["frames"]
            row["gflops"] = flops / row["backbone_s"] / 1e9
            row["x_floor"] = row["backbone_s"] / (flops / (peak * 1e9)) if peak else None
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="PyTorch peers of the backbone (a benchmark worker).")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--peer", action="append", choices=tuple(PEERS), required=True)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", required=True)
    ns = parser.parse_args(argv)
    result = run_peers(ns.checkpoint, ns.peer, warmup=ns.warmup, repeats=ns.repeats, threads=ns.threads)
    Path(ns.json).write_text(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
