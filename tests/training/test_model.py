"""The Milmer network: stage shapes, MIL behaviour and gradients, ablation variants, pinned numbers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from milmer.runtime.check import MilmerInputError
from milmer.training.backbone import swin_from_config
from milmer.training.model_config import ModelConfig
from milmer.training.model import CrossAttentionIntegration, MILPooling, MilmerModel


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_stage_shapes(tiny_config, make_model, inputs):
    model = make_model(tiny_config).eval()
    eeg, frames = inputs
    with torch.no_grad():
        tokens = model.forward_backbone(frames.flatten(0, 1))
        assert tokens.shape == (20, 49, 64)
        eeg_tokens = model.eeg_tokenizer(eeg)
        assert eeg_tokens.shape == (2, 32, 32)
        projected = model.token_proj(tokens.reshape(2, 10, 49, 64))
        assert projected.shape == (2, 10, 49, 32)
        bag, bag_log_w, weights, selected = model.mil(projected)
        assert bag.shape == (2, 3 * 49, 32) and bag_log_w.shape == (2, 3 * 49)
        assert weights.shape == (2, 10)
        torch.testing.assert_close(weights.sum(1), torch.ones(2))
        assert selected.shape == (2, 3) and selected.dtype == torch.int64
        assert torch.all(selected[:, 1:] > selected[:, :-1])
        assert isinstance(model.visual, CrossAttentionIntegration)
        assert model.visual(bag, bag_log_w).shape == (2, 8, 32)
        logits, mil_weights, mil_selected = model(eeg, frames)
    assert logits.shape == (2, 4)
    assert torch.equal(mil_weights, weights) and torch.equal(mil_selected, selected)


def test_pinned_outputs_for_fixed_seed(tiny_config, make_model, inputs):
    model = make_model(tiny_config, seed=0).eval()
    with torch.no_grad():
        logits, weights, selected = model(*inputs)
    expected_logits = torch.tensor([[-0.1117186, -0.3233768, -0.5855076, 0.8243061], [-0.4350570, -0.0511678, -0.5248604, 0.6821117]])
    torch.testing.assert_close(logits, expected_logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights[:, :3], torch.tensor([[0.0999196, 0.0970966, 0.1013144], [0.1037991, 0.1030704, 0.1038984]]), atol=1e-5, rtol=0)
    assert selected.tolist() == [[2, 4, 8], [0, 1, 2]]
    # Same seed, same numbers; another seed, other numbers.
    with torch.no_grad():
        assert torch.equal(make_model(tiny_config, seed=0).eval()(*inputs)[0], logits)
        assert not torch.allclose(make_model(tiny_config, seed=1).eval()(*inputs)[0], logits)


def test_forward_equals_backbone_then_fusion(tiny_config, make_model, inputs):
    model = make_model(tiny_config).eval()
    eeg, frames = inputs
    with torch.no_grad():
        full = model(eeg, frames)
        tokens = model.forward_backbone(frames.flatten(0, 1)).reshape(2, 10, 49, 64)
        split = model.forward_fusion(eeg, tokens)
    for a, b in zip(full, split):
        assert torch.equal(a, b)


def test_topk_bag_matches_loop_reference(tokens):
    torch.manual_seed(0)
    mil = MILPooling("topk", 64, 16, 3)
    bag, bag_log_w, weights, selected = mil(tokens)
    expected_selected = torch.sort(torch.topk(weights, 3, dim=1).indices, dim=1).values
    assert torch.equal(selected, expected_selected)
    for b in range(2):
        w = weights[b, selected[b]]
        scale = 3 * w / w.sum()
        for j in range(3):
            torch.testing.assert_close(bag[b, j * 49 : (j + 1) * 49], tokens[b, selected[b, j]])
            torch.testing.assert_close(bag_log_w[b, j * 49 : (j + 1) * 49].exp(), scale[j].expand(49))
    pooled = tokens.mean(2)
    V, w_ = mil.V, mil.w
    torch.testing.assert_close(weights, torch.softmax(w_(torch.tanh(V(pooled))).squeeze(-1), dim=1))


def test_amil_mean_and_first_frame_pooling(tokens):
    torch.manual_seed(0)
    amil = MILPooling("amil", 64, 16, 3)
    bag, log_w, weights, selected = amil(tokens)
    assert log_w is None
    torch.testing.assert_close(bag, torch.einsum("bf,bfpd->bpd", weights, tokens))
    assert torch.equal(selected, torch.sort(torch.topk(weights, 3, dim=1).indices, dim=1).values)

    bag, _, weights, selected = MILPooling("mean", 64, 16, 3)(tokens)
    torch.testing.assert_close(bag, tokens.mean(1))
    assert torch.equal(weights, torch.full((2, 10), 0.1))
    assert selected.tolist() == [[0, 1, 2], [0, 1, 2]]

    bag, _, weights, selected = MILPooling("first-frame", 64, 16, 2)(tokens)
    assert torch.equal(bag, tokens[:, 0])
    assert weights.tolist() == [[1.0] + [0.0] * 9] * 2
    assert selected.tolist() == [[0, 1], [0, 1]]
    assert MILPooling("mean", 64, 16, 3).scorer is None


def test_gradient_reaches_the_mil_scorer(tiny_config, make_model, inputs):
    model = make_model(tiny_config).train()
    logits, _, _ = model(*inputs)
    logits.square().sum().backward()
    assert model.mil.V.weight.grad is not None and model.mil.V.weight.grad.abs().sum() > 0
    assert model.mil.w.weight.grad is not None and model.mil.w.weight.grad.abs().sum() > 0


def test_full_size_parameter_counts():
    from transformers import SwinConfig

    with torch.device("meta"):
        model = MilmerModel(ModelConfig(), swin_from_config(SwinConfig()))
    assert _count(model.mil) == 768 * 128 + 128 + 128 + 1 < 1_000_000
    assert _count(model.backbone) == 27_519_354
    assert isinstance(model.token_proj, nn.Identity)  # Swin-T's 768 == d_model
    assert _count(model) == 42_141_823  # the EEG MLP's second Linear (768 x 768) since the paper's MLP


def test_token_projection_only_when_sizes_differ(tiny_config, make_model):
    assert isinstance(make_model(tiny_config).token_proj, nn.Linear)
    same = make_model(tiny_config.replace(d_model=64, n_heads=4))
    assert isinstance(same.token_proj, nn.Identity)


VARIANTS = [
    {"mil": mil, "visual_integration": vi}
    for mil in ("first-frame", "mean", "amil", "topk")
    for vi in ("none", "mlp", "cross-attention")
] + [
    {"modality": "eeg"},
    {"modality": "face"},
    {"modality": "face", "mil": "amil", "visual_integration": "none"},
    {"fusion": "concat"},
    {"fusion": "concat", "mil": "mean", "visual_integration": "mlp"},
    {"top_k": 1},
    {"top_k": 10, "visual_integration": "mlp"},
    {"eeg_tokens": "spectral"},
    {"eeg_tokens": "spectral", "fusion": "concat"},
    {"eeg_tokens": "spectral", "modality": "eeg"},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()))
def test_ablation_variant_forward_backward(variant, tiny_config, make_model, inputs):
    config = tiny_config.replace(**variant)
    model = make_model(config).train()
    logits, weights, selected = model(*inputs)
    assert logits.shape == (2, 4) and weights.shape == (2, 10) and selected.shape == (2, config.top_k)
    torch.testing.assert_close(weights.sum(1), torch.ones(2))
    logits.square().sum().backward()
    for name, p in model.named_parameters():
        if name.startswith("backbone.") and config.modality == "eeg":
            assert p.grad is None, name  # EEG-only: the backbone does not run
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    if config.modality == "eeg":
        assert model.visual is None and model.token_proj is None
    if config.modality == "face":
        assert model.eeg_tokenizer is None


def test_eeg_only_ignores_frames(tiny_config, make_model, inputs, tokens):
    model = make_model(tiny_config.replace(modality="eeg")).eval()
    eeg, frames = inputs
    with torch.no_grad():
        a = model(eeg, frames)
        b = model.forward_fusion(eeg, tokens)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert a[2].tolist() == [[0, 1, 2], [0, 1, 2]]


def test_new_model_is_in_train_mode_throughout(tiny_config, make_model):
    model = make_model(tiny_config)
    assert all(m.training for m in model.modules())


def test_frozen_backbone_stays_in_eval_mode(tiny_config, make_model):
    model = make_model(tiny_config.replace(freeze_backbone=True))
    assert not model.backbone.training
    model.eval().train()
    assert model.training and model.fusion.training
    assert not model.backbone.training
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.fusion.parameters())


def test_tokens_per_frame_must_match_backbone(tiny_config, make_model):
    with pytest.raises(MilmerInputError, match=r"'tokens_per_frame': expected 36 \(the backbone's tokens for 192x192 frames\), got 49"):
        make_model(tiny_config.replace(frame_size=192))


def test_input_shape_errors(tiny_config, make_model, tokens):
    model = make_model(tiny_config)
    with pytest.raises(MilmerInputError, match=r"Invalid shape for 'eeg': expected \(B, 32, 384\), got \(2, 31, 384\)"):
        model.forward_fusion(torch.zeros(2, 31, 384), tokens)
    with pytest.raises(MilmerInputError, match=r"Invalid shape for 'tokens': expected \(B, 10, 49, 64\), got \(2, 10, 49, 32\)"):
        model.forward_fusion(torch.zeros(2, 32, 384), tokens[..., :32])
    with pytest.raises(MilmerInputError, match=r"same batch size, got 3 and 2"):
        model.forward_fusion(torch.zeros(3, 32, 384), tokens)
    with pytest.raises(MilmerInputError, match=r"Invalid shape for 'frames': expected \(N, 3, 224, 224\)"):
        model.forward_backbone(torch.zeros(2, 3, 200, 224))
    with pytest.raises(MilmerInputError, match=r"Invalid shape for 'frames': expected \(B, 10, 3, 224, 224\), got \(2, 3, 224, 224\)"):
        model(torch.zeros(2, 32, 384), torch.zeros(2, 3, 224, 224))
