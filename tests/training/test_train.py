"""The training loop: schedule, determinism (pinned), resume == uninterrupted, accumulation, DDP no-ops."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from milmer.runtime.check import MilmerInputError
from milmer.training import distributed as dist_helpers
from milmer.training.checkpoint import load_checkpoint
from milmer.training.model import build_model
from milmer.training.train_config import TrainConfig
from milmer.training.train import amp_dtype, cosine_lambda, evaluate, fit, make_scheduler, seed_everything

# Two frames per bag, top-1, tiny fusion; modality 'eeg' skips the Swin so a step takes ~ms.
SPEC = {"face": {"frames_per_window": 2}, "graph": {"top_k": 1, "token_dim": 64}}
MODEL = {"d_model": 32, "n_heads": 4, "ffn_dim": 64, "n_queries": 4, "mil_hidden": 8, "modality": "eeg"}


class Blobs(Dataset):
    """n windows; class c adds ``0.3 sin(2 pi (5 + 3c) t)`` to every EEG channel in unit noise.

    (The EEG tokenizer normalises each channel over time, so the class must be in the waveform.)"""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.y = torch.arange(n) % 4
        self.eeg = torch.randn(n, 32, 384, generator=g)
        t = torch.arange(384) / 128.0
        for c in range(4):
            self.eeg[self.y == c] += 0.3 * torch.sin(2 * torch.pi * (5 + 3 * c) * t)
        self.frames = torch.zeros(2, 3, 224, 224)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.eeg[i], self.frames, self.y[i]


def loaders(batch_size: int = 8, n_train: int = 48, n_val: int = 16, seed: int = 0):
    train = DataLoader(Blobs(n_train, 1), batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    val = DataLoader(Blobs(n_val, 2), batch_size=batch_size)
    return train, val


@pytest.fixture
def make_cfg(tiny_swin_dir, tmp_path):
    def make(**kw) -> TrainConfig:
        values = dict(data_root=str(tmp_path / "data"), out_dir=str(tmp_path / "run"), spec=SPEC,
                      model={**MODEL, "backbone_dir": str(tiny_swin_dir)}, epochs=4, lr=3e-3, device="cpu")
        values.update(kw)
        return TrainConfig(**values)

    return make


def new_model(cfg: TrainConfig):
    seed_everything(cfg.seed)
    return build_model(cfg.model_config())


def params(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_cosine_schedule_reaches_min_ratio_at_the_end(make_cfg):
    cfg = make_cfg(epochs=3, lr=1e-3, min_lr_ratio=0.1)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = make_scheduler(opt, cfg, steps_per_epoch=5)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(15):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-4, rel=1e-9)
    assert lrs[8] == pytest.approx(1e-4 + 0.9e-3 * 0.5 * (1 + np.cos(np.pi * 8 / 15)))
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    warm = cosine_lambda(10, 2, 0.1)
    assert [warm(0), warm(1), warm(2), warm(10)] == pytest.approx([0.5, 1.0, 1.0, 0.1])


def test_amp_modes_on_cpu():
    cpu = torch.device("cpu")
    assert amp_dtype("auto", cpu) is None and amp_dtype("off", cpu) is None
    with pytest.raises(MilmerInputError, match=r"'amp': expected one of 'auto', 'off', got 'fp16'; the others autocast on CUDA only and this run uses device 'cpu'"):
        amp_dtype("fp16", cpu)


def test_fit_is_deterministic_and_pinned(make_cfg, tmp_path):
    cfg = make_cfg()
    runs = []
    for name in ("a", "b"):
        train, val = loaders()
        model = new_model(cfg)
        history = fit(model, train, val, cfg, tmp_path / name, progress=False)
        runs.append((history, params(model)))
    (h1, p1), (h2, p2) = runs
    assert [r["train_loss"] for r in h1.records] == [r["train_loss"] for r in h2.records]
    assert torch.equal(p1, p2)
    # What training owes on this separable task, on any CPU (the exact numbers depend on the CPU's
    # float kernels; the two runs above agree bit for bit): the first epoch's loss is about chance
    # for 4 classes (ln 4 = 1.386), and it falls every epoch, to under half of it.
    losses = [r["train_loss"] for r in h1.records]
    assert losses[0] == pytest.approx(math.log(4), rel=0.25)
    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.5 * losses[0], losses
    assert h1.records[-1]["lr"] == pytest.approx(0.1 * cfg.lr)
    assert h1.records[-1]["val_accuracy"] == 1.0


def test_fit_writes_last_best_and_history(make_cfg, tmp_path):
    cfg = make_cfg()
    train, val = loaders()
    history = fit(new_model(cfg), train, val, cfg, tmp_path / "run", progress=False)
    f1 = [r["val_macro_f1"] for r in history.records]
    assert history.best_epoch == int(np.argmax(f1)) + 1 and history.best_val_macro_f1 == max(f1)
    saved = json.loads((tmp_path / "run" / "history.json").read_text())
    assert saved["best_epoch"] == history.best_epoch and len(saved["epochs"]) == 4
    best, config, spec, extra = load_checkpoint(tmp_path / "run" / "best")
    assert extra["epoch"] == history.best_epoch and config == cfg.model_config() and spec == cfg.model_spec()
    ev = evaluate(best, val)
    assert ev.macro_f1(4) == pytest.approx(history.best_val_macro_f1)
    last = load_checkpoint(tmp_path / "run" / "last")[3]
    assert last["epoch"] == 4


class Interrupt(Exception):
    pass


class Interrupting:
    """A loader that raises when epoch ``stop_at`` starts (a killed run), forwarding the rest."""

    def __init__(self, loader: DataLoader, stop_at: int) -> None:
        self.loader, self.stop_at, self.calls = loader, stop_at, 0
        self.generator, self.sampler = loader.generator, loader.sampler

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        self.calls += 1
        if self.calls == self.stop_at:
            raise Interrupt
        return iter(self.loader)


def test_resume_equals_an_uninterrupted_run(make_cfg, tmp_path):
    cfg = make_cfg(model={**MODEL, "backbone_dir": make_cfg().model["backbone_dir"], "dropout": 0.3})
    train, val = loaders()
    full_model = new_model(cfg)
    full = fit(full_model, train, val, cfg, tmp_path / "full", progress=False)

    train, val = loaders()
    with pytest.raises(Interrupt):
        fit(new_model(cfg), Interrupting(train, stop_at=3), val, cfg, tmp_path / "cut", progress=False)
    assert json.loads((tmp_path / "cut" / "history.json").read_text())["epochs"][-1]["epoch"] == 2
    torch.manual_seed(12345)  # a fresh process would start from other RNG states
    resumed_model = new_model(cfg.replace(seed=cfg.seed))
    train, val = loaders()
    resumed = fit(resumed_model, train, val, cfg, tmp_path / "cut", progress=False)

    assert resumed.resumed_from == 2
    for a, b in zip(full.records, resumed.records):
        for key in ("train_loss", "val_loss", "val_macro_f1", "lr"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), key
    assert torch.allclose(params(full_model), params(resumed_model), atol=1e-6)


def test_gradient_accumulation_matches_a_bigger_batch(make_cfg, tmp_path):
    base = make_cfg().model
    cfg = make_cfg(epochs=2, model={**base, "dropout": 0.0, "cls_dropout": 0.0})
    big, small = new_model(cfg), new_model(cfg)
    h_big = fit(big, *loaders(batch_size=8), cfg, tmp_path / "big", progress=False)
    h_small = fit(small, *loaders(batch_size=4), cfg.replace(grad_accum=2), tmp_path / "small", progress=False)
    assert [r["train_loss"] for r in h_big.records] == pytest.approx([r["train_loss"] for r in h_small.records], abs=1e-6)
    # Outputs, not raw parameters: attention's key bias has an exactly-zero gradient (softmax
    # ignores it), and Adam blows the float noise in it up without changing any output.
    val = loaders()[1]
    np.testing.assert_allclose(evaluate(big, val).probs, evaluate(small, val).probs, atol=1e-5)


def test_fit_refuses_bad_setups(make_cfg, tmp_path):
    cfg = make_cfg()
    train, _ = loaders()
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'keep': 'best' needs a validation split \(it picks the epoch by validation macro-F1\), got an empty one; use keep 'last'"):
        fit(new_model(cfg), train, None, cfg, tmp_path / "x", progress=False)
    bad_spec = cfg.model_spec().replace(graph=cfg.model_spec().graph.__class__(top_k=1, token_dim=768))
    with pytest.raises(MilmerInputError, match=r"'spec.graph.token_dim': expected 64 \(the backbone's token size\), got 768"):
        fit(new_model(cfg), train, None, cfg.replace(keep="last"), tmp_path / "y", spec=bad_spec, progress=False)
    train_val = loaders()
    fit(new_model(cfg), *train_val, cfg.replace(epochs=2, min_lr_ratio=0.5), tmp_path / "z", progress=False)
    with pytest.raises(MilmerInputError, match=r"'epochs': expected at least the epochs already finished by the run in .* = 2, got 1"):
        fit(new_model(cfg), *train_val, cfg.replace(epochs=1, min_lr_ratio=0.5), tmp_path / "z", progress=False)


def test_distributed_helpers_are_no_ops_in_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = dist_helpers.init_distributed("cpu")
    assert (ctx.world_size, ctx.rank, ctx.is_main, ctx.is_distributed) == (1, 0, True, False)
    model = torch.nn.Linear(2, 2)
    assert dist_helpers.wrap_model(model, ctx) is model and dist_helpers.unwrap_model(model) is model
    loader = DataLoader(list(range(4)))
    assert dist_helpers.shard_loader(loader, ctx, seed=0) is loader
    assert dist_helpers.mean_across(2.5, ctx) == 2.5
    dist_helpers.barrier(ctx)
    dist_helpers.shutdown(ctx)
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert dist_helpers.init_distributed("cpu").world_size == 1
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(MilmerInputError, match=r"'WORLD_SIZE': expected an integer >= 1, got 'two'; an environment variable"):
        dist_helpers.init_distributed("cpu")


def test_cuda_device_without_a_gpu_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(MilmerInputError, match=r"'device': expected one of 'auto', 'cpu', got 'cuda'; no CUDA GPU is available here"):
        dist_helpers.resolve_device("cuda")


def test_history_file_is_json(tmp_path, make_cfg):
    cfg = make_cfg(epochs=1)
    fit(new_model(cfg), *loaders(), cfg, tmp_path / "r", progress=False)
    assert set(json.loads(Path(tmp_path / "r" / "history.json").read_text())) == {"best_epoch", "best_val_macro_f1", "resumed_from", "epochs"}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_on_cuda_trains_and_checkpoints(make_cfg, tmp_path, amp):
    cfg = make_cfg(epochs=2, device="cuda", amp=amp)
    history = fit(new_model(cfg), *loaders(), cfg, tmp_path / amp, progress=False)
    assert all(np.isfinite(r["train_loss"]) for r in history.records)
    assert history.records[-1]["train_loss"] < history.records[0]["train_loss"]
    model = load_checkpoint(tmp_path / amp / "last")[0]
    assert next(model.parameters()).dtype == torch.float32  # weights stay fp32 under autocast


DDP_SCRIPT = """
import sys, numpy as np, torch
sys.path.insert(0, {tests!r})
from milmer.training.distributed import init_distributed, shard_loader, shutdown
from milmer.training.model import build_model
from milmer.training.train_config import TrainConfig
from milmer.training.train import fit, seed_everything
from test_train import MODEL, SPEC, loaders

cfg = TrainConfig(data_root="d", out_dir={out!r}, spec=SPEC, model={{**MODEL, "backbone_dir": {swin!r}}}, epochs=2, lr=3e-3, device="cpu")
ctx = init_distributed("cpu")
seed_everything(0)
model = build_model(cfg.model_config())
train, val = loaders()
history = fit(model, shard_loader(train, ctx, seed=0), val, cfg, {out!r}, ctx=ctx, progress=False)
np.save({out!r} + f"/params{{ctx.rank}}.npy", torch.cat([p.detach().flatten() for p in model.parameters()]).numpy())
print("RANK", ctx.rank, ctx.world_size, len(shard_loader(train, ctx, seed=0)), history.records[-1]["train_loss"])
shutdown(ctx)
"""


def test_torchrun_two_cpu_processes_train_one_model(tiny_swin_dir, tmp_path):
    """The DDP path for real: torchrun, two Gloo processes, a sharded loader, rank-0 writing."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "ddp.py"
    out = tmp_path / "run"
    out.mkdir()
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out), swin=str(tiny_swin_dir)))
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port), str(script)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = sorted(line.split()[1:4] for line in proc.stdout.splitlines() if line.startswith("RANK"))
    assert ranks == [["0", "2", "3"], ["1", "2", "3"]]  # 48 windows / 2 ranks / batch 8 = 3 batches each
    np.testing.assert_array_equal(np.load(out / "params0.npy"), np.load(out / "params1.npy"))  # replicas agree
    assert json.loads((out / "history.json").read_text())["epochs"][-1]["epoch"] == 2
    assert (out / "last" / "model.safetensors").is_file() and (out / "best" / "model.safetensors").is_file()
