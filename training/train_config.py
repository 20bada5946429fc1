"""How a training run is set up: one frozen, validated dataclass, read from JSON or TOML.

Files hold values only (no code, no paths to Python objects); unknown keys are errors. CLI
overrides ``key=value`` (dotted for nested tables: ``model.d_model=64``,
``spec.eeg.ica.enabled=false``) are applied on top. The resolved config is written into the run
folder as ``config.json``, so every run says exactly how it was made.

Defaults are the paper's training settings: AdamW, lr 1e-4, cosine decay to 0.1 x lr, batch 14,
100 epochs, seed 0. The evaluation protocol defaults to ``'trial'`` (no trial on both sides of a
split); ``'segment'`` splits 3-s windows at random, so windows of one trial land in both train and
test and its figures are inflated (every report says so).
This module imports no torch: a config can be checked before a long run starts.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..runtime.jsonable import JsonDataclass
from ..runtime.check import (
    MilmerInputError,
    check_compare,
    check_int,
    check_number,
    check_option,
    check_sequence,
    check_type,
)
from ..runtime.spec import CLASS_SCHEMES, ModelSpec
from .model_config import ModelConfig
from .splits import PROTOCOLS

__all__ = [
    "PROTOCOLS",
    "AMP_MODES",
    "DEVICES",
    "KEEP_MODES",
    "PRECOMPUTE_MODES",
    "EEG_AUGMENTS",
    "PRECOMPUTE_MAX_BYTES",
    "CONFIG_SUFFIXES",
    "TrainConfig",
    "load_train_config",
    "apply_overrides",
    "parse_overrides",
    "config_keys_help",
]

Protocol = Literal["segment", "trial", "loso"]
AmpMode = Literal["auto", "bf16", "fp16", "off"]
Precompute = Literal["auto", "off"]
Device = Literal["auto", "cpu", "cuda"]
Keep = Literal["best", "last"]

AMP_MODES: tuple[str, ...] = ("auto", "bf16", "fp16", "off")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
KEEP_MODES: tuple[str, ...] = ("best", "last")
PRECOMPUTE_MODES: tuple[str, ...] = ("auto", "off")
#: Values of ``eeg_augment`` (see :mod:`milmer.training.augment`).
EEG_AUGMENTS: tuple[str, ...] = ("none", "ft-surrogate")
#: Largest size of precomputed backbone tokens kept in memory ('auto' falls back beyond it).
PRECOMPUTE_MAX_BYTES = 8 * 1024**3
CONFIG_SUFFIXES: tuple[str, ...] = (".json", ".toml")

#: Fields holding file-system paths: relative paths in a config file are read from its folder.
PATH_FIELDS: tuple[str, ...] = ("data_root", "cache_dir", "out_dir")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _subject_number(name: str, value: Any) -> int:
    return check_int(name, value, low=1)


def _fold_index(name: str, value: Any) -> int:
    return check_int(name, value, low=0)


def _check_subjects(name: str, value: Any) -> tuple[int, ...]:
    return check_sequence(name, value, item=_subject_number, what="a list of subject numbers")


def _check_path(name: str, value: Any, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    check_type(name, value, str, "a path string or null" if optional else "a non-empty path string", nonempty=True)


@dataclass(frozen=True)
class TrainConfig(JsonDataclass):
    """Everything a ``milmer train`` run needs (defaults: the paper's settings).

    Data
        data_root:        DEAP folder (``data_preprocessed_python/``, ``face_video/``, ratings CSV)
        cache_dir:        root of the preprocessed-window cache, shared by runs and kept apart
                          from them (default ``$MILMER_CACHE_DIR``, else
                          ``~/.cache/milmer/windows``); preprocessing all of DEAP takes hours
        out_dir:          the run folder (folds, checkpoints, report); re-running with the same
                          config resumes it, a different config is refused
        subjects, exclude_subjects: which participants (default all on disk; the paper drops 11)
        baseline_s, offset_s: DEAP's 3-s pre-trial baseline; video time at EEG t = 0
        label_scheme:     one of ``spec.CLASS_SCHEMES``
        spec:             overrides of the input contract, nested like ``ModelSpec.to_dict()``
                          (e.g. ``{"eeg": {"ica": {"enabled": false}}}``)
    Protocol
        protocol:         'segment' (windows at random: inflated), 'trial' (trials kept whole),
                          'loso' (leave one subject out; one fold per subject)
        k_folds:          folds for 'segment'/'trial' (ignored by 'loso')
        folds_to_run:     None (all), N (the first N folds) or a list of fold indices (0-based)
        val_fraction:     share of each fold's training groups (windows / trials per subject /
                          subjects) held out to pick the best epoch (0 needs keep 'last')
    Optimisation
        epochs, batch_size, lr, weight_decay (AdamW), min_lr_ratio (cosine decay to
        ``min_lr_ratio * lr`` at the last step), warmup_epochs (linear warm-up), grad_accum
        (micro-batches per optimiser step), grad_clip (max grad norm; 0 = off)
        amp:              'auto' (bf16 where the GPU supports it, else fp16; never on CPU), 'bf16',
                          'fp16' or 'off'; autocast runs on CUDA only
        keep:             which checkpoint is tested and exported: 'best' (by validation
                          macro-F1) or 'last'
        precompute_tokens: 'auto' runs a frozen backbone once over every window and trains the
                          fusion on the stored tokens (when they fit in 8 GiB of memory; the
                          same numbers as running it every step, far faster); 'off' never does
        eeg_augment:      'none' (the paper) or 'ft-surrogate': training windows' EEG replaced by
                          Fourier-transform surrogates (same band power, random phases), so the
                          network cannot memorise windows by their raw samples
    Machine
        seed, workers (DataLoader/cache workers; None = automatic), device ('auto' = CUDA if
        available)
    Model
        model:            ``ModelConfig`` overrides (e.g. ``{"d_model": 64, "backbone_dir": ...}``)
    """

    _json_what = "training config"
    _json_required = ("data_root", "out_dir")
    _json_tuples = False  # __post_init__ reads lists (subjects, folds) itself

    data_root: str
    out_dir: str
    cache_dir: str | None = None
    label_scheme: str = "deap4"
    spec: Mapping[str, Any] = field(default_factory=dict)
    subjects: tuple[int, ...] | None = None
    exclude_subjects: tuple[int, ...] = ()
    baseline_s: float = 3.0
    offset_s: float = 0.0
    protocol: Protocol = "trial"
    k_folds: int = 5
    folds_to_run: int | tuple[int, ...] | None = None
    val_fraction: float = 0.1
    epochs: int = 100
    batch_size: int = 14
    lr: float = 1e-4
    weight_decay: float = 0.01
    min_lr_ratio: float = 0.1
    warmup_epochs: int = 0
    grad_accum: int = 1
    grad_clip: float = 0.0
    amp: AmpMode = "auto"
    keep: Keep = "best"
    precompute_tokens: Precompute = "auto"
    eeg_augment: str = "none"
    seed: int = 0
    workers: int | None = None
    device: Device = "auto"
    model: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_path("data_root", self.data_root)
        _check_path("out_dir", self.out_dir)
        _check_path("cache_dir", self.cache_dir, optional=True)
        check_option("label_scheme", self.label_scheme, tuple(CLASS_SCHEMES))
        check_option("protocol", self.protocol, PROTOCOLS)
        check_option("amp", self.amp, AMP_MODES)
        check_option("keep", self.keep, KEEP_MODES)
        check_option("precompute_tokens", self.precompute_tokens, PRECOMPUTE_MODES)
        check_option("eeg_augment", self.eeg_augment, EEG_AUGMENTS)
        check_option("device", self.device, DEVICES)
        if self.subjects is not None:
            object.__setattr__(self, "subjects", _check_subjects("subjects", self.subjects))
        object.__setattr__(self, "exclude_subjects", _check_subjects("exclude_subjects", self.exclude_subjects))
        check_number("baseline_s", self.baseline_s, low=0.0)
        check_number("offset_s", self.offset_s, low=float("-inf"))
        check_int("k_folds", self.k_folds, low=2)
        self._check_folds_to_run()
        check_number("val_fraction", self.val_fraction, low=0.0, high=0.5)
        if self.val_fraction == 0 and self.keep == "best":
            raise MilmerInputError(
                "Invalid combination: keep 'best' picks the epoch on a validation split, so it needs "
                f"val_fraction > 0, got val_fraction {self.val_fraction!r}; use keep 'last' to train without one."
            )
        check_int("epochs", self.epochs, low=1)
        check_int("batch_size", self.batch_size, low=1)
        check_number("lr", self.lr, low=0.0, low_open=True)
        check_number("weight_decay", self.weight_decay, low=0.0)
        check_number("min_lr_ratio", self.min_lr_ratio, low=0.0, high=1.0)
        check_int("warmup_epochs", self.warmup_epochs, low=0)
        check_compare("warmup_epochs", self.warmup_epochs, "<", "epochs", self.epochs)
        check_int("grad_accum", self.grad_accum, low=1)
        check_number("grad_clip", self.grad_clip, low=0.0)
        check_int("seed", self.seed, low=0)
        if self.workers is not None:
            check_int("workers", self.workers, low=0)
        for name in ("spec", "model"):
            check_type(name, getattr(self, name), Mapping, "a table of overrides")
        object.__setattr__(self, "spec", dict(self.spec))
        object.__setattr__(self, "model", dict(self.model))
        # Build both now so a bad spec or model override fails before any data is read.
        self.model_config()

    def _check_folds_to_run(self) -> None:
        value = self.folds_to_run
        if value is None:
            return
        if _is_int(value):
            check_int("folds_to_run", value, low=1)
            return
        what = "null (all folds), a count N (the first N) or a non-empty list of fold indices"
        check_sequence("folds_to_run", value, nonempty=True, what=what)
        indices = check_sequence("folds_to_run", value, item=_fold_index, unique=True, what="distinct fold indices >= 0")
        object.__setattr__(self, "folds_to_run", indices)

    # ------------------------------------------------------------------ derived objects
    def model_spec(self) -> ModelSpec:
        """The input contract: the label scheme's default spec with :attr:`spec` overrides."""
        base = ModelSpec.for_scheme(self.label_scheme).to_dict()
        if "label_scheme" in self.spec or "class_names" in self.spec:
            raise MilmerInputError(
                "Invalid value for 'spec': set the classes with 'label_scheme', not 'spec.label_scheme'/'spec.class_names'."
            )
        return ModelSpec.from_dict(_merge(base, self.spec, "spec"))

    def model_config(self) -> ModelConfig:
        """The network's config: sizes from :meth:`model_spec`, the rest from :attr:`model`."""
        return ModelConfig.from_spec(self.model_spec(), **self.model)

    @property
    def cache_path(self) -> Path:
        """The cache root: ``cache_dir``, else :func:`milmer.training.window_cache.default_cache_root`."""
        from .window_cache import default_cache_root

        return Path(self.cache_dir) if self.cache_dir is not None else default_cache_root()

    def fold_indices(self, n_folds: int) -> list[int]:
        """The fold indices this run trains, given the protocol produced ``n_folds`` folds."""
        if self.folds_to_run is None:
            return list(range(n_folds))
        if isinstance(self.folds_to_run, int):
            return list(range(min(self.folds_to_run, n_folds)))
        for i, index in enumerate(self.folds_to_run):
            check_int(f"folds_to_run[{i}]", index, high=n_folds - 1, hint=f"protocol {self.protocol!r} gave {n_folds} folds")
        return list(self.folds_to_run)

    # ------------------------------------------------------------------ serialisation
    # to_dict, to_json, from_dict (unknown keys are errors, missing ones but data_root/out_dir
    # take defaults), save (atomic): JsonDataclass.
    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def _default_text(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def config_keys_help() -> list[str]:
    """One ``key = default`` line per :class:`TrainConfig` field (JSON values; required keys say
    so), then one per settable ``model.`` key (:class:`ModelConfig` fields the spec does not
    fix): the list ``milmer train --help`` shows, generated from the dataclasses so it cannot
    drift from them. Aligned, except a line that would not fit 80 columns."""
    from .model_config import SPEC_FIELDS

    lines = []
    for prefix, fields in (
        ("", dataclasses.fields(TrainConfig)),
        ("model.", [f for f in dataclasses.fields(ModelConfig) if f.name not in SPEC_FIELDS]),
    ):
        width = max(len(prefix + f.name) for f in fields)
        for f in fields:
            line = f"{prefix + f.name:<{width}} = {_default_text(f)}"
            lines.append(line if len(line) <= 78 else f"{prefix + f.name} = {_default_text(f)}")  # 80-col help
    lines.append("spec.SECTION.KEY: input-contract fields, e.g. spec.eeg.ica.enabled = false")
    return lines


def _merge(base: dict[str, Any], changes: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """``base`` with ``changes`` merged in recursively; a key ``base`` lacks is an error."""
    out = dict(base)
    for key, value in changes.items():
        if key not in base:
            raise MilmerInputError(
                f"Invalid override {prefix}.{key}: unknown key; expected one of {', '.join(sorted(base))}."
            )
        if isinstance(base[key], dict) and isinstance(value, Mapping):
            out[key] = _merge(base[key], value, f"{prefix}.{key}")
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------------- files and overrides
def _read_file(path: Path) -> dict[str, Any]:
    from ..runtime.check import check_path_exists, check_suffix

    check_path_exists("config", path)
    suffix = check_suffix("config", path, CONFIG_SUFFIXES)
    text = path.read_text()
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise MilmerInputError(f"Invalid training config {str(path)!r}: not valid JSON ({err}).") from None
    else:
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise MilmerInputError(f"Invalid training config {str(path)!r}: not valid TOML ({err}).") from None
    if not isinstance(data, dict):
        raise MilmerInputError(f"Invalid training config {str(path)!r}: expected a table of values, got {type(data).__name__}.")
    return data


def _parse_value(text: str) -> Any:
    """A CLI value: JSON when it parses (numbers, true/false/null, lists, tables), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``["epochs=5", "model.d_model=64"]`` -> ``{"epochs": 5, "model": {"d_model": 64}}``."""
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise MilmerInputError(
                f"Invalid override {item!r}: expected key=value (dotted keys for tables, e.g. model.d_model=64)."
            )
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise MilmerInputError(f"Invalid override {item!r}: {part!r} was already given a value.")
            node = child
        node[parts[-1]] = _parse_value(value.strip())
    return out


def _deep_update(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_update(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _resolve_paths(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Relative paths (top-level path fields and ``model.backbone_dir``) read from ``folder``."""
    out = dict(data)
    for name in PATH_FIELDS:
        if isinstance(out.get(name), str) and out[name] and not Path(out[name]).is_absolute():
            out[name] = str(folder / out[name])
    model = out.get("model")
    if isinstance(model, Mapping) and isinstance(model.get("backbone_dir"), str):
        if model["backbone_dir"] and not Path(model["backbone_dir"]).is_absolute():
            out["model"] = {**model, "backbone_dir": str(folder / model["backbone_dir"])}
    return out


def apply_overrides(cfg: TrainConfig, overrides: Sequence[str]) -> TrainConfig:
    """``cfg`` with CLI ``key=value`` overrides applied (nested tables merge, values replace)."""
    merged = _deep_update(cfg.to_dict(), _resolve_paths(parse_overrides(overrides), Path.cwd()))
    return TrainConfig.from_dict(merged)


def load_train_config(
    path: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    **values: Any,
) -> TrainConfig:
    """Read a JSON/TOML config (relative paths from its folder), then apply ``values`` and the
    CLI ``overrides`` (relative paths from the working directory)."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        data = _resolve_paths(_read_file(path), path.resolve().parent)
    data = _deep_update(data, _resolve_paths(values, Path.cwd()))
    data = _deep_update(data, _resolve_paths(parse_overrides(overrides), Path.cwd()))
    return TrainConfig.from_dict(data)
