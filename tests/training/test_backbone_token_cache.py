"""Stored frozen-backbone tokens: the key follows every input that changes them; reuse is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from milmer.training.backbone_token_cache import TOKENS_FOLDER, stored_tokens, token_key


@pytest.fixture
def backbone() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))


@pytest.fixture
def index(tmp_path):
    path = tmp_path / "index.json"
    path.write_text('{"windows": [1, 2, 3]}')
    return path


FACE = {"frame_size": 224, "frames_per_window": 10, "mean": [0.5, 0.5, 0.5]}


def test_key_changes_with_windows_face_rules_weights_and_dtype(backbone, index):
    cpu = torch.device("cpu")
    key = token_key(index, FACE, backbone, cpu, None)
    assert len(key) == 24 and key == token_key(index, dict(FACE), backbone, cpu, None)
    others = set()
    with torch.no_grad():
        backbone[0].weight[0, 0] += 1e-6  # one weight, one ulp-scale change
    others.add(token_key(index, FACE, backbone, cpu, None))
    with torch.no_grad():
        backbone[0].weight[0, 0] -= 1e-6
    assert token_key(index, FACE, backbone, cpu, None) == key  # back to the same weights
    others.add(token_key(index, {**FACE, "frame_size": 192}, backbone, cpu, None))
    others.add(token_key(index, FACE, backbone, cpu, torch.bfloat16))
    index.write_text('{"windows": [1, 2, 4]}')
    others.add(token_key(index, FACE, backbone, cpu, None))
    assert len(others) == 4 and key not in others


def test_tokens_are_computed_once_then_reused_exactly(tmp_path):
    calls = []

    def compute() -> torch.Tensor:
        calls.append(1)
        return torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2) / 7

    first, reused_first = stored_tokens(tmp_path, "k1", (2, 3, 2, 2), compute)
    second, reused_second = stored_tokens(tmp_path, "k1", (2, 3, 2, 2), compute)
    assert (reused_first, reused_second, len(calls)) == (False, True, 1)
    assert torch.equal(first, second) and second.dtype == torch.float32
    # Only the final file is left (written under a temporary name, then renamed).
    assert sorted(p.name for p in (tmp_path / TOKENS_FOLDER).iterdir()) == ["k1.npy"]


def test_a_stored_file_of_the_wrong_shape_or_unreadable_is_recomputed(tmp_path):
    folder = tmp_path / TOKENS_FOLDER
    folder.mkdir()
    np.save(folder / "k.npy", np.zeros((1, 3, 2, 2), np.float32))
    tokens, reused = stored_tokens(tmp_path, "k", (2, 3, 2, 2), lambda: torch.ones(2, 3, 2, 2))
    assert not reused and np.load(folder / "k.npy").shape == (2, 3, 2, 2)
    (folder / "k.npy").write_bytes(b"not a numpy file")
    tokens, reused = stored_tokens(tmp_path, "k", (2, 3, 2, 2), lambda: torch.full((2, 3, 2, 2), 2.0))
    assert not reused and float(tokens[0, 0, 0, 0]) == 2.0
