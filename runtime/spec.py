"""The model's input contract: one frozen, JSON-serialisable spec.

Everything a trained model expects of its inputs lives here: EEG channels and their order,
sampling rate, window, filter and ICA settings, frames per window, crop rule, frame size,
mean/std, which face detector made the crops, class names, the ONNX graphs' I/O names and the
versions that produced it. Training writes it next to every checkpoint, export embeds it in both
ONNX graphs' ``metadata_props`` and in ``spec.json``; the runtime reads it back and refuses a
model whose pieces disagree. It is (de)serialised field by field, never with ``eval``/pickle.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from .choices import DETECTORS as _DETECTORS
from .jsonable import JsonDataclass
from .check import (
    check_compare,
    check_equal,
    check_int,
    check_nonempty,
    check_number,
    check_option,
    check_positive,
    check_sequence,
    check_unique,
    check_whole,
)

__all__ = [
    "SPEC_VERSION",
    "DEAP_CHANNELS",
    "CLASS_SCHEMES",
    "DETECTORS",
    "REFERENCES",
    "LINE_NOISE",
    "DETECTOR_SHA256",
    "ICA_METHODS",
    "PROVENANCES",
    "ICASpec",
    "EEGSpec",
    "FaceSpec",
    "GraphSpec",
    "ModelSpec",
]

SPEC_VERSION = 1

#: DEAP's 32 EEG channels in the Geneva order used by ``data_preprocessed_python``.
DEAP_CHANNELS: tuple[str, ...] = (
    "Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1",
    "Oz", "Pz", "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz", "C4", "T8", "CP6", "CP2",
    "P4", "P8", "PO4", "O2",
)  # fmt: skip

#: Label schemes and their class names (order = class index).
CLASS_SCHEMES: dict[str, tuple[str, ...]] = {
    "deap4": ("HAHV", "HALV", "LAHV", "LALV"),
    "deap3-valence": ("low", "medium", "high"),
    "deap3-arousal": ("low", "medium", "high"),
    "deap2-valence": ("low", "high"),
    "deap2-arousal": ("low", "high"),
}

#: Face detectors a spec may name (defined with the CLI's other choices, numpy-free).
DETECTORS: tuple[str, ...] = _DETECTORS

#: SHA-256 of each detector's graph file (checked when the detector loads it): the crops a model
#: was trained on come from exactly this graph. ``opencv-haar`` uses OpenCV's own cascade file.
DETECTOR_SHA256: dict[str, str] = {
    "blazeface-short-range": "f980cae3469cda87585de317e71f58e04ebcf8a232efbba2ba1a7230e1484e36",
}

ImageNetMean = (0.485, 0.456, 0.406)
ImageNetStd = (0.229, 0.224, 0.225)


def _check_spec_version(version: Any) -> None:
    check_equal("spec_version", version, SPEC_VERSION, why="the spec version this milmer reads",
                hint="re-export the model with a matching milmer")


def _milmer_version() -> str:
    try:
        from importlib.metadata import version

        return version("milmer")
    except Exception:  # not installed (running from a source tree)
        return "0+unknown"


#: An ICA spec written before ``tol`` existed: FastICA at scikit-learn's default tolerance.
_ICA_LEGACY = {"tol": 1e-4}
#: ICA solvers (``ICASpec.method``), both through ``mne.preprocessing.ICA``.
ICA_METHODS: tuple[str, ...] = ("picard", "fastica")


@dataclass(frozen=True)
class ICASpec(JsonDataclass):
    """ICA artefact removal (Picard-O by default, or FastICA), fitted on the continuous (band-passed) recording.

    Components whose time course correlates with the EOG channels (or, when a file has none,
    with the frontal ``proxy_channels``) beyond ``eog_threshold`` (z-score, MNE's
    ``find_bads_eog``) and with an absolute correlation of at least ``min_correlation`` are
    excluded (the z-score alone flags a pure-noise component now and then; blinks score > 0.9).

    ``max_fit_s`` bounds the fit on long recordings: ICA is fitted on every k-th sample, k the
    smallest that leaves at most ``max_fit_s`` seconds of samples (the whole recording's span, so
    blinks from all of it), then applied to every sample. A 10 min recording is fitted like a
    60 s one (k = 10 at 128 Hz) instead of ~10x longer; ``None`` fits every sample.

    ``method``: ``'picard'`` (default) is Picard-O (Ablin et al. 2018, python-picard through MNE,
    ``fit_params=dict(ortho=True, extended=True)``): the same orthogonal, density-adaptive contrast
    as FastICA, solved by preconditioned L-BFGS. It stops when the gradient's largest entry is
    below ``tol``. ``'fastica'`` is scikit-learn's parallel FastICA (logcosh), which stops when the
    unmixing vectors stop moving (``tol`` on ``1 - |<w_new, w_old>|``): on EEG with many
    near-Gaussian sources (any mix of pink noise and rhythms) the contrast is flat along rotations
    among those sources, the vectors keep turning and FastICA runs to ``max_iter`` without
    converging (5 s for 30 s of 32-channel EEG), while the gradient there is ~0 and Picard stops
    (16-22 iterations on the demo's and the tests' EEG). MNE's rule of thumb: ``tol_fastica ==
    tol_picard ** 2``. Specs saved before ``tol`` existed load as ``'fastica'`` with scikit-learn's
    default ``tol`` 1e-4, as they were fitted.
    """

    _json_what = "model spec"
    _json_legacy = _ICA_LEGACY  # a spec saved before ``tol`` existed: FastICA at scikit-learn's tolerance

    enabled: bool = True
    method: Literal["picard", "fastica"] = "picard"
    n_components: int | float | None = None  # None: the data's rank
    max_iter: int = 1000
    tol: float = 1e-3
    random_state: int = 0
    eog_threshold: float = 3.0
    min_correlation: float = 0.7
    proxy_channels: tuple[str, ...] = ("Fp1", "Fp2")
    max_excluded: int = 3
    max_fit_s: float | None = 60.0

    def __post_init__(self) -> None:
        check_option("ica.method", self.method, ICA_METHODS)
        check_number("ica.tol", self.tol, low=0, high=1, low_open=True, high_open=True)
        check_number("ica.max_fit_s", self.max_fit_s, low=0, low_open=True, allow_none=True)
        check_int("ica.max_iter", self.max_iter, low=1)
        check_number("ica.eog_threshold", self.eog_threshold, low=0, low_open=True)
        check_number("ica.min_correlation", self.min_correlation, low=0, high=1, high_open=True)
        check_int("ica.max_excluded", self.max_excluded, low=0)
        object.__setattr__(self, "proxy_channels", tuple(self.proxy_channels))


#: ``EEGSpec.reference`` values: ``'average'`` re-references the spec's channels to their mean
#: (DEAP's preprocessed data is average-referenced); ``'as-recorded'`` keeps the file's reference.
REFERENCES: tuple[str, ...] = ("average", "as-recorded")
#: ``EEGSpec.line_noise`` values: ``'auto'`` notches the mains frequency the file states (FIF's
#: ``line_freq``) or, failing that, a 50 or 60 Hz peak found in the recording; ``'50'``/``'60'``
#: always notch that frequency (and its harmonics below Nyquist); ``'off'`` never notches.
LINE_NOISE: tuple[str, ...] = ("auto", "50", "60", "off")
#: What a spec written before ``reference``/``line_noise`` existed was trained with.
_EEG_LEGACY = {"reference": "as-recorded", "line_noise": "off"}


@dataclass(frozen=True)
class EEGSpec(JsonDataclass):
    """EEG input: ``(W, n_channels, window_samples)`` float32 windows.

    Preprocessing order (``runtime/eeg/preprocess.py``): pick and order ``channels``,
    re-reference (``reference``), remove mains noise (``line_noise``), resample to ``sfreq``,
    band-pass ``l_freq``-``h_freq``, ICA (``ica``), cut ``window_s`` windows. DEAP training and
    inference run the same code with the same spec.
    """

    _json_what = "model spec"
    _json_nested = {"ica": ICASpec}
    _json_legacy = _EEG_LEGACY  # a spec saved before these keys existed: a model trained without them

    channels: tuple[str, ...] = DEAP_CHANNELS
    sfreq: float = 128.0
    window_s: float = 3.0
    l_freq: float = 1.0
    h_freq: float = 50.0
    eog_channels: tuple[str, ...] = ("EOG", "hEOG", "vEOG", "EOG1", "EOG2", "HEOG", "VEOG")
    ica: ICASpec = field(default_factory=ICASpec)
    reference: str = "average"
    line_noise: str = "auto"

    def __post_init__(self) -> None:
        check_option("eeg.reference", self.reference, REFERENCES)
        check_option("eeg.line_noise", self.line_noise, LINE_NOISE)
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "eog_channels", tuple(self.eog_channels))
        check_nonempty("eeg.channels", self.channels, "channel name")
        check_unique("eeg.channels", [c.lower() for c in self.channels], "channel name (in any case)")
        check_number("eeg.sfreq", self.sfreq, low=0, low_open=True)
        check_whole("eeg.window_s", self.window_s, self.sfreq, "samples", tol=1e-9)
        check_number("eeg.l_freq", self.l_freq, low=0)
        check_compare("eeg.h_freq", self.h_freq, ">", "eeg.l_freq", self.l_freq)
        check_compare("eeg.h_freq", self.h_freq, "<", "eeg.sfreq/2", self.sfreq / 2, hint="the Nyquist frequency")

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.sfreq))


@dataclass(frozen=True)
class FaceSpec(JsonDataclass):
    """Face input: ``frames_per_window`` crops per EEG window, ``(H, W, 3)`` RGB uint8.

    Crop rule: the detector box grows by ``box_expand`` of its size (+10 %: half on each side,
    so 5 % per side), is centre-padded with black to a square and resized to ``frame_size``. Normalisation
    ``(x / 255 - mean) / std`` happens only when frames go into the backbone.
    """

    _json_what = "model spec"

    frames_per_window: int = 10
    frame_size: int = 224
    box_expand: float = 0.10
    padding: Literal["center-black"] = "center-black"
    mean: tuple[float, float, float] = ImageNetMean
    std: tuple[float, float, float] = ImageNetStd
    detector: str = "blazeface-short-range"
    min_confidence: float = 0.5

    @property
    def detector_sha256(self) -> str | None:
        """SHA-256 of the detector's graph file (``DETECTOR_SHA256``); None for OpenCV's cascade."""
        return DETECTOR_SHA256.get(self.detector)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        check_int("face.frames_per_window", self.frames_per_window, low=1)
        check_int("face.frame_size", self.frame_size, low=1)
        check_number("face.box_expand", self.box_expand, low=0)
        check_option("face.padding", self.padding, ("center-black",))
        check_option("face.detector", self.detector, DETECTORS)
        check_sequence("face.mean", self.mean, length=3)
        check_sequence("face.std", self.std, length=3, item=check_positive)
        check_number("face.min_confidence", self.min_confidence, low=0, high=1, low_open=True, high_open=True)


@dataclass(frozen=True)
class GraphSpec(JsonDataclass):
    """Names and sizes of the two exported graphs' inputs and outputs.

    ``swin.onnx``:   frames (N, 3, H, W) float32 -> tokens (N, tokens_per_frame, token_dim)
    ``fusion.onnx``: eeg (B, C, T), tokens (B, F, tokens_per_frame, token_dim)
                     -> logits (B, n_classes), probabilities (B, n_classes),
                        mil_weights (B, F), selected (B, top_k) int64
    """

    _json_what = "model spec"

    backbone_input: str = "frames"
    backbone_output: str = "tokens"
    fusion_inputs: tuple[str, ...] = ("eeg", "tokens")
    fusion_outputs: tuple[str, ...] = ("logits", "probabilities", "mil_weights", "selected")
    tokens_per_frame: int = 49
    token_dim: int = 768
    top_k: int = 3
    opset: int = 18  # the dynamo exporter writes 18; LayerNormalization is a single node (>= 17)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fusion_inputs", tuple(self.fusion_inputs))
        object.__setattr__(self, "fusion_outputs", tuple(self.fusion_outputs))
        for name in ("tokens_per_frame", "token_dim", "top_k", "opset"):
            check_int(f"graph.{name}", getattr(self, name), low=1)


#: ``ModelSpec.provenance`` values, where a model's weights came from: ``'trained'`` (``milmer
#: train`` on recorded data, then ``milmer export``), ``'demo'`` (``milmer demo``: the paper's
#: architecture at toy size trained on SYNTHETIC data) and ``'benchmark'`` (``milmer bench``: RANDOM
#: weights, for timing only). Outputs name it, and flag the last two.
PROVENANCES: tuple[str, ...] = ("trained", "demo", "benchmark")
Provenance = Literal["trained", "demo", "benchmark"]
#: A spec written before ``provenance`` existed says nothing about it (None): the runtime infers it
#: from the model folder as it did then (:func:`milmer.runtime.demo_model.model_provenance`).
_MODEL_LEGACY: dict[str, Any] = {"provenance": None}


@dataclass(frozen=True)
class ModelSpec(JsonDataclass):
    """The whole input contract of a Milmer model (see module docstring), and where its weights
    came from (``provenance``, one of :data:`PROVENANCES`; None only in specs written before the
    field existed)."""

    _json_what = "model spec"
    _json_nested = {"eeg": EEGSpec, "face": FaceSpec, "graph": GraphSpec}
    _json_legacy = _MODEL_LEGACY

    eeg: EEGSpec = field(default_factory=EEGSpec)
    face: FaceSpec = field(default_factory=FaceSpec)
    graph: GraphSpec = field(default_factory=GraphSpec)
    label_scheme: str = "deap4"
    class_names: tuple[str, ...] = CLASS_SCHEMES["deap4"]
    spec_version: int = SPEC_VERSION
    versions: dict[str, str] = field(default_factory=lambda: {"milmer": _milmer_version()})
    provenance: Provenance | None = "trained"

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(self.class_names))
        check_option("label_scheme", self.label_scheme, tuple(CLASS_SCHEMES))
        if self.provenance is not None:
            check_option("provenance", self.provenance, PROVENANCES)
        check_equal("class_names", self.class_names, CLASS_SCHEMES[self.label_scheme],
                    why=f"the classes of label scheme {self.label_scheme!r}")
        check_compare("graph.top_k", self.graph.top_k, "<=", "face.frames_per_window", self.face.frames_per_window)
        _check_spec_version(self.spec_version)

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def for_scheme(cls, label_scheme: str, **kwargs: Any) -> ModelSpec:
        """A default spec for ``label_scheme`` with its class names filled in."""
        check_option("label_scheme", label_scheme, tuple(CLASS_SCHEMES))
        return cls(label_scheme=label_scheme, class_names=CLASS_SCHEMES[label_scheme], **kwargs)

    def replace(self, **changes: Any) -> ModelSpec:
        """A copy with top-level fields changed (use ``dataclasses.replace`` on sub-specs)."""
        return dataclasses.replace(self, **changes)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    # ------------------------------------------------------------------ serialisation
    # to_dict / to_json / save / from_json: JsonDataclass (canonical JSON, sorted keys).
    @classmethod
    def from_dict(cls, data: Any, *, prefix: str = "") -> ModelSpec:
        """Build a spec from :meth:`to_dict` output; unknown or missing keys are errors, and a
        spec of another ``spec_version`` is refused before its keys are looked at."""
        if isinstance(data, dict):
            _check_spec_version(data.get("spec_version"))
        return super().from_dict(data, prefix=prefix)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, param: str = "spec") -> ModelSpec:
        return super().load(path, param=param)

    def fingerprint(self, *, include_versions: bool = False) -> str:
        """sha256 of the canonical JSON (versions excluded by default): a cache key."""
        d = self.to_dict()
        if not include_versions:
            d.pop("versions")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()

    def preprocessing_fingerprint(self) -> str:
        """sha256 over only what preprocessing depends on (EEG and face sub-specs)."""
        d = {"eeg": self.to_dict()["eeg"], "face": self.to_dict()["face"]}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()
