"""The model a benchmark runs when the user gives none: the paper's sizes with random weights.

Latency depends on the architecture, not on the weights, and the user's pretrained checkpoint is
not available offline, so :func:`build_bench_model` builds a FULL-SIZE Milmer (Swin-T backbone:
embed 96, depths 2-2-6-2, heads 3-6-12-24, window 7 at 224 x 224; d_model 768, 2 fusion layers,
64 queries, top-3 of 10 frames), saves it as a checkpoint and exports it with
``milmer export`` (fp32, fp16 and int8 graphs). ``tiny=True`` builds a few-MB model of the same
geometry for quick runs and tests. Predictions of a random model mean nothing: only timings,
memory and the agreement between precisions do.

This module imports torch (through ``milmer.training`` and ``milmer.export``); the benchmark
imports it only when it has to build a model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["SWIN_T", "SWIN_TINY_TEST", "MARKER_FILE", "build_bench_model", "bench_model_configs", "not_paper_size"]

#: Swin-T (Liu et al. 2021) as a Hugging Face SwinConfig: the paper's face backbone.
SWIN_T: dict[str, Any] = {
    "image_size": 224,
    "patch_size": 4,
    "window_size": 7,
    "embed_dim": 96,
    "depths": [2, 2, 6, 2],
    "num_heads": [3, 6, 12, 24],
}
#: A Swin of the same geometry (49 tokens per frame) and 64-dim tokens, for quick runs.
SWIN_TINY_TEST: dict[str, Any] = {**SWIN_T, "embed_dim": 8, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1]}
#: ModelConfig overrides of the tiny benchmark model (the full one uses the paper's defaults).
_TINY_FUSION: dict[str, Any] = {"d_model": 64, "n_heads": 4, "ffn_dim": 128, "n_queries": 16, "mil_hidden": 16}
#: The build record written into the model folder (``{'tiny': ..., 'seed': ...}``), so a later run
#: with the same settings reuses it. That the weights are random is the spec's ``provenance``
#: (``'benchmark'``), which every output of the runtime reads.
MARKER_FILE = "bench-model.json"


def read_marker(model_dir: Path) -> dict[str, Any] | None:
    """The benchmark-model marker of ``model_dir`` (``{'tiny': ..., 'seed': ...}``), or None when
    the folder is not a model this module built (no :data:`MARKER_FILE`, or not a JSON object)."""
    path = Path(model_dir) / MARKER_FILE
    try:
        marker = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def not_paper_size(spec: Any) -> list[str]:
    """Why the model of ``spec`` (a :class:`~milmer.runtime.spec.ModelSpec`) is not the paper's
    size, or ``[]`` when it is: each graph or face size that differs from the paper-size benchmark
    model's (Swin-T at 224 x 224: 49 tokens of ``embed_dim * 2 ** (stages - 1)`` = 768 per frame,
    top-3 of 10 frames; Liu et al. 2021 Sec. 3.1, Wang et al. 2025), as ``'token_dim 64 (paper:
    768)'``, and ``'demo model'`` for provenance ``'demo'`` (the paper's architecture at toy size).
    The spec does not carry the fusion's width, so only these sizes are compared."""
    from ..runtime.spec import ModelSpec

    paper = ModelSpec()
    token_dim = SWIN_T["embed_dim"] * 2 ** (len(SWIN_T["depths"]) - 1)
    sizes = {
        "token_dim": (spec.graph.token_dim, token_dim),
        "tokens_per_frame": (spec.graph.tokens_per_frame, paper.graph.tokens_per_frame),
        "top_k": (spec.graph.top_k, paper.graph.top_k),
        "frames_per_window": (spec.face.frames_per_window, paper.face.frames_per_window),
        "frame_size": (spec.face.frame_size, SWIN_T["image_size"]),
    }
    reasons = [f"{name} {got} (paper: {want})" for name, (got, want) in sizes.items() if got != want]
    return (["demo model"] if spec.provenance == "demo" else []) + reasons


def bench_model_configs(tiny: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Swin config dict, ModelConfig overrides) of the benchmark model."""
    return (SWIN_TINY_TEST, _TINY_FUSION) if tiny else (SWIN_T, {})


def build_bench_model(out: Path, *, tiny: bool, seed: int = 0, progress: bool = True) -> tuple[Path, Path]:
    """Build (or reuse) the benchmark model under ``out``: ``out/checkpoint`` and ``out/model``.

    Returns (model directory, checkpoint directory). A folder built earlier with the same
    ``tiny`` and ``seed`` (recorded in ``out/model/bench-model.json``) is reused.
    """
    model_dir, ckpt_dir = out / "model", out / "checkpoint"
    marker = {"tiny": tiny, "seed": seed}
    marker_path = model_dir / MARKER_FILE
    if marker_path.is_file() and json.loads(marker_path.read_text()) == marker and ckpt_dir.is_dir():
        return model_dir, ckpt_dir

    import dataclasses

    import torch

    from ..export.command import export_command
    from ..runtime.spec import ModelSpec
    from ..training.backbone import swin_from_config, swin_token_dim
    from ..training.checkpoint import save_checkpoint
    from ..training.model_config import ModelConfig
    from ..training.model import MilmerModel

    swin, fusion = bench_model_configs(tiny)
    token_dim = swin_token_dim(swin)
    spec = ModelSpec(provenance="benchmark")
    spec = spec.replace(graph=dataclasses.replace(spec.graph, token_dim=token_dim))
    config = ModelConfig.from_spec(spec, **fusion)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MilmerModel(config, swin_from_config({"model_type": "swin", **swin})).eval()
    save_checkpoint(ckpt_dir, model, config, spec, extra={"benchmark_model": marker, "weights": "random"})
    del model
    # overwrite: a folder without the marker is a partial earlier build of ours.
    export_command(ckpt_dir, model_dir, fp16=True, int8=True, overwrite=True, progress=progress)
    marker_path.write_text(json.dumps(marker) + "\n")
    return model_dir, ckpt_dir
