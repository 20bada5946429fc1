"""The training loop: AdamW, per-step cosine schedule, AMP, gradient accumulation, checkpoints, resume.

One loop serves one process and ``torchrun`` (see :mod:`milmer.training.distributed`).

Each epoch writes, in ``run_dir`` (main process only):

- ``last/`` (:mod:`.train_state`): the model checkpoint plus the training state (optimizer, scheduler step, AMP scaler,
  epoch, history, RNG states), written to a temporary folder and swapped in, so an interrupted
  run always finds a whole ``last/`` and resumes from it;
- ``best/``: the checkpoint of the epoch with the best validation macro-F1 (earliest on ties);
- ``history.json``: one record per epoch so far.

Determinism: :func:`seed_everything` seeds Python, numpy and torch; the training loader's shuffle
order is reseeded every epoch from ``(seed, epoch)`` and the global RNG states are saved with
``last/``, so a resumed run continues with exactly the numbers of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from ..runtime.check import check_equal, check_nonempty, check_option, check_requires
from ..runtime.files import write_json_atomic
from ..runtime.spec import ModelSpec
from .augment import augment_eeg
from .model_config import ModelConfig
from .distributed import DistContext, init_distributed, mean_across, no_sync, wrap_model
from .metrics import accuracy, macro_f1
from .model import MilmerModel
from .train_config import TrainConfig
from .train_state import BEST, HISTORY, LAST, History, resume, write_checkpoint, write_last

__all__ = [
    "History",
    "Evaluation",
    "MilmerInputs",
    "autocast",
    "seed_everything",
    "epoch_seed",
    "cosine_lambda",
    "make_scheduler",
    "amp_dtype",
    "evaluate",
    "fit",
]



# ---------------------------------------------------------------------- seeding and schedule
def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global RNGs (CPU and every GPU) and ask torch for
    deterministic algorithms (``warn_only``: an op without one warns instead of failing)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.use_deterministic_algorithms(True, warn_only=True)


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of ``epoch``: independent streams for every (seed, epoch) pair."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]) >> 1


def cosine_lambda(total_steps: int, warmup_steps: int, min_ratio: float) -> Any:
    """LR multiplier after ``step`` optimiser steps: linear warm-up to 1, then cosine to ``min_ratio``.

    ``f(total_steps) == min_ratio``: the rate after the last step is exactly ``min_ratio * lr``.
    """

    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step cosine decay from ``cfg.lr`` to ``cfg.min_lr_ratio * cfg.lr`` over all epochs."""
    total = cfg.epochs * steps_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_lambda(total, cfg.warmup_epochs * steps_per_epoch, cfg.min_lr_ratio)
    )


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device`` (None: full precision).

    'auto' is bf16 on GPUs that support it, fp16 on older ones, off on CPU. An explicit 'bf16'
    or 'fp16' on a CPU is an error rather than being ignored.
    """
    if amp == "off":
        return None
    if device.type != "cuda":
        if amp == "auto":
            return None
        check_option("amp", amp, ("auto", "off"), hint=f"the others autocast on CUDA only and this run uses device {device.type!r}")
    if amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


# ---------------------------------------------------------------------- evaluation
@dataclass
class Evaluation:
    """Predictions on one split: ``y_true``/``y_pred`` (N,) int64, ``probs`` (N, C) float32."""

    loss: float
    y_true: np.ndarray
    y_pred: np.ndarray
    probs: np.ndarray

    @property
    def accuracy(self) -> float:
        return accuracy(self.y_true, self.y_pred)

    def macro_f1(self, n_classes: int) -> float:
        return macro_f1(self.y_true, self.y_pred, n_classes)


class MilmerInputs(nn.Module):
    """Runs a Milmer model on whichever input a batch carries: ``frames`` (B, F, 3, S, S) go
    through :meth:`forward`, precomputed backbone ``tokens`` (B, F, P, H) (a frozen backbone,
    see :mod:`milmer.training.backbone_tokens`) through :meth:`forward_fusion` only.

    The loop wraps this (not the bare model) in DDP, so both paths synchronise gradients.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, eeg: Tensor, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.model.forward_fusion(eeg, x) if x.ndim == 4 else self.model(eeg, x)


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    """Autocast to ``dtype`` on ``device`` (a no-op for None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[Sequence[Tensor]],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> Evaluation:
    """Mean cross-entropy and predictions of ``model`` (put in eval mode) over ``loader``.

    loader yields ``(eeg (B, 32, 384), frames (B, F, 3, S, S) or tokens (B, F, P, H), label (B,))``.
    """
    device = torch.device(device)
    net = model if isinstance(model, MilmerInputs) else MilmerInputs(model)
    was_training = model.training
    model.eval()
    losses, trues, probs = [], [], []
    try:
        for eeg, x, label in loader:
            eeg, x, label = eeg.to(device), x.to(device), label.to(device)
            with autocast(device, dtype):
                logits = net(eeg, x)[0].float()
            losses.append(nn.functional.cross_entropy(logits, label, reduction="sum").item())
            trues.append(label.cpu().numpy())
            probs.append(torch.softmax(logits, dim=-1).cpu().numpy())
    finally:
        model.train(was_training)
    check_nonempty("loader", trues, "batch to evaluate")
    y_true = np.concatenate(trues).astype(np.int64)
    p = np.concatenate(probs).astype(np.float32)
    return Evaluation(float(sum(losses) / y_true.size), y_true, p.argmax(1).astype(np.int64), p)


# ---------------------------------------------------------------------- the loop
def _set_epoch(loader: Any, seed: int, epoch: int) -> None:
    """Fix this epoch's shuffle order from (seed, epoch), whatever happened before."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):  # DistributedSampler
        sampler.set_epoch(epoch)
    generator = getattr(loader, "generator", None)
    if isinstance(generator, torch.Generator):
        generator.manual_seed(epoch_seed(seed, epoch))


def _groups(loader: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive groups of ``size`` batches (the last may be shorter): one optimiser step each."""
    group: list[Any] = []
    for batch in loader:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def _progress(enabled: bool, console: Any = None) -> Any:
    """Two bars that fit 80 columns: ``epoch`` (with the last epoch's loss and validation
    scores) and ``batch``; the fold's name is printed above them (:func:`fit`). Fixed-width
    columns, so rich never has to cut a column short with '…'."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(bar_width=12), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console, disable=not enabled,
    )  # fmt: skip


def _epoch_info(record: Mapping[str, Any]) -> str:
    """``loss 1.234 val acc 0.500 F1 0.400`` (34 characters at most): the epoch bar's text."""
    info = f"loss {record['train_loss']:.3f}"
    if record.get("val_accuracy") is not None:
        info += f" val acc {record['val_accuracy']:.3f} F1 {record['val_macro_f1']:.3f}"
    return info


def fit(
    model: MilmerModel,
    train_loader: DataLoader | Iterable[Any],
    val_loader: DataLoader | Iterable[Any] | None,
    cfg: TrainConfig,
    run_dir: str | os.PathLike[str],
    *,
    spec: ModelSpec | None = None,
    ctx: DistContext | None = None,
    progress: bool = True,
    name: str = "train",
) -> History:
    """Train ``model`` for ``cfg.epochs`` epochs, resuming from ``run_dir/last`` when it exists.

    train_loader / val_loader yield ``(eeg (B, 32, 384), frames (B, F, 3, S, S), label (B,))``,
    or precomputed backbone ``tokens`` (B, F, P, H) in place of frames (frozen backbone only);
    ``val_loader`` None (or empty) trains without model selection (``cfg.keep`` must be 'last').
    spec: the input contract saved with every checkpoint (default ``cfg.model_spec()``).
    ctx: the process's place in a torchrun job (default: from the environment).
    Returns the history; the model is left with the last epoch's weights. ``model.config`` and
    ``spec`` must agree (they are saved together in every checkpoint).
    """
    run_dir = Path(run_dir)
    spec = spec or cfg.model_spec()
    ctx = ctx or init_distributed(cfg.device)
    config: ModelConfig = model.config
    config.check_spec(spec)
    token_dim = model.token_dim
    check_equal("spec.graph.token_dim", spec.graph.token_dim, token_dim, why="the backbone's token size",
                hint=f"set spec.graph.token_dim={token_dim}")
    has_val = val_loader is not None and len(val_loader) > 0  # type: ignore[arg-type]
    if cfg.keep == "best":
        check_requires(
            "keep", "best", "a validation split (it picks the epoch by validation macro-F1)", has_val, "an empty one",
            hint="use keep 'last' or a val_fraction that leaves validation data",
        )
    n_batches = len(train_loader)  # type: ignore[arg-type]
    check_nonempty("train_loader", train_loader, "batch in the training split")  # type: ignore[arg-type]
    steps_per_epoch = math.ceil(n_batches / cfg.grad_accum)

    seed_everything(cfg.seed)
    raw = model
    net = wrap_model(MilmerInputs(raw), ctx)
    params = [p for p in raw.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = make_scheduler(optimizer, cfg, steps_per_epoch)
    dtype = amp_dtype(cfg.amp, ctx.device)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None

    history = History()
    start = 0
    last = run_dir / LAST
    if last.is_dir():
        start = resume(last, raw, optimizer, scheduler, scaler, history, cfg)

    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    bar = _progress(progress and ctx.is_main)
    if progress and ctx.is_main:
        bar.console.print(f"[bold]{name}[/]: {cfg.epochs} epochs of {n_batches} batches")
    with bar:
        epochs_task = bar.add_task("epoch", total=cfg.epochs, completed=start, info="")
        batch_task = bar.add_task("batch", total=n_batches, info="")
        for epoch in range(start + 1, cfg.epochs + 1):
            t0 = time.perf_counter()
            bar.reset(batch_task, total=n_batches)
            _set_epoch(train_loader, cfg.seed, epoch)
            train_loss = _train_epoch(net, train_loader, optimizer, scheduler, scaler, dtype, cfg, ctx, bar, batch_task)
            record: dict[str, Any] = {
                "epoch": epoch,
                "lr": float(optimizer.param_groups[0]["lr"]),
                "train_loss": mean_across(train_loss, ctx),
                "val_loss": None,
                "val_accuracy": None,
                "val_macro_f1": None,
                "best": False,
            }
            if has_val:
                ev = evaluate(raw, val_loader, device=ctx.device, dtype=dtype)  # type: ignore[arg-type]
                f1 = ev.macro_f1(config.n_classes)
                record.update(val_loss=ev.loss, val_accuracy=ev.accuracy, val_macro_f1=f1)
                if history.best_val_macro_f1 is None or f1 > history.best_val_macro_f1:
                    history.best_epoch, history.best_val_macro_f1 = epoch, f1
                    record["best"] = True
            record["seconds"] = time.perf_counter() - t0
            history.records.append(record)
            if ctx.is_main:
                extra = {"epoch": epoch, "history_record": record}
                if record["best"]:
                    write_checkpoint(run_dir / BEST, raw, config, spec, extra)
                write_last(last, raw, config, spec, extra, optimizer, scheduler, scaler, history)
                write_json_atomic(run_dir / HISTORY, history.to_dict())
            bar.update(epochs_task, advance=1, info=_epoch_info(record))
    return history


def _train_epoch(
    model: nn.Module,
    loader: Iterable[Any],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    scaler: torch.amp.GradScaler | None,
    dtype: torch.dtype | None,
    cfg: TrainConfig,
    ctx: DistContext,
    bar: Any,
    task: Any,
) -> float:
    """One pass over ``loader``; returns the mean training cross-entropy per sample."""
    model.train()
    device = ctx.device
    total_loss, total_n = 0.0, 0
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for group in _groups(loader, cfg.grad_accum):
        # Sum-of-losses / samples-in-step: k micro-batches of b equal one batch of k*b.
        n_group = sum(int(b[2].shape[0]) for b in group)
        for i, (eeg, x, label) in enumerate(group):
            eeg, x, label = augment_eeg(eeg.to(device), cfg.eeg_augment), x.to(device), label.to(device)
            with no_sync(model, skip=i < len(group) - 1), autocast(device, dtype):
                logits = model(eeg, x)[0].float()
                loss_sum = nn.functional.cross_entropy(logits, label, reduction="sum")
                loss = loss_sum / n_group
                (scaler.scale(loss) if scaler is not None else loss).backward()
            total_loss += float(loss_sum.detach())
            total_n += int(label.shape[0])
            bar.update(task, advance=1)
        if scaler is not None:
            scaler.unscale_(optimizer)
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
    return total_loss / max(total_n, 1)
