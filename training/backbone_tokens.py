"""Frozen backbone, computed once: Swin tokens of every window, then train only the fusion.

With ``freeze_backbone`` the Swin is a fixed function (eval mode, no gradient), so running it
on the same frames every epoch only burns time: ~99 % of a step on a CPU. :func:`backbone_tokens`
runs it once over the windows and :class:`TokenDataset` serves ``(eeg, tokens, label)`` instead of
``(eeg, frames, label)``; the training loop sends 4-D ``tokens`` (B, F, P, H) to
``forward_fusion`` and 5-D ``frames`` (B, F, 3, S, S) to ``forward``, so results are the same
either way (up to float rounding).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..runtime.check import check_equal, check_same_length
from .model import MilmerModel
from .train import autocast

__all__ = ["token_bytes", "backbone_tokens", "TokenDataset"]


def token_bytes(n_windows: int, model: MilmerModel) -> int:
    """Memory (bytes) the float32 tokens of ``n_windows`` windows take."""
    c = model.config
    return n_windows * c.frames_per_window * c.tokens_per_frame * model.token_dim * 4


@torch.no_grad()
def backbone_tokens(
    model: MilmerModel,
    frames: Dataset,
    *,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    progress: bool = False,
) -> Tensor:
    """Backbone tokens of every item of ``frames`` (a dataset of ``(eeg, frames, label)``).

    Returns (N, F, P, H) float32 on the CPU. ``model``'s backbone must be frozen: a trained
    backbone changes every step, and its tokens cannot be stored.
    """
    check_equal("freeze_backbone", model.config.freeze_backbone, True, why="backbone tokens can only be precomputed for a frozen backbone")
    from rich.progress import Progress

    device = torch.device(device)
    backbone = model.backbone
    was_training = backbone.training
    backbone.eval()
    loader = DataLoader(frames, batch_size=batch_size, shuffle=False)
    parts = []
    try:
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task("backbone tokens (frozen, computed once)", total=len(loader))
            for _, x, _ in loader:
                x = x.to(device)
                with autocast(device, dtype):
                    t = model.forward_backbone(x.flatten(0, 1))  # (B*F, P, H)
                parts.append(t.float().reshape(x.shape[0], x.shape[1], *t.shape[1:]).cpu())
                bar.update(task, advance=1)
    finally:
        backbone.train(was_training)
    return torch.cat(parts)


class TokenDataset(Dataset):
    """``(eeg (C, T) float32, tokens (F, P, H) float32, label int64)`` of windows ``indices``.

    eeg:    (N, C, T) array-like over every window (e.g. ``CachedWindows.eeg``)
    tokens: (N, F, P, H) backbone tokens of every window (:func:`backbone_tokens`)
    labels: (N,) class indices of every window
    """

    def __init__(self, eeg: Any, tokens: Tensor, labels: ArrayLike, indices: ArrayLike) -> None:
        self.eeg, self.tokens = eeg, tokens
        self.labels = np.asarray(labels, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        check_same_length(("eeg", "tokens", "labels"), (eeg, tokens, self.labels), hint="one row per window")

    def __len__(self) -> int:
        return self.indices.size

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        w = int(self.indices[i])
        eeg = torch.from_numpy(np.array(self.eeg[w], dtype=np.float32))
        return eeg, self.tokens[w], torch.tensor(self.labels[w], dtype=torch.int64)
