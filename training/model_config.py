"""The Milmer network's hyper-parameters and ablation switches: one frozen, JSON-able dataclass.

Fields that must agree with the input contract (frames per window, EEG channels and samples,
frame size, tokens per frame, top-K, classes) come from a :class:`ModelSpec` through
:meth:`ModelConfig.from_spec`. This module imports no torch, so configs can be read and checked
cheaply (e.g. by a CLI before a long training run starts).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from ..runtime.jsonable import JsonDataclass
from ..runtime.check import (
    MilmerInputError,
    check_bool,
    check_compare,
    check_int,
    check_number,
    check_option,
    check_type,
)
from ..runtime.spec import CLASS_SCHEMES, EEGSpec, FaceSpec, GraphSpec, ModelSpec

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

# The spec's defaults: the spec-tied fields' defaults come from the one definition of each size.
_EEG, _FACE, _GRAPH = EEGSpec(), FaceSpec(), GraphSpec()

_INT_FIELDS = (
    "d_model", "n_heads", "ffn_dim", "n_layers", "n_classes", "frames_per_window",
    "n_eeg_channels", "eeg_samples", "frame_size", "tokens_per_frame", "top_k", "mil_hidden",
    "n_queries",
)  # fmt: skip


@dataclass(frozen=True)
class ModelConfig(JsonDataclass):
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

    The spec-tied fields (:data:`SPEC_FIELDS`) default to the default :class:`ModelSpec`'s values
    (not re-declared here); :meth:`from_spec` sets them from any spec, and a config file or
    checkpoint whose values disagree with its spec is refused (:meth:`check_spec`).
    """

    _json_what = "model config"

    d_model: int = 768
    n_heads: int = 12
    ffn_dim: int = 2048
    n_layers: int = 2
    dropout: float = 0.2
    cls_dropout: float = 0.1
    n_classes: int = len(CLASS_SCHEMES["deap4"])
    frames_per_window: int = _FACE.frames_per_window
    n_eeg_channels: int = _EEG.n_channels
    eeg_samples: int = _EEG.window_samples
    eeg_sfreq: float = _EEG.sfreq
    frame_size: int = _FACE.frame_size
    tokens_per_frame: int = _GRAPH.tokens_per_frame
    modality: Modality = "both"
    eeg_tokens: EEGTokens = "mlp"
    fusion: Fusion = "transformer"
    mil: MilMode = "topk"
    top_k: int = _GRAPH.top_k
    mil_hidden: int = 128
    visual_integration: VisualIntegration = "cross-attention"
    n_queries: int = 64
    backbone_dir: str = DEFAULT_BACKBONE
    freeze_backbone: bool = False

    def __post_init__(self) -> None:
        for name in _INT_FIELDS:
            check_int(name, getattr(self, name), low=1)
        for name in ("dropout", "cls_dropout"):
            check_number(name, getattr(self, name), low=0, high=1, high_open=True)
        check_number("eeg_sfreq", self.eeg_sfreq, low=0, low_open=True)  # Hz
        check_option("modality", self.modality, MODALITIES)
        check_option("eeg_tokens", self.eeg_tokens, EEG_TOKENS)
        check_option("fusion", self.fusion, FUSIONS)
        check_option("mil", self.mil, MIL_MODES)
        check_option("visual_integration", self.visual_integration, VISUAL_INTEGRATIONS)
        check_type("backbone_dir", self.backbone_dir, str, "a non-empty path string", nonempty=True)
        check_bool("freeze_backbone", self.freeze_backbone)
        check_compare("n_heads", self.n_heads, "divides", "d_model", self.d_model)
        check_compare("top_k", self.top_k, "<=", "frames_per_window", self.frames_per_window)
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

        A spec-tied field (:data:`SPEC_FIELDS`) in ``overrides`` (a config file's ``[model]``
        table that still sets ``frame_size = 224``) is accepted when it equals the spec's value
        and refused when it differs: change the spec instead, so the model and its input
        contract cannot disagree.
        """
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise MilmerInputError(f"Invalid override(s): unknown ModelConfig field(s) {', '.join(unknown)}.")
        tied = {
            "n_classes": spec.n_classes,
            "frames_per_window": spec.face.frames_per_window,
            "n_eeg_channels": spec.eeg.n_channels,
            "eeg_samples": spec.eeg.window_samples,
            "eeg_sfreq": float(spec.eeg.sfreq),
            "frame_size": spec.face.frame_size,
            "tokens_per_frame": spec.graph.tokens_per_frame,
            "top_k": spec.graph.top_k,
        }
        conflicts = sorted(n for n in set(overrides) & set(tied) if overrides[n] != tied[n])
        if conflicts:
            raise MilmerInputError(
                f"Invalid override(s) {', '.join(f'{n!r} = {overrides[n]!r} (spec: {tied[n]!r})' for n in conflicts)}: "
                "these come from the model spec (face.frames_per_window, eeg channels/window/sfreq, "
                "face.frame_size, graph.tokens_per_frame, graph.top_k, class_names); change the spec instead."
            )
        return cls(**{**overrides, **tied})

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

    # serialisation (to_dict, to_json, from_dict, from_json, save, load): JsonDataclass
