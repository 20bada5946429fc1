"""The MIL frame scorer learns (paper Sec. 3.2): its gradient is of the size of the others', and on a
controlled task where the class shows in only 2-3 of a bag's 10 frames it learns to put those
frames in its top-K, and top-K then beats mean pooling (the paper's MIL ablation)."""

from __future__ import annotations

import statistics

import pytest
import torch

from milmer.training.model_config import ModelConfig
from milmer.training.model import build_model


def _grad_norms(model, eeg, tokens, labels) -> tuple[float, float, float]:
    """(|dL/dV|, |dL/dw|, median |dL/dp| over the other fusion-side parameters) for one batch."""
    model.zero_grad()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # dropout masks
        logits, _, _ = model.forward_fusion(eeg, tokens)
    torch.nn.functional.cross_entropy(logits, labels).backward()
    others = [
        p.grad.norm().item()
        for name, p in model.named_parameters()
        if p.grad is not None and not name.startswith(("mil.", "backbone."))
    ]
    return model.mil.V.weight.grad.norm().item(), model.mil.w.weight.grad.norm().item(), statistics.median(others)


@pytest.mark.parametrize(
    ("visual", "zero_key_pos", "expected"),
    [
        # Measured before the fix (weights multiplied into the tokens before a LayerNorm):
        # |dL/dV| ~1e-4 against ~2 for the rest, ~1e-8 with key_pos zeroed, ~1e-7 with 'mlp'.
        ("cross-attention", False, (8.2142e-3, 3.5303e-3)),
        ("cross-attention", True, (8.1770e-3, 3.5054e-3)),
        ("mlp", False, (3.9694e-3, 2.8046e-3)),
        ("none", False, (1.4671e-3, 7.470e-4)),
    ],
)
def test_scorer_gradient_is_not_removed_by_a_norm(tiny_config, make_model, visual, zero_key_pos, expected):
    model = make_model(tiny_config.replace(visual_integration=visual), seed=0).train()
    if zero_key_pos:
        with torch.no_grad():
            model.visual.key_pos.zero_()
    g = torch.Generator().manual_seed(1234)
    eeg, tokens = torch.randn(4, 32, 384, generator=g), torch.randn(4, 10, 49, 64, generator=g)
    grad_v, grad_w, other = _grad_norms(model, eeg, tokens, torch.tensor([0, 1, 2, 3]))
    assert (grad_v, grad_w) == pytest.approx(expected, rel=2e-3)
    # Before: ~5e-5 x the others' (~5e-9 x with key_pos zeroed); now 1e-3 to 2e-2 x.
    assert min(grad_v, grad_w) > 5e-4 * other


def _bags(n: int, g: torch.Generator, *, frames: int = 10, dim: int = 64, tokens: int = 4):
    """A controlled MIL task: tokens (n, F, P, dim), labels (n,) in 0..3, signal (n, F) bool.

    Every frame has unit isotropic noise plus extra noise (std 1.5) inside the 4-d class subspace
    (a face that moves and talks). In 2 or 3 random frames of each bag, and only there, a brief
    expression adds the class direction (x2) and a direction common to every expression (x2).
    The mean over the 10 frames dilutes the class signal 4x under the same noise; the frames
    that carry it are recognisable by the common direction.
    """
    basis = torch.linalg.qr(torch.randn(dim, 5, generator=torch.Generator().manual_seed(7)))[0].T  # (5, dim)
    classes, common = basis[:4], basis[4]
    labels = torch.randint(0, 4, (n,), generator=g)
    x = torch.randn(n, frames, dim, generator=g) + 1.5 * torch.randn(n, frames, 4, generator=g) @ classes
    n_signal = torch.randint(2, 4, (n,), generator=g)
    signal = torch.argsort(torch.rand(n, frames, generator=g), dim=1) < n_signal[:, None]
    x = x + signal[:, :, None] * (2.0 * classes[labels][:, None, :] + 2.0 * common)
    return x[:, :, None, :] + 0.5 * torch.randn(n, frames, tokens, dim, generator=g), labels, signal


def _train_and_test(config: ModelConfig, make_model, epochs: int = 12) -> tuple[float, float]:
    """Train the fusion side on 512 bags, test on 512 new ones: (accuracy, top-K hit rate)."""
    g = torch.Generator().manual_seed(0)
    train, y_train, _ = _bags(512, g)
    test, y_test, signal = _bags(512, g)
    model = make_model(config, seed=0)
    params = [p for name, p in model.named_parameters() if not name.startswith("backbone.")]
    opt = torch.optim.AdamW(params, lr=2e-3)
    eeg = torch.zeros(512, config.n_eeg_channels, config.eeg_samples)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for _ in range(epochs):
            model.train()
            for idx in torch.randperm(512, generator=g).split(32):
                logits, _, _ = model.forward_fusion(eeg[idx], train[idx])
                opt.zero_grad()
                torch.nn.functional.cross_entropy(logits, y_train[idx]).backward()
                opt.step()
    model.eval()
    with torch.no_grad():
        logits, _, selected = model.forward_fusion(eeg, test)
    accuracy = (logits.argmax(1) == y_test).float().mean().item()
    # Share of a bag's signal frames that are in its top-K (K = 3 >= 2-3 signal frames).
    hit_rate = (torch.gather(signal, 1, selected).sum(1) / signal.sum(1)).mean().item()
    return accuracy, hit_rate


def test_topk_scorer_learns_to_select_the_frames_that_carry_the_class(tiny_swin_dir, make_model):
    config = ModelConfig(
        backbone_dir=str(tiny_swin_dir), d_model=32, n_heads=4, ffn_dim=64, n_layers=1, n_queries=8,
        mil_hidden=16, frame_size=64, tokens_per_frame=4, modality="face", dropout=0.1, cls_dropout=0.1,
    )  # fmt: skip
    topk_acc, hit_rate = _train_and_test(config, make_model)
    mean_acc, mean_hits = _train_and_test(config.replace(mil="mean"), make_model)
    # The trained scorer puts 69 % of the signal frames in its top-3 (chance: 3/10; 'mean'
    # "selects" frames 0-2, which hit 31 %), and top-K beats mean pooling by 12 points.
    assert hit_rate == pytest.approx(0.685, abs=0.03)
    assert mean_hits == pytest.approx(0.308, abs=0.03)
    assert topk_acc == pytest.approx(0.559, abs=0.03)
    assert mean_acc == pytest.approx(0.439, abs=0.03)
    assert hit_rate > 2 * 0.3 and topk_acc > mean_acc + 0.08
