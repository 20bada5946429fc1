"""Multi-GPU training through ``torchrun``: every helper is a no-op in a single process.

``torchrun --nproc_per_node N -m milmer.app.cli train ...`` sets ``WORLD_SIZE``/``RANK``/
``LOCAL_RANK``; :func:`init_distributed` then joins the process group (NCCL on CUDA, Gloo on
CPU) and pins one GPU per process. The training loop is the same code either way: it wraps the
model with :func:`wrap_model`, shards the training set with :func:`shard_loader`, averages logged
numbers with :func:`mean_across` and writes files only where :attr:`DistContext.is_main`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..runtime.check import check_int, check_option

__all__ = ["DistContext", "world_size_from_env", "resolve_device", "init_distributed", "wrap_model", "unwrap_model",
           "shard_loader", "mean_across", "barrier", "no_sync", "shutdown"]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``world_size`` 1 means plain single-process training."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints, metrics, plots and reports."""
        return self.rank == 0


def world_size_from_env() -> int:
    """``WORLD_SIZE`` as set by torchrun (1 when unset)."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        size: Any = int(value)
    except ValueError:
        size = value
    return check_int("WORLD_SIZE", size, low=1, hint="an environment variable, as set by torchrun")


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if device == "cuda" and not torch.cuda.is_available():
        check_option("device", device, ("auto", "cpu"), hint="no CUDA GPU is available here")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def init_distributed(device: str = "auto") -> DistContext:
    """Join the torchrun process group when ``WORLD_SIZE > 1``; else a single-process context."""
    world = world_size_from_env()
    base = resolve_device(device)
    if world == 1:
        return DistContext(device=base)
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if base.type == "cuda":
        torch.cuda.set_device(local_rank)
        base = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if base.type == "cuda" else "gloo")
    return DistContext(rank=rank, local_rank=local_rank, world_size=world, device=base)


def wrap_model(model: nn.Module, ctx: DistContext) -> nn.Module:
    """The model on ``ctx.device``, in ``DistributedDataParallel`` when distributed."""
    model = model.to(ctx.device)
    if not ctx.is_distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # A frozen backbone or an unused modality leaves parameters without gradients.
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain model inside a DDP wrapper (the one to save and to evaluate)."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


def shard_loader(loader: DataLoader, ctx: DistContext, *, seed: int) -> DataLoader:
    """``loader`` itself in one process; else a copy whose ``DistributedSampler`` gives each
    rank a disjoint shuffled share (call ``loader.sampler.set_epoch(e)`` each epoch)."""
    if not ctx.is_distributed:
        return loader
    from torch.utils.data.distributed import DistributedSampler

    sampler = DistributedSampler(loader.dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed)
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        worker_init_fn=loader.worker_init_fn,
        generator=loader.generator,
        persistent_workers=loader.persistent_workers if loader.num_workers else False,
    )


def mean_across(value: float, ctx: DistContext) -> float:
    """Mean of ``value`` over processes (``value`` itself in one process)."""
    if not ctx.is_distributed:
        return value
    import torch.distributed as dist

    t = torch.tensor([float(value)], device=ctx.device, dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / ctx.world_size


def barrier(ctx: DistContext) -> None:
    if ctx.is_distributed:
        import torch.distributed as dist

        dist.barrier()


@contextlib.contextmanager
def no_sync(model: nn.Module, skip: bool) -> Iterator[Any]:
    """Skip DDP's gradient all-reduce on accumulation micro-steps (no-op without DDP)."""
    if skip and hasattr(model, "no_sync"):
        with model.no_sync():
            yield
    else:
        yield


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (no-op in one process)."""
    if ctx.is_distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
