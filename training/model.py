"""The Milmer network (paper Sec. 3), split exactly along the export boundary.

``forward_backbone`` is ``swin.onnx`` and ``forward_fusion`` is ``fusion.onnx``::

    forward_backbone(frames: (N, 3, S, S) float32, normalised) -> tokens (N, P, H)
    forward_fusion(eeg: (B, C, T), tokens: (B, F, P, H))
        -> logits (B, n_classes), mil_weights (B, F), selected (B, K) int64
    forward(eeg, frames: (B, F, 3, S, S)) == forward_fusion(eeg, forward_backbone(frames) as (B, F, P, H))

with C EEG channels, T samples, F frames per bag, P tokens per frame (49), H the backbone's
hidden size (768 for Swin-T), K = top_k, d = d_model.

Differences from the official code (which we do not copy): the MIL scorer is the small
attention-MIL network of Ilse et al. and receives gradient (the selected frames' tokens are
scaled by their attention weights); cross-attention compresses the K*P selected tokens to
``n_queries`` tokens; no image processor runs inside ``forward`` (frames come normalised).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ..runtime._check import MilmerInputError
from .backbone import load_swin, swin_tokens_per_frame
from .config import ModelConfig

if TYPE_CHECKING:
    from transformers import SwinModel

__all__ = [
    "EEGTokenizer",
    "MILPooling",
    "CrossAttentionIntegration",
    "MLPIntegration",
    "TransformerFusion",
    "ConcatFusion",
    "MilmerModel",
    "build_model",
]


def _init_embedding(t: Tensor) -> Tensor:
    return nn.init.trunc_normal_(t, std=0.02)


class EEGTokenizer(nn.Module):
    """Each channel's window becomes one token: eeg (B, C, T) -> (B, C, d).

    LayerNorm over the T samples of each channel (EEG amplitudes vary a lot between subjects and
    channels), then Linear(T -> d) + ReLU.
    """

    def __init__(self, n_samples: int, d_model: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(n_samples)
        self.proj = nn.Linear(n_samples, d_model)

    def forward(self, eeg: Tensor) -> Tensor:
        return torch.relu(self.proj(self.norm(eeg)))


class MILPooling(nn.Module):
    """Multiple-instance pooling over the F frames of a bag: tokens (B, F, P, d) ->
    (bag (B, M, d), weights (B, F), selected (B, K) int64).

    - ``'topk'``: attention MIL (Ilse et al. 2018) scores each frame from its mean token,
      ``a = softmax_F(w^T tanh(V x))``; the K best frames (in temporal order) are kept and their
      tokens multiplied by ``K * a_k / sum_K a`` (renormalised over the K and scaled so that equal
      weights leave the tokens unchanged); this product is what trains V and w. M = K * P.
    - ``'amil'``: the attention-weighted sum of all frames' tokens; M = P; ``selected`` are the K
      highest-weighted frames (temporal order).
    - ``'mean'``: the mean frame; weights 1/F; ``selected`` = frames 0..K-1.
    - ``'first-frame'``: frame 0; weights one-hot on frame 0; ``selected`` = frames 0..K-1.

    Selection uses ``torch.topk`` + ``torch.sort`` + ``torch.gather`` only (no loops, no boolean
    masks), so it exports to ONNX with a dynamic batch.
    """

    def __init__(self, mode: str, d_model: int, hidden: int, top_k: int) -> None:
        super().__init__()
        self.mode = mode
        self.top_k = top_k
        self.scorer = (
            nn.Sequential(nn.Linear(d_model, hidden), nn.Tanh(), nn.Linear(hidden, 1))
            if mode in ("amil", "topk")
            else None
        )

    @property
    def V(self) -> nn.Linear | None:  # noqa: N802 - the paper's names
        return None if self.scorer is None else self.scorer[0]

    @property
    def w(self) -> nn.Linear | None:
        return None if self.scorer is None else self.scorer[2]

    def first_k(self, weights: Tensor) -> Tensor:
        """(B, F) -> (B, K) int64 indices 0..K-1, batch-dynamic for export."""
        k = torch.arange(self.top_k, device=weights.device)
        return torch.zeros_like(weights[:, : self.top_k], dtype=torch.long) + k

    @staticmethod
    def uniform_weights(tokens: Tensor) -> Tensor:
        """tokens (B, F, ...) -> (B, F) all 1/F."""
        ones = torch.ones_like(tokens[:, :, 0, 0])
        return ones / ones.shape[1]

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if self.mode == "mean":
            weights = self.uniform_weights(tokens)
            return tokens.mean(1), weights, self.first_k(weights)
        if self.mode == "first-frame":
            column = tokens[:, :, 0, 0]
            weights = torch.cat([torch.ones_like(column[:, :1]), torch.zeros_like(column[:, 1:])], dim=1)
            return tokens[:, 0], weights, self.first_k(weights)

        assert self.scorer is not None
        scores = self.scorer(tokens.mean(2)).squeeze(-1)  # (B, F)
        weights = torch.softmax(scores, dim=1)
        top_w, top_i = torch.topk(weights, self.top_k, dim=1)  # (B, K), best first
        selected, order = torch.sort(top_i, dim=1)  # temporal order: deterministic outputs
        if self.mode == "amil":
            return (weights[:, :, None, None] * tokens).sum(1), weights, selected

        top_w = torch.gather(top_w, 1, order)
        scale = top_w * (self.top_k / top_w.sum(1, keepdim=True))  # (B, K)
        index = selected[:, :, None, None].expand(-1, -1, tokens.shape[2], tokens.shape[3])
        chosen = torch.gather(tokens, 1, index)  # (B, K, P, d)
        bag = (chosen * scale[:, :, None, None]).flatten(1, 2)  # (B, K*P, d)
        return bag, weights, selected


class CrossAttentionIntegration(nn.Module):
    """``n_queries`` learned queries attend over the bag tokens: (B, M, d) -> (B, N, d).

    The keys get a learned position embedding (which frame, which patch): attention itself is
    blind to order. Output = LayerNorm(queries + attention). No attention dropout here: the
    model's dropout lives in the fusion encoder.
    """

    def __init__(self, n_tokens: int, n_queries: int, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(_init_embedding(torch.empty(n_queries, d_model)))
        self.key_pos = nn.Parameter(_init_embedding(torch.empty(n_tokens, d_model)))
        self.kv_norm = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
        self.out_norm = nn.LayerNorm(d_model)

    def forward(self, bag: Tensor) -> Tensor:
        kv = self.kv_norm(bag + self.key_pos)  # (B, M, d)
        q = self.queries.expand(bag.shape[0], -1, -1)  # (B, N, d)
        out, _ = self.attn(q, kv, kv, need_weights=False)
        return self.out_norm(q + out)


class MLPIntegration(nn.Module):
    """A token-mixing MLP maps the bag tokens to ``n_queries`` tokens: (B, M, d) -> (B, N, d).

    The MLP counterpart of the cross-attention (same output size, for the ablation):
    LayerNorm, Linear(M -> N) across tokens, then a residual per-token MLP d -> d -> d (GELU).
    """

    def __init__(self, n_tokens: int, n_queries: int, d_model: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.token_mix = nn.Linear(n_tokens, n_queries)
        self.mlp = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, d_model))

    def forward(self, bag: Tensor) -> Tensor:
        mixed = self.token_mix(self.norm(bag).transpose(1, 2)).transpose(1, 2)  # (B, N, d)
        return mixed + self.mlp(mixed)


class TransformerFusion(nn.Module):
    """[CLS, EEG tokens, face tokens] -> Transformer encoder -> CLS -> Dropout -> Linear.

    Each token gets a learned position embedding; with both modalities it also gets a modal-type
    embedding (EEG = 0, face = 1). The encoder is pre-norm (``norm_first``, stabler to train from
    scratch) with GELU and a final LayerNorm.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.d_model
        n_tokens = 1 + (config.n_eeg_channels if config.uses_eeg else 0) + config.n_face_tokens
        self.cls = nn.Parameter(_init_embedding(torch.empty(1, 1, d)))
        self.pos_embed = nn.Parameter(_init_embedding(torch.empty(1, n_tokens, d)))
        self.type_embed = (
            nn.Parameter(_init_embedding(torch.empty(2, d))) if config.modality == "both" else None
        )
        layer = nn.TransformerEncoderLayer(
            d, config.n_heads, config.ffn_dim, config.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(
            layer, config.n_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False
        )
        self.head = nn.Sequential(nn.Dropout(config.cls_dropout), nn.Linear(d, config.n_classes))

    def forward(self, eeg_tokens: Tensor | None, face_tokens: Tensor | None) -> Tensor:
        """eeg_tokens (B, C, d) | None, face_tokens (B, N, d) | None -> logits (B, n_classes)."""
        ref = eeg_tokens if eeg_tokens is not None else face_tokens
        assert ref is not None
        parts = [self.cls.expand(ref.shape[0], -1, -1)]
        for type_id, tokens in enumerate((eeg_tokens, face_tokens)):
            if tokens is not None:
                parts.append(tokens if self.type_embed is None else tokens + self.type_embed[type_id])
        x = torch.cat(parts, dim=1) + self.pos_embed  # (B, 1 + C + N, d)
        return self.head(self.encoder(x)[:, 0])


class ConcatFusion(nn.Module):
    """Mean-pooled EEG tokens ++ mean-pooled face tokens (B, 2d) -> MLP head -> logits."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.d_model
        self.head = nn.Sequential(
            nn.LayerNorm(2 * d),
            nn.Linear(2 * d, d),
            nn.GELU(),
            nn.Dropout(config.cls_dropout),
            nn.Linear(d, config.n_classes),
        )

    def forward(self, eeg_tokens: Tensor | None, face_tokens: Tensor | None) -> Tensor:
        assert eeg_tokens is not None and face_tokens is not None
        return self.head(torch.cat([eeg_tokens.mean(1), face_tokens.mean(1)], dim=-1))


def _check_shape(name: str, x: Tensor, expected: tuple[int | str, ...]) -> None:
    """Raise unless ``x`` has ``len(expected)`` dims and matches every int entry."""
    if x.ndim != len(expected) or any(isinstance(e, int) and s != e for s, e in zip(x.shape, expected)):
        shown = ", ".join(str(e) for e in expected)
        raise MilmerInputError(f"Invalid shape for {name!r}: expected ({shown}), got {tuple(x.shape)}.")


def _exporting() -> bool:
    """True while traced for export, where comparing two dynamic batch sizes would add a guard."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


class MilmerModel(nn.Module):
    """EEG tokens + MIL-selected Swin face tokens fused by a Transformer (see module docstring).

    ``backbone`` is a transformers ``SwinModel`` (see :mod:`milmer.training.backbone`); its
    hidden size H is projected to ``d_model`` by a Linear when they differ (identity for the
    paper's 768 = 768). With ``freeze_backbone`` its parameters get ``requires_grad=False`` and
    it stays in eval mode (no drop-path noise on features that are not trained).
    """

    def __init__(self, config: ModelConfig, backbone: SwinModel) -> None:
        super().__init__()
        tokens = swin_tokens_per_frame(backbone.config, config.frame_size)
        if tokens != config.tokens_per_frame:
            raise MilmerInputError(
                f"Invalid value for 'tokens_per_frame': the backbone yields {tokens} tokens for "
                f"{config.frame_size}x{config.frame_size} frames, got {config.tokens_per_frame!r}."
            )
        self.config = config
        self.token_dim: int = int(backbone.config.hidden_size)
        self.backbone = backbone
        d = config.d_model
        self.eeg_tokenizer = EEGTokenizer(config.eeg_samples, d) if config.uses_eeg else None
        self.token_proj: nn.Module | None = None
        self.visual: nn.Module | None = None
        if config.uses_face:
            self.token_proj = nn.Identity() if self.token_dim == d else nn.Linear(self.token_dim, d)
            if config.visual_integration == "cross-attention":
                self.visual = CrossAttentionIntegration(config.n_bag_tokens, config.n_queries, d, config.n_heads)
            elif config.visual_integration == "mlp":
                self.visual = MLPIntegration(config.n_bag_tokens, config.n_queries, d)
            else:
                self.visual = nn.Identity()
        # With modality 'eeg' a parameter-free 'mean' pooling still produces the uniform
        # mil_weights / selected outputs, so every variant has the same graph I/O.
        mil_mode = config.mil if config.uses_face else "mean"
        self.mil = MILPooling(mil_mode, d, config.mil_hidden, config.top_k)
        self.fusion = TransformerFusion(config) if config.fusion == "transformer" else ConcatFusion(config)
        if config.freeze_backbone:
            self.backbone.requires_grad_(False)
        # from_pretrained returns the backbone in eval mode; start consistent (train mode).
        self.train()

    def train(self, mode: bool = True) -> MilmerModel:
        super().train(mode)
        if self.config.freeze_backbone:
            self.backbone.eval()
        return self

    def forward_backbone(self, frames: Tensor) -> Tensor:
        """frames: (N, 3, S, S) float32, normalised -> tokens (N, P, H)."""
        s = self.config.frame_size
        _check_shape("frames", frames, ("N", 3, s, s))
        return self.backbone(pixel_values=frames).last_hidden_state

    def forward_fusion(self, eeg: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """eeg: (B, C, T) float32, tokens: (B, F, P, H) backbone tokens ->
        (logits (B, n_classes), mil_weights (B, F), selected (B, K) int64)."""
        c = self.config
        _check_shape("eeg", eeg, ("B", c.n_eeg_channels, c.eeg_samples))
        _check_shape("tokens", tokens, ("B", c.frames_per_window, c.tokens_per_frame, self.token_dim))
        if not _exporting() and eeg.shape[0] != tokens.shape[0]:
            raise MilmerInputError(
                f"Invalid shapes: 'eeg' and 'tokens' must have the same batch size, got "
                f"{eeg.shape[0]} and {tokens.shape[0]}."
            )
        eeg_tokens = self.eeg_tokenizer(eeg) if self.eeg_tokenizer is not None else None  # (B, C, d)
        face_tokens = None
        if self.token_proj is not None and self.visual is not None:
            bag, weights, selected = self.mil(self.token_proj(tokens))  # (B, M, d)
            face_tokens = self.visual(bag)  # (B, N, d)
        else:
            _, weights, selected = self.mil(tokens)
        return self.fusion(eeg_tokens, face_tokens), weights, selected

    def forward(self, eeg: Tensor, frames: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """eeg: (B, C, T), frames: (B, F, 3, S, S) -> as :meth:`forward_fusion`.

        With modality 'eeg' the backbone is skipped (its tokens would be ignored) and zeros of
        the tokens' shape go to the fusion: the result is the same, at no Swin cost.
        """
        c = self.config
        _check_shape("frames", frames, ("B", c.frames_per_window, 3, c.frame_size, c.frame_size))
        if c.uses_face:
            tokens = self.forward_backbone(frames.flatten(0, 1))  # (B*F, P, H)
            tokens = tokens.reshape(-1, c.frames_per_window, *tokens.shape[1:])  # (B, F, P, H)
        else:
            tokens = frames.new_zeros(frames.shape[0], c.frames_per_window, c.tokens_per_frame, self.token_dim)
        return self.forward_fusion(eeg, tokens)


def build_model(config: ModelConfig) -> MilmerModel:
    """A Milmer model whose backbone is loaded from ``config.backbone_dir`` (a local checkpoint)."""
    return MilmerModel(config, load_swin(config.backbone_dir))
