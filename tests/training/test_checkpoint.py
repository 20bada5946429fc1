"""Checkpoints: pickle-free round trips of the model and of the training state (resume)."""

from __future__ import annotations

import json
import pickle
import random
import shutil

import numpy as np
import pytest
import torch

from milmer.runtime.check import MilmerInputError
from milmer.runtime.spec import FaceSpec, GraphSpec, ModelSpec
from milmer.training.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    load_training_state,
    restore_rng_state,
    save_checkpoint,
    save_training_state,
)
from milmer.training.model_config import ModelConfig


@pytest.fixture
def tiny_spec() -> ModelSpec:
    return ModelSpec(graph=GraphSpec(token_dim=64))


@pytest.fixture
def no_pickle(monkeypatch):
    """Make every unpickling path fail loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def test_round_trip_gives_identical_outputs_without_the_backbone_dir(
    tiny_swin_dir, tmp_path, make_model, inputs, tiny_spec, no_pickle
):
    backbone = shutil.copytree(tiny_swin_dir, tmp_path / "swin")
    config = ModelConfig.from_spec(
        tiny_spec, backbone_dir=str(backbone), d_model=32, n_heads=4, ffn_dim=64, n_queries=8, mil_hidden=16
    )
    model = make_model(config).eval()
    with torch.no_grad():
        expected = model(*inputs)
    out = save_checkpoint(tmp_path / "ckpt", model, config, tiny_spec, extra={"epoch": 3, "val_acc": 0.5})
    assert sorted(p.name for p in out.iterdir()) == [
        "backbone_config.json", "config.json", "model.safetensors", "spec.json", "state.json",
    ]  # fmt: skip
    shutil.rmtree(backbone)  # loading must not need the original backbone checkpoint
    rng = torch.get_rng_state()
    loaded, config2, spec2, extra = load_checkpoint(out)
    assert torch.equal(torch.get_rng_state(), rng)
    assert config2 == config and spec2 == tiny_spec and extra == {"epoch": 3, "val_acc": 0.5}
    assert not loaded.training
    with torch.no_grad():
        got = loaded(*inputs)
    for a, b in zip(expected, got):
        assert torch.equal(a, b)


def test_resave_without_extra_removes_stale_state(tmp_path, tiny_config, make_model, tiny_spec):
    config = tiny_config.replace(visual_integration="none", mil="amil")
    model = make_model(config)
    save_checkpoint(tmp_path, model, config, tiny_spec, extra={"epoch": 1})
    save_checkpoint(tmp_path, model, config, tiny_spec)
    assert not (tmp_path / "state.json").exists()
    assert load_checkpoint(tmp_path)[3] is None


def test_save_refuses_disagreeing_config_or_spec(tmp_path, tiny_config, make_model, tiny_spec):
    model = make_model(tiny_config)
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'config': expected \{'dropout': 0\.2\} \(the model's own config, model\.config\), got \{'dropout': 0\.1\}\.$"):
        save_checkpoint(tmp_path, model, tiny_config.replace(dropout=0.1), tiny_spec)
    with pytest.raises(MilmerInputError, match=r"frames_per_window: config 10, spec 8"):
        save_checkpoint(tmp_path, model, tiny_config, tiny_spec.replace(face=FaceSpec(frames_per_window=8)))
    with pytest.raises(MilmerInputError, match=r"tokens have size 64, spec.graph.token_dim is 768"):
        save_checkpoint(tmp_path, model, tiny_config, ModelSpec())
    assert not (tmp_path / "model.safetensors").exists()


def test_load_errors(tmp_path, tiny_config, make_model, tiny_spec):
    with pytest.raises(MilmerInputError, match=r"'checkpoint': directory not found"):
        load_checkpoint(tmp_path / "missing")
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'checkpoint': '.*' needs the files of a Milmer checkpoint \(model\.safetensors, config\.json, spec\.json, backbone_config\.json\), got a folder without model\.safetensors, config\.json, spec\.json, backbone_config\.json\.$"):
        load_checkpoint(tmp_path)
    model = make_model(tiny_config)
    save_checkpoint(tmp_path, model, tiny_config, tiny_spec)
    # A config that does not describe the saved weights.
    data = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**data, "mil_hidden": 8}))
    with pytest.raises(MilmerInputError, match=r"weights do not match its config"):
        load_checkpoint(tmp_path)


def test_extra_state_round_trips_tensors_arrays_tuples_and_int_keys(tmp_path, no_pickle):
    shared = torch.arange(6.0)
    extra = {
        "int_keys": {0: torch.tensor(3.0), 7: {"exp_avg": shared, "view": shared[2:4]}},
        "tuple": (0.9, 0.999),
        "array": np.arange(5, dtype=np.uint32),
        "bf16": torch.ones(2, 2, dtype=torch.bfloat16),
        "marker": {"__tensor__": "not a reference"},
        "odd/key": {"x": torch.zeros(1)},
        "odd": {"key": {"x": torch.ones(1)}},
        "plain": [1, "a", None, True, float("inf")],
    }
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    save_training_state(tmp_path, optimizer, epoch=0, extra=extra)
    got = load_training_state(tmp_path, restore_rng=False).extra
    assert got["tuple"] == (0.9, 0.999)
    assert got["plain"] == [1, "a", None, True, float("inf")]
    assert got["marker"] == {"__tensor__": "not a reference"}
    assert got["array"].dtype == np.uint32 and got["array"].tolist() == [0, 1, 2, 3, 4]
    assert set(got["int_keys"]) == {0, 7}
    assert torch.equal(got["int_keys"][7]["exp_avg"], shared)
    assert torch.equal(got["int_keys"][7]["view"], torch.tensor([2.0, 3.0]))
    assert got["bf16"].dtype == torch.bfloat16
    assert torch.equal(got["odd/key"]["x"], torch.zeros(1)) and torch.equal(got["odd"]["key"]["x"], torch.ones(1))
    with pytest.raises(MilmerInputError, match=r"at '/extra/f': cannot store a object"):
        save_training_state(tmp_path, optimizer, epoch=0, extra={"f": object()})


def test_rng_state_restores_every_generator():
    state = capture_rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng_state(state)
    second = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1]) and first[2] == second[2]


def _train_steps(model, optimizer, scheduler, eeg, tokens, labels, n):
    for _ in range(n):
        logits, _, _ = model.forward_fusion(eeg, tokens)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()


def test_resume_continues_exactly(tmp_path, tiny_config, make_model, tokens, tiny_spec, no_pickle):
    """Save after 2 steps, train 2 more; a resumed run's 2 steps give the same weights
    (dropout draws from the restored RNG, AdamW moments and the LR schedule come back)."""
    eeg = torch.randn(2, 32, 384, generator=torch.Generator().manual_seed(5))
    labels = torch.tensor([1, 3])

    def setup(model):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.95))
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        return optimizer, scheduler

    model = make_model(tiny_config).train()
    optimizer, scheduler = setup(model)
    torch.manual_seed(7)
    _train_steps(model, optimizer, scheduler, eeg, tokens, labels, 2)
    save_checkpoint(tmp_path, model, tiny_config, tiny_spec)
    save_training_state(tmp_path, optimizer, epoch=1, step=2, scheduler=scheduler, extra={"best": (0.5, 1)})
    _train_steps(model, optimizer, scheduler, eeg, tokens, labels, 2)

    torch.manual_seed(123)  # the resumed run must not depend on the RNG before loading
    resumed, _, _, _ = load_checkpoint(tmp_path)
    resumed.train()
    optimizer2, scheduler2 = setup(resumed)
    state = load_training_state(tmp_path, optimizer2, scheduler=scheduler2)
    assert (state.epoch, state.step, state.extra) == (1, 2, {"best": (0.5, 1)})
    assert optimizer2.param_groups[0]["betas"] == (0.8, 0.95)
    assert scheduler2.get_last_lr() == [1e-2 / 4]
    _train_steps(resumed, optimizer2, scheduler2, eeg, tokens, labels, 2)
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_training_state_errors(tmp_path, tiny_config, make_model):
    with pytest.raises(MilmerInputError, match=r"needs the files of a training state \(training_state\.safetensors, training_state\.json\), got a folder without training_state\.safetensors"):
        load_training_state(tmp_path)
    model = make_model(tiny_config)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    save_training_state(tmp_path, optimizer, epoch=0, rng=False)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'scheduler': 'StepLR' needs the scheduler state saved with the training state, got none in '.*'\.$"):
        load_training_state(tmp_path, optimizer, scheduler=scheduler)
    assert load_training_state(tmp_path, optimizer).rng is None
    data = json.loads((tmp_path / "training_state.json").read_text())
    (tmp_path / "training_state.json").write_text(json.dumps({**data, "format": 99}))
    with pytest.raises(MilmerInputError, match=r"expected format 1, got 99"):
        load_training_state(tmp_path)
