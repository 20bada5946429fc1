"""The Milmer network's hyper-parameters and ablation switches: one frozen, JSON-able dataclass.

Fields that must agree with the input contract (frames per window, EEG channels and samples,
frame size, tokens per frame, top-K, classes) come from a :class:`ModelSpec` through
:meth:`ModelConfig.from_spec`. This module imports no torch, so configs can be read and checked
cheaply (e.g. by a CLI before a long training run starts).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..runtime._check import MilmerInputError, check_keys, check_option
from ..runtime._io import read_json_file, write_text_atomic
from ..runtime.spec import ModelSpec

__all__ = [
    "DEFAULT_BACKBONE",
    "MODALITIES",
    "FUSIONS",
    "MIL_MODES",
    "VISUAL_INTEGRATIONS",
    "EEG_TOKENS",
    "EEG_BANDS",
    "SPEC_FIELDS",
    "ModelConfig",
]

#: Name of the paper's face backbone on the Hugging Face hub; users download it themselves.
DEFAULT_BACKBONE = "swin-tiny-patch4-window7-224-finetuned-face-emotion-v12"

Modality = Literal["eeg", "face", "both"]
Fusion = Literal["transformer", "concat"]
MilMode = Literal["first-frame", "mean", "amil", "topk"]
VisualIntegration = Literal["none", "mlp", "cross-attention"]
EEGTokens = Literal["mlp", "spectral"]

MODALITIES: tuple[str, ...] = ("eeg", "face", "both")
FUSIONS: tuple[str, ...] = ("transformer", "concat")
MIL_MODES: tuple[str, ...] = ("first-frame", "mean", "amil", "topk")
EEG_TOKENS: tuple[str, ...] = ("mlp", "spectral")
VISUAL_INTEGRATIONS: tuple[str, ...] = ("none", "mlp", "cross-attention")

#: The standard EEG bands (Hz, [low, high)) of the spectral EEG tokenizer (``eeg_tokens =
#: 'spectral'``), DEAP's spectral features: delta, theta, alpha, beta, gamma (Koelstra et al. 2012
#: use theta 4-8, slow alpha 8-10, alpha 8-12, beta 12-30, gamma 30+; the differential-entropy
#: literature, e.g. Zheng & Lu 2015, the same five bands). Defined here, without torch, so the
#: FLOP formulas of the benchmarks read the same definition as the model.
EEG_BANDS: tuple[tuple[float, float], ...] = ((1.0, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, 30.0), (30.0, 45.0))

#: ModelConfig fields set from the ModelSpec by :meth:`ModelConfig.from_spec`.
SPEC_FIELDS: tuple[str, ...] = (
    "n_classes",
    "frames_per_window",
    "n_eeg_channels",
    "eeg_samples",
    "eeg_sfreq",
    "frame_size",
    "tokens_per_frame",
    "top_k",
)

_INT_FIELDS = (
    "d_model", "n_heads", "ffn_dim", "n_layers", "n_classes", "frames_per_window",
    "n_eeg_channels", "eeg_samples", "frame_size", "tokens_per_frame", "top_k", "mil_hidden",
    "n_queries",
)  # fmt: skip


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of :class:`milmer.training.model.MilmerModel` (defaults: the paper's).

    Ablation switches (the paper's tables):

    - ``modality``: ``'both'`` (EEG + face), ``'eeg'`` (the face path is not built; ``frames``/
      ``tokens`` inputs are accepted and ignored), ``'face'`` (the EEG path is not built).
    - ``fusion``: ``'transformer'`` ([CLS, 32 EEG tokens, face tokens] through a
      ``n_layers``-layer encoder, CLS -> classifier) or ``'concat'`` (mean-pooled EEG tokens and
      mean-pooled face tokens concatenated -> MLP head; needs ``modality='both'``).
    - ``mil`` over the ``frames_per_window`` frames of a bag: ``'topk'`` (attention MIL scores,
      the ``top_k`` best frames' tokens scaled by their renormalised weights), ``'amil'``
      (attention-weighted sum of all frames), ``'mean'`` (plain mean), ``'first-frame'``.
    - ``eeg_tokens``: ``'mlp'`` (the paper's: each channel's ``eeg_samples`` raw samples,
      LayerNorm'd, through an MLP to ``d_model``) or ``'spectral'`` (each channel's log power in
      the delta/theta/alpha/beta/gamma bands, computed inside the graph by a fixed DFT, through an
      MLP to ``d_model``: the usual DEAP features; needs ``eeg_sfreq``).
    - ``visual_integration`` of the MIL output tokens: ``'cross-attention'`` (``n_queries``
      learned queries attend over them), ``'mlp'`` (a learned token-mixing MLP maps them to
      ``n_queries`` tokens), ``'none'`` (they enter the fusion as they are).

    ``backbone_dir`` is a local Hugging Face Swin checkpoint directory (nothing is downloaded).
    """

    d_model: int = 768
    n_heads: int = 12
    ffn_dim: int = 2048
    n_layers: int = 2
    dropout: float = 0.2
    cls_dropout: float = 0.1
    n_classes: int = 4
    frames_per_window: int = 10
    n_eeg_channels: int = 32
    eeg_samples: int = 384
    eeg_sfreq: float = 128.0
    frame_size: int = 224
    tokens_per_frame: int = 49
    modality: Modality = "both"
    eeg_tokens: EEGTokens = "mlp"
    fusion: Fusion = "transformer"
    mil: MilMode = "topk"
    top_k: int = 3
    mil_hidden: int = 128
    visual_integration: VisualIntegration = "cross-attention"
    n_queries: int = 64
    backbone_dir: str = DEFAULT_BACKBONE
    freeze_backbone: bool = False

    def __post_init__(self) -> None:
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise MilmerInputError(f"Invalid value for {name!r}: expected an integer > 0, got {value!r}.")
        for name in ("dropout", "cls_dropout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
                raise MilmerInputError(f"Invalid value for {name!r}: expected a number in [0, 1), got {value!r}.")
        if not isinstance(self.eeg_sfreq, (int, float)) or isinstance(self.eeg_sfreq, bool) or not self.eeg_sfreq > 0:
            raise MilmerInputError(f"Invalid value for 'eeg_sfreq': expected a number > 0 (Hz), got {self.eeg_sfreq!r}.")
        check_option("modality", self.modality, MODALITIES)
        check_option("eeg_tokens", self.eeg_tokens, EEG_TOKENS)
        check_option("fusion", self.fusion, FUSIONS)
        check_option("mil", self.mil, MIL_MODES)
        check_option("visual_integration", self.visual_integration, VISUAL_INTEGRATIONS)
        if not isinstance(self.backbone_dir, str) or not self.backbone_dir:
            raise MilmerInputError(
                f"Invalid value for 'backbone_dir': expected a non-empty path string, got {self.backbone_dir!r}."
            )
        if not isinstance(self.freeze_backbone, bool):
            raise MilmerInputError(
                f"Invalid value for 'freeze_backbone': expected True or False, got {self.freeze_backbone!r}."
            )
        if self.d_model % self.n_heads:
            raise MilmerInputError(
                f"Invalid value for 'n_heads': expected a divisor of d_model = {self.d_model}, got {self.n_heads!r}."
            )
        if self.top_k > self.frames_per_window:
            raise MilmerInputError(
                f"Invalid value for 'top_k': expected 1 <= top_k <= frames_per_window = "
                f"{self.frames_per_window}, got {self.top_k!r}."
            )
        if self.fusion == "concat" and self.modality != "both":
            raise MilmerInputError(
                "Invalid combination: fusion 'concat' concatenates pooled EEG and face features, so it "
                f"needs modality 'both', got modality {self.modality!r}; use fusion 'transformer'."
            )

    # ------------------------------------------------------------------ derived sizes
    @property
    def uses_eeg(self) -> bool:
        return self.modality in ("eeg", "both")

    @property
    def uses_face(self) -> bool:
        return self.modality in ("face", "both")

    @property
    def n_bag_tokens(self) -> int:
        """Face tokens after MIL: ``top_k * tokens_per_frame`` for 'topk', else one frame's."""
        return self.top_k * self.tokens_per_frame if self.mil == "topk" else self.tokens_per_frame

    @property
    def n_face_tokens(self) -> int:
        """Face tokens entering the fusion (after visual integration); 0 without the face path."""
        if not self.uses_face:
            return 0
        return self.n_bag_tokens if self.visual_integration == "none" else self.n_queries

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_spec(cls, spec: ModelSpec, **overrides: Any) -> ModelConfig:
        """A config whose input sizes and classes come from ``spec``; ``overrides`` set the rest.

        Overriding a spec-tied field (:data:`SPEC_FIELDS`) is an error: change the spec instead,
        so the model and its input contract cannot disagree.
        """
        tied = sorted(set(overrides) & set(SPEC_FIELDS))
        if tied:
            raise MilmerInputError(
                f"Invalid override(s) {', '.join(repr(t) for t in tied)}: these come from the model spec "
                "(face.frames_per_window, eeg channels/window/sfreq, face.frame_size, graph.tokens_per_frame, "
                "graph.top_k, class_names); change the spec instead."
            )
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise MilmerInputError(f"Invalid override(s): unknown ModelConfig field(s) {', '.join(unknown)}.")
        return cls(
            n_classes=spec.n_classes,
            frames_per_window=spec.face.frames_per_window,
            n_eeg_channels=spec.eeg.n_channels,
            eeg_samples=spec.eeg.window_samples,
            eeg_sfreq=float(spec.eeg.sfreq),
            frame_size=spec.face.frame_size,
            tokens_per_frame=spec.graph.tokens_per_frame,
            top_k=spec.graph.top_k,
            **overrides,
        )

    def check_spec(self, spec: ModelSpec) -> None:
        """Raise if ``spec`` disagrees with this config on any spec-tied field."""
        expected = ModelConfig.from_spec(spec)
        diffs = [
            f"{name}: config {getattr(self, name)!r}, spec {getattr(expected, name)!r}"
            for name in SPEC_FIELDS
            if getattr(self, name) != getattr(expected, name)
        ]
        if diffs:
            raise MilmerInputError("Model config and spec disagree: " + "; ".join(diffs) + ".")

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from :meth:`to_dict` output; unknown or missing keys are errors."""
        if not isinstance(data, dict):
            raise MilmerInputError(f"Invalid model config: expected a JSON object, got {type(data).__name__}.")
        check_keys("model config", data, [f.name for f in dataclasses.fields(cls)])
        return cls(**data)

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise MilmerInputError(f"Invalid model config: not valid JSON ({err}).") from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the config as JSON atomically."""
        return write_text_atomic(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ModelConfig:
        return cls.from_dict(read_json_file(path, param="config", what="model config"))
