"""Fixtures for the Milmer network tests: a tiny Swin checkpoint and a tiny model config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from milmer.training.backbone import save_tiny_swin
from milmer.training.model_config import ModelConfig
from milmer.training.model import MilmerModel, build_model

# Tiny fusion sizes: d_model 32 differs from the tiny Swin's hidden size 64, so the token
# projection is exercised.
TINY = dict(d_model=32, n_heads=4, ffn_dim=64, n_layers=2, n_queries=8, mil_hidden=16)


@pytest.fixture(scope="session")
def tiny_swin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Swin (hidden 64, 49 tokens per 224x224 frame) in save_pretrained format."""
    return save_tiny_swin(tmp_path_factory.mktemp("backbone") / "tiny-swin")


@pytest.fixture
def tiny_config(tiny_swin_dir: Path) -> ModelConfig:
    return ModelConfig(backbone_dir=str(tiny_swin_dir), **TINY)


@pytest.fixture
def make_model() -> Callable[..., MilmerModel]:
    """Build a model from a config with a fixed seed (the global RNG is restored after)."""

    def make(config: ModelConfig, seed: int = 0) -> MilmerModel:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_model(config)

    return make


@pytest.fixture
def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """eeg (2, 32, 384) and frames (2, 10, 3, 224, 224) from a fixed generator."""
    g = torch.Generator().manual_seed(1234)
    return torch.randn(2, 32, 384, generator=g), torch.randn(2, 10, 3, 224, 224, generator=g)


@pytest.fixture
def tokens() -> torch.Tensor:
    """Backbone-like tokens (2, 10, 49, 64) from a fixed generator."""
    return torch.randn(2, 10, 49, 64, generator=torch.Generator().manual_seed(99))
