"""Fixtures for the export tests: a tiny checkpoint, exported once per test run (fp32, fp16, int8).

The export is the slow step (~15 s of the dynamo exporter), so under pytest-xdist the workers
share one: the first builds it under a file lock in the run's common temp folder, as the
pytest-xdist docs recommend for expensive session data.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from filelock import FileLock  # a torch dependency

from milmer.export.command import export_command, load_for_export
from milmer.runtime.spec import GraphSpec, ModelSpec
from milmer.training.backbone import save_tiny_swin
from milmer.training.checkpoint import save_checkpoint
from milmer.training.model_config import ModelConfig
from milmer.training.model import MilmerModel, build_model

# Tiny fusion sizes; d_model 32 differs from the tiny Swin's hidden size 64, so the token
# projection is in the graph.
TINY = dict(d_model=32, n_heads=4, ffn_dim=64, n_layers=2, n_queries=8, mil_hidden=16)


def _make_checkpoint(root: Path) -> Path:
    """A tiny Milmer (Swin hidden 64, 49 tokens per 224x224 frame); the Swin's first stage has
    two blocks, so the shifted-window attention mask is exported too."""
    swin = save_tiny_swin(root / "swin", depths=(2, 1, 1, 1), num_heads=(1, 1, 1, 1))
    spec = ModelSpec(graph=GraphSpec(token_dim=64))
    config = ModelConfig.from_spec(spec, backbone_dir=str(swin), **TINY)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(config)
    return save_checkpoint(root / "ckpt", model, config, spec)


def _build(root: Path) -> tuple[Path, Path]:
    ckpt = _make_checkpoint(root)
    return ckpt, export_command(ckpt, root / "model", fp16=True, int8=True, progress=False)


@pytest.fixture(scope="session")
def _export_artifacts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, model directory), built once per run (once for all xdist workers)."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return _build(tmp_path_factory.mktemp("export"))
    shared = tmp_path_factory.getbasetemp().parent / "milmer-export"  # common to this run's workers
    with FileLock(str(shared) + ".lock"):
        if (shared / "model" / "export_report.json").is_file():
            return shared / "ckpt", shared / "model"
        if shared.exists():  # a worker died half-way: start over
            import shutil

            shutil.rmtree(shared)
        shared.mkdir()
        return _build(shared)


@pytest.fixture(scope="session")
def tiny_ckpt(_export_artifacts: tuple[Path, Path]) -> Path:
    """The tiny model's checkpoint directory."""
    return _export_artifacts[0]


@pytest.fixture(scope="session")
def exported(_export_artifacts: tuple[Path, Path]) -> Path:
    """The tiny checkpoint exported with fp16 and int8 variants. Read-only: tests copy it to change it."""
    return _export_artifacts[1]


@pytest.fixture(scope="session")
def tiny_model(tiny_ckpt: Path) -> tuple[MilmerModel, ModelSpec]:
    """The checkpoint's model (eval mode) and spec, loaded the way export loads them."""
    return load_for_export(tiny_ckpt)
