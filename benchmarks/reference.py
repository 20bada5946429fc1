"""The official-style reference: how the original code scores a window, with the same weights.

The original Milmer code runs PyTorch eagerly and, inside ``forward``, calls the Hugging Face
image processor on each frame and the Swin backbone once per frame (instance), then the fusion.
This worker does exactly that with the checkpoint the ONNX graphs were exported from:

- the image processor is transformers' ViT/Swin processor (the PIL backend, no torchvision),
  configured by a ``preprocessor_config.json`` written from the spec's frame size, mean and std
  (:func:`write_processor_config`), and called per frame;
- ``MilmerModel.forward_backbone`` on one frame at a time, ``forward_fusion`` on one bag,
  under ``torch.inference_mode`` with one torch thread per free core
  (:func:`milmer.training.threads.set_torch_threads`; on the GPU when the benchmark runs on one);
- EEG preprocessing and face crops use the same runtime code as the pipeline (the original code
  prepared them offline; here their cost is identical on both sides).

Only the first ``warmup + windows`` windows of a recording are scored (PyTorch per frame is
slow); the benchmark extrapolates per window. torch and transformers are imported only here and
only in this worker process. Run as ``python -m milmer.benchmarks.reference --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.check import check_option
from ..runtime.spec import ModelSpec
from .endtoend import RUN_IMPORTS, spawn_worker
from .machine import current_rss_mb, own_peak_rss_mb

__all__ = ["PROCESSOR_FILE", "write_processor_config", "run_reference", "reference_subprocess", "main"]

PROCESSOR_FILE = "preprocessor_config.json"
#: PIL's BICUBIC, the resampling of the Swin checkpoints' processor configs.
_BICUBIC = 3


def write_processor_config(spec: ModelSpec, folder: str | os.PathLike[str]) -> Path:
    """Write a ``preprocessor_config.json`` (ViTImageProcessor: resize to the frame size, rescale
    by 1/255, normalise by the spec's mean/std) into ``folder``; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    size = spec.face.frame_size
    config = {
        "image_processor_type": "ViTImageProcessor",
        "do_resize": True,
        "size": {"height": size, "width": size},
        "resample": _BICUBIC,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(spec.face.mean),
        "image_std": list(spec.face.std),
    }
    (folder / PROCESSOR_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return folder


def run_reference(
    checkpoint: str | os.PathLike[str],
    processor_dir: str | os.PathLike[str],
    video: str | os.PathLike[str],
    eeg: str | os.PathLike[str],
    *,
    windows: int,
    warmup: int = 1,
    device: str = "cpu",
) -> dict[str, Any]:
    """Score the first ``warmup + windows`` windows the original way (module docstring).

    device: 'cpu' or 'cuda' (PyTorch's device; timings then wait for the GPU to finish).

    Returns start-up (``import_s``, ``load_s``), EEG preprocessing seconds, per-window samples of
    ``faces``, ``processor``, ``backbone``, ``fusion`` and ``total`` for the timed windows, the
    predictions of every scored window, torch's thread count and this process's peak RSS.
    """
    import importlib

    tick = time.perf_counter()
    import torch
    from transformers import AutoImageProcessor

    from ..runtime.eeg.io import read_raw
    from ..runtime.eeg.preprocess import preprocess_raw
    from ..runtime.face.extract import iter_face_windows
    from ..training.checkpoint import load_checkpoint
    from ..training.threads import set_torch_threads

    for name in RUN_IMPORTS:
        importlib.import_module(name)
    import_s = time.perf_counter() - tick

    set_torch_threads()  # free cores only, as training does (see milmer.training.threads)
    check_option("device", device, ("cpu", "cuda"))
    if device == "cuda" and not torch.cuda.is_available():
        check_option("device", device, ("cpu",), hint="'cuda' needs a CUDA build of PyTorch and a GPU")
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    tick = time.perf_counter()
    model, _, spec, _ = load_checkpoint(checkpoint)
    model = model.to(device)
    processor = AutoImageProcessor.from_pretrained(processor_dir, backend="pil")
    load_s = time.perf_counter() - tick
    rss_after_load = current_rss_mb()

    tick = time.perf_counter()
    eeg_windows = preprocess_raw(read_raw(eeg), spec.eeg)
    eeg_s = time.perf_counter() - tick
    n = min(warmup + windows, len(eeg_windows.starts))
    faces = iter_face_windows(video, eeg_windows.starts[:n], spec.face, spec.eeg.window_s)

    keys = ("faces", "processor", "backbone", "fusion", "total")
    samples: dict[str, list[float]] = {k: [] for k in keys}
    predictions: dict[str, list[Any]] = {"index": [], "class_index": [], "probabilities": []}
    with torch.inference_mode():
        for i in range(n):
            t0 = time.perf_counter()
            window = next(faces)
            t1 = time.perf_counter()
            pixels = [processor(images=crop, return_tensors="pt")["pixel_values"].to(device) for crop in window.crops]
            sync()
            t2 = time.perf_counter()
            tokens = torch.stack([model.forward_backbone(p)[0] for p in pixels])[None]  # (1, F, P, H)
            sync()
            t3 = time.perf_counter()
            eeg_t = torch.from_numpy(eeg_windows.data[window.index : window.index + 1]).to(device)  # (1, C, T)
            logits, _, _ = model.forward_fusion(eeg_t, tokens)
            probs = torch.softmax(logits, dim=-1)[0].cpu().numpy()
            t4 = time.perf_counter()
            if i >= warmup:
                for key, value in zip(keys, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
                    samples[key].append(value)
            predictions["index"].append(int(window.index))
            predictions["class_index"].append(int(np.argmax(probs)))
            predictions["probabilities"].append([round(float(p), 8) for p in probs])
    return {
        "import_s": import_s,
        "load_s": load_s,
        "startup_s": import_s + load_s,
        "eeg_preprocess_s": eeg_s,
        "eeg_seconds": float(eeg_windows.info.get("duration_s", 0.0)),
        "eeg_windows": int(len(eeg_windows.starts)),
        "warmup_windows": min(warmup, n),
        "timed_windows": len(samples["total"]),
        "samples_s": samples,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "rss_after_load_mb": rss_after_load,
        "peak_rss_mb": own_peak_rss_mb(),
        "predictions": predictions,
    }


def reference_subprocess(
    checkpoint: Path,
    processor_dir: Path,
    video: Path,
    eeg: Path,
    out_json: Path,
    *,
    windows: int,
    warmup: int,
    device: str = "cpu",
) -> dict[str, Any]:
    """:func:`run_reference` in a fresh process (peak RSS and start-up of its own)."""
    args = [
        "--checkpoint", str(checkpoint), "--processor", str(processor_dir), "--video", str(video),
        "--eeg", str(eeg), "--windows", str(windows), "--warmup", str(warmup), "--device", device,
    ]  # fmt: skip
    return spawn_worker("milmer.benchmarks.reference", args, out_json, out_json.parent / "logs")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Official-style PyTorch reference run (a benchmark worker).")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--processor", required=True, help="folder with preprocessor_config.json")
    parser.add_argument("--video", required=True)
    parser.add_argument("--eeg", required=True)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--json", required=True)
    ns = parser.parse_args(argv)
    result = run_reference(
        ns.checkpoint, ns.processor, ns.video, ns.eeg, windows=ns.windows, warmup=ns.warmup, device=ns.device
    )
    Path(ns.json).write_text(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
