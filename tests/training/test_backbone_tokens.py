"""Precomputed frozen-backbone tokens train exactly like running the backbone every step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from milmer.runtime.check import MilmerInputError
from milmer.training.model import build_model
from milmer.training.train_config import TrainConfig
from milmer.training.backbone_tokens import TokenDataset, backbone_tokens, token_bytes
from milmer.training.train import evaluate, fit, seed_everything

SPEC = {"face": {"frames_per_window": 2}, "graph": {"top_k": 1, "token_dim": 64}}
MODEL = {"d_model": 32, "n_heads": 4, "ffn_dim": 64, "n_queries": 4, "mil_hidden": 8, "modality": "face",
         "freeze_backbone": True, "dropout": 0.1}  # fmt: skip


class Faces(Dataset):
    """n windows of 2 random 224x224 frames; the class brightens one quadrant of each frame."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.y = torch.arange(n) % 4
        self.frames = torch.randn(n, 2, 3, 224, 224, generator=g) * 0.5
        for i, c in enumerate(self.y.tolist()):
            r, q = divmod(c, 2)
            self.frames[i, :, :, 112 * r : 112 * (r + 1), 112 * q : 112 * (q + 1)] += 1.0
        self.eeg = torch.randn(n, 32, 384, generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.eeg[i], self.frames[i], self.y[i]


@pytest.fixture
def cfg(tiny_swin_dir, tmp_path) -> TrainConfig:
    return TrainConfig(data_root="d", out_dir=str(tmp_path), spec=SPEC, model={**MODEL, "backbone_dir": str(tiny_swin_dir)},
                       epochs=2, batch_size=4, lr=3e-3, device="cpu")  # fmt: skip


def test_token_training_equals_frame_training(cfg, tmp_path):
    train, val = Faces(12, 1), Faces(8, 2)
    seed_everything(0)
    frames_model = build_model(cfg.model_config())
    seed_everything(0)
    tokens_model = build_model(cfg.model_config())

    tokens = backbone_tokens(tokens_model, train, batch_size=5)
    assert tokens.shape == (12, 2, 49, 64) and token_bytes(12, tokens_model) == tokens.numel() * 4
    val_tokens = backbone_tokens(tokens_model, val)

    def loader(data, shuffle):
        return DataLoader(data, batch_size=4, shuffle=shuffle, generator=torch.Generator().manual_seed(0))

    h_frames = fit(frames_model, loader(train, True), loader(val, False), cfg, tmp_path / "frames", progress=False)
    token_train = TokenDataset(train.eeg, tokens, train.y.numpy(), np.arange(12))
    token_val = TokenDataset(val.eeg, val_tokens, val.y.numpy(), np.arange(8))
    h_tokens = fit(tokens_model, loader(token_train, True), loader(token_val, False), cfg, tmp_path / "tokens", progress=False)

    for a, b in zip(h_frames.records, h_tokens.records):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-5)
    # The frame path of the token-trained model gives the same predictions.
    np.testing.assert_allclose(evaluate(tokens_model, loader(val, False)).probs,
                               evaluate(frames_model, loader(val, False)).probs, atol=1e-5)  # fmt: skip


def test_tokens_need_a_frozen_backbone(cfg):
    seed_everything(0)
    model = build_model(cfg.replace(model={**cfg.model, "freeze_backbone": False}).model_config())
    with pytest.raises(MilmerInputError, match=r"'freeze_backbone': expected True \(backbone tokens can only be precomputed for a frozen backbone\), got False"):
        backbone_tokens(model, Faces(2, 0))
    with pytest.raises(MilmerInputError, match=r"'eeg'/'tokens'/'labels': expected the same length, got 3, 2 and 2; one row per window"):
        TokenDataset(torch.zeros(3, 32, 384), torch.zeros(2, 2, 49, 64), np.zeros(2), np.arange(2))
