"""What a training run keeps between epochs: the :class:`History` of epochs, the ``best/`` and
``last/`` checkpoints (each written to a temporary folder and swapped in, so an interrupted run
always finds a whole one), and resuming from ``last/`` with exactly the numbers of an
uninterrupted run (weights, optimizer, scheduler, AMP scaler, RNG states, history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..runtime.check import check_compare
from ..runtime.files import atomic_dir
from ..runtime.spec import ModelSpec
from .checkpoint import MODEL_FILE, load_training_state, save_checkpoint, save_training_state
from .model_config import ModelConfig
from .train_config import TrainConfig

__all__ = ["LAST", "BEST", "HISTORY", "History", "write_checkpoint", "write_last", "resume"]

#: Folder and file names in a fold's run folder.
LAST, BEST, HISTORY = "last", "best", "history.json"


@dataclass
class History:
    """Per-epoch records and the epoch chosen by validation macro-F1.

    records: dicts with epoch (1-based), lr (after the epoch), train_loss, val_loss,
    val_accuracy, val_macro_f1 (None without a validation split), best (bool), seconds.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_macro_f1: float | None = None
    resumed_from: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_epoch": self.best_epoch,
            "best_val_macro_f1": self.best_val_macro_f1,
            "resumed_from": self.resumed_from,
            "epochs": self.records,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        return cls(list(data["epochs"]), data["best_epoch"], data["best_val_macro_f1"], data.get("resumed_from"))


def write_checkpoint(path: Path, model: nn.Module, config: ModelConfig, spec: ModelSpec, extra: dict[str, Any]) -> None:
    with atomic_dir(path, overwrite=True) as tmp:
        save_checkpoint(tmp, model, config, spec, extra=extra)


def write_last(
    path: Path,
    model: nn.Module,
    config: ModelConfig,
    spec: ModelSpec,
    extra: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    scaler: torch.amp.GradScaler | None,
    history: History,
) -> None:
    state = {"history": history.to_dict(), "scaler": None if scaler is None else scaler.state_dict()}
    with atomic_dir(path, overwrite=True) as tmp:
        save_checkpoint(tmp, model, config, spec, extra=extra)
        save_training_state(
            tmp, optimizer, epoch=extra["epoch"], step=int(scheduler.last_epoch), scheduler=scheduler, extra=state
        )


def resume(
    last: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    scaler: torch.amp.GradScaler | None,
    history: History,
    cfg: TrainConfig,
) -> int:
    """Restore ``last/`` (weights, optimizer, scheduler, scaler, RNG states, history) into the
    live objects; returns the last finished epoch."""
    from safetensors.torch import load_model

    load_model(model, str(last / MODEL_FILE), strict=True, device=str(next(model.parameters()).device))
    state = load_training_state(last, optimizer, scheduler=scheduler)
    check_compare("epochs", cfg.epochs, ">=", f"the epochs already finished by the run in {str(last.parent)!r}", state.epoch)
    extra = state.extra or {}
    if scaler is not None and extra.get("scaler") is not None:
        scaler.load_state_dict(extra["scaler"])
    restored = History.from_dict(extra["history"])
    history.records, history.best_epoch = restored.records, restored.best_epoch
    history.best_val_macro_f1, history.resumed_from = restored.best_val_macro_f1, state.epoch
    return state.epoch
