"""End-to-end runs of ``Pipeline.predict`` on a whole recording, each in its own process.

A fresh Python process per run makes the peak resident memory belong to that run alone, so runs
on a 60 s and a 10 min recording show whether memory stays flat as recordings grow, and start-up
is measured cold:

- ``import_s``:  importing the runtime and the libraries a run loads (ONNX Runtime, OpenCV, MNE,
  scikit-learn; OpenVINO with ``backend='openvino'``);
- ``session_s``: ``Pipeline(...)`` (model directory checks, both graphs' sessions);
- ``wall_s``:    ``predict`` from the call to the last window (EEG read and preprocessing, face
  crops, backbone, fusion), with the pipeline's per-stage split;
- ``process_s``: the child's whole life as the parent saw it (interpreter start included).

Peak memory is the child's ``VmHWM`` (/proc/self/status), the high-water mark of its own address
space. Not ``ru_maxrss``: on Linux a child's ``ru_maxrss`` (``RUSAGE_SELF`` or from ``wait4``)
starts at the parent's peak, which ``exec`` carries over (``signal->maxrss``), so every child of
a benchmark that had just swept large batches would report that sweep's memory. ``ru_maxrss``
is the fall-back where /proc is missing.

The child writes a JSON file with these figures and every window's prediction (for the int8
agreement and the reference parity). Run as ``python -m milmer.benchmarks.endtoend --help``.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()  # first thing: the child's start-up is measured from here

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

__all__ = ["RUN_IMPORTS", "run_endtoend", "spawn_worker", "endtoend_subprocess", "main"]

#: Libraries a prediction run imports; importing them up front puts their cost in start-up.
RUN_IMPORTS: tuple[str, ...] = ("onnxruntime", "cv2", "mne", "sklearn.decomposition")


def run_endtoend(
    model_dir: str | os.PathLike[str],
    video: str | os.PathLike[str],
    eeg: str | os.PathLike[str],
    *,
    precision: str = "fp32",
    backend: str = "ort",
    device: str = "cpu",
    batch: int | None = None,
    threads: int | None = None,
    backend_options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One cold ``predict`` in this process (see the module docstring); returns its figures.

    batch: bags per call; ``None`` uses the pipeline's own default for the device it runs on
    (what ``milmer-infer`` does), recorded in ``settings['batch']``.
    backend_options: runner options per backend (``Pipeline(backend_options=...)``), e.g.
    ``{'openvino': {'inference_precision': 'bf16'}}``.
    """
    import importlib

    tick = time.perf_counter()
    from ..runtime.pipeline import Pipeline
    from .machine import current_rss_mb, own_peak_rss_mb

    for name in RUN_IMPORTS + (("openvino",) if backend == "openvino" else ()):
        importlib.import_module(name)
    import_s = time.perf_counter() - tick

    tick = time.perf_counter()
    pipe = Pipeline(
        model_dir, backend=backend, device=device, precision=precision, batch=batch,  # type: ignore[arg-type]
        intra_op_threads=threads, backend_options=backend_options,
    )  # fmt: skip
    session_s = time.perf_counter() - tick
    rss_after_load = current_rss_mb()
    with pipe:
        result = pipe.predict(video, eeg)
    stats = result.stats
    choice = getattr(pipe.scorer, "precision_choice", None)  # set where precision was 'auto' or 'bf16'
    return {
        "precision": precision,
        "settings": result.settings,
        "precision_choice": None if choice is None else {
            "asked": choice.asked, "graphs": choice.graphs, "compute": choice.compute, "note": choice.note,
            "agreement_cached": None if choice.agreement is None else choice.agreement.cached,
        },
        "import_s": import_s,
        "session_s": session_s,
        "startup_s": time.perf_counter() - _STARTED - stats.wall_s,
        "wall_s": stats.wall_s,
        "n_windows": stats.n_windows,
        "seconds_covered": result.seconds_covered,
        "real_time_factor": result.real_time_factor,
        "per_window_s": stats.wall_s / stats.n_windows if stats.n_windows else None,
        "timings": dict(stats.timings),
        "face_timings": dict(stats.face.timings),
        "eeg_timings": dict(stats.eeg_info.get("timings", {})),
        "eeg_ica": {k: stats.eeg_info.get(k) for k in ("ica_method", "ica_n_iter", "ica_converged")},
        "rss_after_load_mb": rss_after_load,
        "peak_rss_mb": own_peak_rss_mb(),
        "predictions": {
            "index": [w.index for w in result.windows],
            "class_index": [w.class_index for w in result.windows],
            "probabilities": [[round(float(p), 8) for p in w.probabilities] for w in result.windows],
        },
    }


def spawn_worker(module: str, args: Sequence[str], out_json: Path, log_dir: Path) -> dict[str, Any]:
    """Run ``python -m module *args --json out_json`` (output to ``log_dir``) and return its JSON
    plus ``process_s``, the child's wall time as this process saw it."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / (out_json.stem + ".log")
    command = [sys.executable, "-m", module, *args, "--json", str(out_json)]
    tick = time.perf_counter()
    with log.open("w") as stream:
        returncode = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, check=False).returncode
    process_s = time.perf_counter() - tick
    if returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"{module} failed (exit {returncode}); log {log}:\n{tail}")
    result = json.loads(out_json.read_text())
    result["process_s"] = process_s
    return result


def endtoend_subprocess(
    model_dir: Path,
    video: Path,
    eeg: Path,
    out_json: Path,
    *,
    precision: str,
    backend: str,
    device: str,
    batch: int | None,
    threads: int | None,
    backend_options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """:func:`run_endtoend` in a fresh process (see :func:`spawn_worker`)."""
    args = [
        "--model", str(model_dir), "--video", str(video), "--eeg", str(eeg), "--precision", precision,
        "--backend", backend, "--device", device,
    ]  # fmt: skip
    if batch is not None:
        args += ["--batch", str(batch)]
    if threads is not None:
        args += ["--threads", str(threads)]
    if backend_options:
        args += ["--backend-options", json.dumps(backend_options)]
    return spawn_worker("milmer.benchmarks.endtoend", args, out_json, out_json.parent / "logs")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One cold end-to-end prediction run (a benchmark worker).")
    parser.add_argument("--model", required=True)
    parser.add_argument("--video", required=True)
    parser.add_argument("--eeg", required=True)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--backend", default="ort")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=None, help="default: the pipeline's for the device")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--backend-options", type=json.loads, default=None, help="JSON: backend -> runner options")
    parser.add_argument("--json", required=True, help="where to write the figures")
    ns = parser.parse_args(argv)
    result = run_endtoend(
        ns.model, ns.video, ns.eeg, precision=ns.precision, backend=ns.backend, device=ns.device,
        batch=ns.batch, threads=ns.threads, backend_options=ns.backend_options,
    )  # fmt: skip
    Path(ns.json).write_text(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
