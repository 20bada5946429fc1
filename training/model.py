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

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ..runtime.check import MilmerInputError, check_equal
from .backbone import load_swin, swin_tokens_per_frame
from .model_config import EEG_BANDS, ModelConfig

if TYPE_CHECKING:
    from transformers import SwinModel

__all__ = [
    "EEGTokenizer",
    "MILPooling",
    "CrossAttentionIntegration",
    "MLPIntegration",
    "NoIntegration",
    "SpectralEEGTokenizer",
    "EEG_BANDS",
    "band_power_matrices",
    "TransformerFusion",
    "ConcatFusion",
    "MilmerModel",
    "build_model",
]


def _init_embedding(t: Tensor) -> Tensor:
    return nn.init.trunc_normal_(t, std=0.02)


class EEGTokenizer(nn.Module):
    """Each channel's window becomes one token: eeg (B, C, T) -> (B, C, d) (paper Sec. 4.1).

    LayerNorm over the T samples of each channel (EEG amplitudes vary a lot between subjects and
    channels), then the paper's per-channel MLP that maps the T samples up to d:
    Linear(T -> d), GELU, Linear(d -> d).
    """

    def __init__(self, n_samples: int, d_model: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(n_samples)
        self.mlp = nn.Sequential(nn.Linear(n_samples, d_model), nn.GELU(), nn.Linear(d_model, d_model))

    def forward(self, eeg: Tensor) -> Tensor:
        return self.mlp(self.norm(eeg))


def band_power_matrices(n_samples: int, sfreq: float, bands: tuple[tuple[float, float], ...] = EEG_BANDS) -> tuple[Tensor, Tensor]:
    """Constant matrices of a Hann-windowed real DFT restricted to the bins inside ``bands``.

    Returns ``dft`` (T, 2 * n_bins) float32 (the windowed cos and sin rows of every kept bin,
    so ``x @ dft`` gives their real and imaginary parts) and ``pool`` (n_bins, n_bands) float32
    (averages each band's bin powers). Raises if a band holds no DFT bin at this window length.
    """
    import math

    freqs = torch.arange(n_samples // 2 + 1, dtype=torch.float64) * (sfreq / n_samples)
    in_band = [(freqs >= lo) & (freqs < hi) for lo, hi in bands]
    for (lo, hi), mask in zip(bands, in_band):
        if not bool(mask.any()):
            raise MilmerInputError(
                f"Invalid EEG window for spectral tokens: band {lo:g}-{hi:g} Hz holds no DFT bin at "
                f"{n_samples} samples and {sfreq:g} Hz (bin spacing {sfreq / n_samples:g} Hz)."
            )
    keep = torch.stack(in_band).any(0)
    bins = torch.nonzero(keep).squeeze(1)  # (n_bins,)
    t = torch.arange(n_samples, dtype=torch.float64)
    window = torch.hann_window(n_samples, periodic=True, dtype=torch.float64)
    phase = 2 * math.pi * t[:, None] * bins[None, :].double() / n_samples  # (T, n_bins)
    dft = torch.cat([window[:, None] * torch.cos(phase), window[:, None] * torch.sin(phase)], dim=1)
    pool = torch.stack([mask[bins].double() / mask.sum() for mask in in_band], dim=1)  # (n_bins, n_bands)
    return dft.float(), pool.float()


class SpectralEEGTokenizer(nn.Module):
    """Per-channel log band power tokens: eeg (B, C, T) -> (B, C, d) (an ablation, not the paper's).

    The usual DEAP features: for each channel the log power in the delta, theta, alpha, beta and
    gamma bands (:data:`EEG_BANDS`), from a Hann-windowed real DFT computed as one MatMul with
    constant cos/sin matrices (exports to ONNX and TensorRT as MatMul/Mul/Add/Log only). The
    (C, 5) log powers of a window are normalised together (LayerNorm over channels and bands:
    removes the window's overall gain, keeps asymmetries and band ratios), then a per-channel MLP
    Linear(5 -> d), GELU, Linear(d -> d) makes the token. Log band power is where emotion
    shows in EEG (frontal alpha asymmetry, beta/alpha); a linear map of raw samples cannot read it.
    """

    def __init__(self, n_channels: int, n_samples: int, sfreq: float, d_model: int) -> None:
        super().__init__()
        dft, pool = band_power_matrices(n_samples, sfreq)
        self.register_buffer("dft", dft, persistent=False)
        self.register_buffer("pool", pool, persistent=False)
        n_bands = pool.shape[1]
        self.norm = nn.LayerNorm([n_channels, n_bands])
        self.mlp = nn.Sequential(nn.Linear(n_bands, d_model), nn.GELU(), nn.Linear(d_model, d_model))

    def band_power(self, eeg: Tensor) -> Tensor:
        """eeg (B, C, T) -> log band power (B, C, n_bands), natural log of (signal units)^2."""
        eeg = eeg - eeg.mean(-1, keepdim=True)
        spec = eeg @ self.dft  # (B, C, 2 * n_bins): real parts, then imaginary parts
        re, im = spec.chunk(2, dim=-1)
        power = (re * re + im * im) @ self.pool  # (B, C, n_bands)
        return torch.log(power + 1e-6)

    def forward(self, eeg: Tensor) -> Tensor:
        return self.mlp(self.norm(self.band_power(eeg)))


class MILPooling(nn.Module):
    """Multiple-instance pooling over the F frames of a bag: tokens (B, F, P, d) ->
    (bag (B, M, d), bag_log_weights (B, M) | None, weights (B, F), selected (B, K) int64).

    - ``'topk'``: attention MIL (Ilse et al. 2018) scores each frame from its mean token,
      ``a = softmax_F(w^T tanh(V x))``; the K best frames (in temporal order) are kept, M = K * P.
      ``bag_log_weights`` is ``log(K * a_k / sum_K a)`` for each of frame k's P tokens (0 when
      the K weights are equal). The visual integration applies it where no normalisation can
      undo it (an additive attention bias in the cross-attention, a scale after the LayerNorm in
      the MLP): this is what trains V and w. Scaling the tokens themselves does not, because the
      LayerNorm that follows removes any positive per-token scale (the scorer's gradient was
      ~1e-4 of the other parameters').
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

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor | None, Tensor, Tensor]:
        if self.mode == "mean":
            weights = self.uniform_weights(tokens)
            return tokens.mean(1), None, weights, self.first_k(weights)
        if self.mode == "first-frame":
            column = tokens[:, :, 0, 0]
            weights = torch.cat([torch.ones_like(column[:, :1]), torch.zeros_like(column[:, 1:])], dim=1)
            return tokens[:, 0], None, weights, self.first_k(weights)

        assert self.scorer is not None
        scores = self.scorer(tokens.mean(2)).squeeze(-1)  # (B, F)
        weights = torch.softmax(scores, dim=1)
        top_s, top_i = torch.topk(scores, self.top_k, dim=1)  # (B, K), best first
        selected, order = torch.sort(top_i, dim=1)  # temporal order: deterministic outputs
        if self.mode == "amil":
            return (weights[:, :, None, None] * tokens).sum(1), None, weights, selected

        top_s = torch.gather(top_s, 1, order)  # (B, K)
        # log(K * a_k / sum_K a) = log K + log_softmax over the K scores (finite, stable).
        log_w = torch.log_softmax(top_s, dim=1) + math.log(self.top_k)  # (B, K)
        p, d = tokens.shape[2], tokens.shape[3]
        index = selected[:, :, None, None].expand(-1, -1, p, d)
        bag = torch.gather(tokens, 1, index).flatten(1, 2)  # (B, K*P, d)
        bag_log_w = log_w[:, :, None].expand(-1, -1, p).flatten(1, 2)  # (B, K*P)
        return bag, bag_log_w, weights, selected


class CrossAttentionIntegration(nn.Module):
    """``n_queries`` learned queries attend over the bag tokens: (B, M, d) -> (B, N, d).

    The keys get a learned position embedding (which frame, which patch): attention itself is
    blind to order. ``bag_log_weights`` (B, M) (the MIL weights, see :class:`MILPooling`) is
    added to every query's attention logits, so a frame with weight ``a`` gets ``a`` times the
    attention it would otherwise get (renormalised): the MIL scorer steers what the queries read.
    Output = LayerNorm(queries + attention). No attention dropout here: the model's dropout
    lives in the fusion encoder.
    """

    def __init__(self, n_tokens: int, n_queries: int, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.queries = nn.Parameter(_init_embedding(torch.empty(n_queries, d_model)))
        self.key_pos = nn.Parameter(_init_embedding(torch.empty(n_tokens, d_model)))
        self.kv_norm = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
        self.out_norm = nn.LayerNorm(d_model)

    def forward(self, bag: Tensor, bag_log_weights: Tensor | None = None) -> Tensor:
        kv = self.kv_norm(bag + self.key_pos)  # (B, M, d)
        q = self.queries.expand(bag.shape[0], -1, -1)  # (B, N, d)
        bias = None
        if bag_log_weights is not None:  # float additive mask (B * heads, N, M): no boolean masks
            n, m = q.shape[1], kv.shape[1]
            bias = bag_log_weights[:, None, None, :].expand(-1, self.n_heads, n, -1).reshape(-1, n, m)
        out, _ = self.attn(q, kv, kv, attn_mask=bias, need_weights=False)
        return self.out_norm(q + out)


class MLPIntegration(nn.Module):
    """A token-mixing MLP maps the bag tokens to ``n_queries`` tokens: (B, M, d) -> (B, N, d).

    The MLP counterpart of the cross-attention (same output size, for the ablation):
    LayerNorm, then the MIL weights ``exp(bag_log_weights)`` scale the normalised tokens (after
    the norm, which would otherwise undo them), Linear(M -> N) across tokens, then a residual
    per-token MLP d -> d -> d (GELU).
    """

    def __init__(self, n_tokens: int, n_queries: int, d_model: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.token_mix = nn.Linear(n_tokens, n_queries)
        self.mlp = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, d_model))

    def forward(self, bag: Tensor, bag_log_weights: Tensor | None = None) -> Tensor:
        x = self.norm(bag)
        if bag_log_weights is not None:
            x = x * torch.exp(bag_log_weights)[:, :, None]
        mixed = self.token_mix(x.transpose(1, 2)).transpose(1, 2)  # (B, N, d)
        return mixed + self.mlp(mixed)


class NoIntegration(nn.Module):
    """The bag tokens enter the fusion as they are, scaled by the MIL weights: (B, M, d) -> (B, M, d).

    The fusion encoder is pre-norm, so the scale survives in its residual stream.
    """

    def forward(self, bag: Tensor, bag_log_weights: Tensor | None = None) -> Tensor:
        return bag if bag_log_weights is None else bag * torch.exp(bag_log_weights)[:, :, None]


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
        check_equal("tokens_per_frame", config.tokens_per_frame, tokens,
                    why=f"the backbone's tokens for {config.frame_size}x{config.frame_size} frames")
        self.config = config
        self.token_dim: int = int(backbone.config.hidden_size)
        self.backbone = backbone
        d = config.d_model
        self.eeg_tokenizer: nn.Module | None = None
        if config.uses_eeg:
            self.eeg_tokenizer = (
                SpectralEEGTokenizer(config.n_eeg_channels, config.eeg_samples, config.eeg_sfreq, d)
                if config.eeg_tokens == "spectral"
                else EEGTokenizer(config.eeg_samples, d)
            )
        self.token_proj: nn.Module | None = None
        self.visual: nn.Module | None = None
        if config.uses_face:
            self.token_proj = nn.Identity() if self.token_dim == d else nn.Linear(self.token_dim, d)
            if config.visual_integration == "cross-attention":
                self.visual = CrossAttentionIntegration(config.n_bag_tokens, config.n_queries, d, config.n_heads)
            elif config.visual_integration == "mlp":
                self.visual = MLPIntegration(config.n_bag_tokens, config.n_queries, d)
            else:
                self.visual = NoIntegration()
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
            bag, bag_log_w, weights, selected = self.mil(self.token_proj(tokens))  # (B, M, d), (B, M)
            face_tokens = self.visual(bag, bag_log_w)  # (B, N, d)
        else:
            _, _, weights, selected = self.mil(tokens)
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
