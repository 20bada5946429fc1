"""Checkpoints without pickle: tensors in safetensors files, everything else in JSON.

A checkpoint directory holds::

    model.safetensors           every weight, the Swin backbone's included
    config.json                 ModelConfig
    spec.json                   ModelSpec (the input contract)
    backbone_config.json        the Swin architecture, so loading needs no backbone_dir
    state.json                  optional JSON of the caller's (epoch, metrics, ...)
    training_state.safetensors  optional, for resuming: optimizer/scheduler/RNG tensors
    training_state.json         the rest of that state, tensors replaced by references

Nothing is ever unpickled: ``load_*`` read safetensors and JSON only. Each file is written
atomically (temporary name, then rename).
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from ..runtime.check import MilmerInputError, check_equal, check_path_exists, check_requires
from ..runtime.spec import ModelSpec
from .backbone import swin_from_config
from .model_config import ModelConfig
from .model import MilmerModel

__all__ = [
    "MODEL_FILE",
    "CONFIG_FILE",
    "SPEC_FILE",
    "BACKBONE_CONFIG_FILE",
    "STATE_FILE",
    "TRAINING_TENSORS_FILE",
    "TRAINING_STATE_FILE",
    "TrainingState",
    "save_checkpoint",
    "load_checkpoint",
    "save_training_state",
    "load_training_state",
    "capture_rng_state",
    "restore_rng_state",
]

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
SPEC_FILE = "spec.json"
BACKBONE_CONFIG_FILE = "backbone_config.json"
STATE_FILE = "state.json"
TRAINING_TENSORS_FILE = "training_state.safetensors"
TRAINING_STATE_FILE = "training_state.json"
TRAINING_STATE_FORMAT = 1

# Markers of the JSON encoding of values JSON has no type for (see _encode).
_TENSOR, _NDARRAY, _TUPLE, _DICT = "__tensor__", "__ndarray__", "__tuple__", "__dict__"
_MARKERS = (_TENSOR, _NDARRAY, _TUPLE, _DICT)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_json(path: Path, data: Any, name: str) -> None:
    try:
        text = json.dumps(data, indent=2, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise MilmerInputError(f"Invalid value for {name!r}: not JSON-serialisable ({err}).") from None
    _atomic_write_text(path, text + "\n")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise MilmerInputError(f"Invalid checkpoint file {str(path)!r}: not valid JSON ({err}).") from None


def _require_files(directory: Path, names: tuple[str, ...], what: str, name: str = "checkpoint") -> None:
    check_path_exists(name, directory, "dir")
    missing = [n for n in names if not (directory / n).is_file()]
    check_requires(
        name, str(directory), f"the files of a {what} ({', '.join(names)})", not missing,
        f"a folder without {', '.join(missing)}",
    )


# ---------------------------------------------------------------------------------- model
def save_checkpoint(
    directory: str | os.PathLike[str],
    model: MilmerModel,
    config: ModelConfig,
    spec: ModelSpec,
    *,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` with its config, spec and backbone architecture to ``directory``.

    ``config`` must be the model's own and agree with ``spec`` (frames, EEG channels/samples,
    frame size, tokens per frame and size, top-K, classes). ``extra`` (JSON-able) goes to
    ``state.json``; without it a stale ``state.json`` is removed. Returns the directory.
    """
    if config != model.config:
        # Only the fields that differ: the whole config would bury them.
        own, given = asdict(model.config), asdict(config)
        changed = [k for k in own if own[k] != given.get(k)]
        check_equal(
            "config", {k: given.get(k) for k in changed}, {k: own[k] for k in changed},
            why="the model's own config, model.config",
        )
    config.check_spec(spec)
    if spec.graph.token_dim != model.token_dim:
        raise MilmerInputError(
            f"Model and spec disagree: the backbone's tokens have size {model.token_dim}, "
            f"spec.graph.token_dim is {spec.graph.token_dim}."
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (MODEL_FILE + ".tmp")
    # save_model drops duplicate names of shared/tied tensors and makes tensors contiguous.
    save_model(
        model, str(tmp), metadata={"format": "milmer", "config": config.to_json(indent=None)}, force_contiguous=True
    )
    os.replace(tmp, directory / MODEL_FILE)
    config.save(directory / CONFIG_FILE)
    spec.save(directory / SPEC_FILE)
    _write_json(directory / BACKBONE_CONFIG_FILE, model.backbone.config.to_dict(), "backbone config")
    state = directory / STATE_FILE
    if extra is not None:
        _write_json(state, extra, "extra")
    elif state.exists():
        state.unlink()
    return directory


def load_checkpoint(
    directory: str | os.PathLike[str], *, name: str = "checkpoint"
) -> tuple[MilmerModel, ModelConfig, ModelSpec, dict[str, Any] | None]:
    """Read a :func:`save_checkpoint` directory -> (model in eval mode, config, spec, extra).

    The backbone is rebuilt from ``backbone_config.json``; ``config.backbone_dir`` is not read.
    The global torch RNG is left untouched. ``name`` is what errors call ``directory`` (``'CKPT'``
    from ``milmer export``).
    """
    directory = Path(directory)
    _require_files(directory, (MODEL_FILE, CONFIG_FILE, SPEC_FILE, BACKBONE_CONFIG_FILE), "Milmer checkpoint", name)
    config = ModelConfig.load(directory / CONFIG_FILE)
    spec = ModelSpec.load(directory / SPEC_FILE)
    config.check_spec(spec)
    with torch.random.fork_rng(devices=[]):  # building initialises weights we then overwrite
        model = MilmerModel(config, swin_from_config(_read_json(directory / BACKBONE_CONFIG_FILE)))
    try:
        load_model(model, str(directory / MODEL_FILE), strict=True)
    except RuntimeError as err:
        raise MilmerInputError(
            f"Invalid checkpoint {str(directory)!r}: its weights do not match its config ({err})."
        ) from None
    state = directory / STATE_FILE
    extra = _read_json(state) if state.is_file() else None
    return model.eval(), config, spec, extra


# ---------------------------------------------------------------------------------- training state
def _encode(obj: Any, path: str, tensors: dict[str, torch.Tensor], seen: set[int]) -> Any:
    """Nested state -> JSON value; tensors and arrays go to ``tensors`` under their path."""
    if path in tensors:  # a dict key containing "/" can repeat a path: keep names unique
        path = f"{path}#{len(tensors)}"
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel():  # safetensors refuses tensors that share memory
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        tensors[path] = t
        return {_TENSOR: path}
    if isinstance(obj, np.ndarray):
        # Stored as raw bytes: safetensors' torch side lacks some numpy dtypes (uint32).
        tensors[path] = torch.from_numpy(np.ascontiguousarray(obj).view(np.uint8).reshape(-1).copy())
        return {_NDARRAY: path, "dtype": obj.dtype.str, "shape": list(obj.shape)}
    if isinstance(obj, tuple):
        return {_TUPLE: [_encode(v, f"{path}/{i}", tensors, seen) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{path}/{i}", tensors, seen) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not set(obj) & set(_MARKERS):
            return {k: _encode(v, f"{path}/{k}", tensors, seen) for k, v in obj.items()}
        return {
            _DICT: [
                [_encode(k, f"{path}/{i}k", tensors, seen), _encode(v, f"{path}/{i}", tensors, seen)]
                for i, (k, v) in enumerate(obj.items())
            ]
        }
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise MilmerInputError(
        f"Invalid training state at {path!r}: cannot store a {type(obj).__name__} "
        "(expected tensors, arrays, numbers, strings, lists, tuples, dicts)."
    )


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if _TENSOR in obj:
        return tensors[obj[_TENSOR]]
    if _NDARRAY in obj:
        raw = tensors[obj[_NDARRAY]].numpy()
        return raw.view(np.dtype(obj["dtype"])).reshape(obj["shape"]).copy()
    if _TUPLE in obj:
        return tuple(_decode(v, tensors) for v in obj[_TUPLE])
    if _DICT in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj[_DICT]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def capture_rng_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), numpy-global and Python ``random`` generator states."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng_state` (CUDA states only where CUDA is available)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


@dataclass
class TrainingState:
    """What :func:`load_training_state` read back (already applied to the objects passed in)."""

    epoch: int
    step: int
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    rng: dict[str, Any] | None
    extra: dict[str, Any] | None


def save_training_state(
    directory: str | os.PathLike[str],
    optimizer: torch.optim.Optimizer,
    *,
    epoch: int,
    step: int = 0,
    scheduler: Any | None = None,
    rng: bool = True,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write what resuming needs besides the weights: optimizer and scheduler state, epoch,
    step, the RNG states (``rng``) and ``extra`` (may hold tensors, arrays, tuples, e.g. a data
    sampler's ``torch.Generator.get_state()``).

    Tensors go to ``training_state.safetensors``, the rest to ``training_state.json``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        "format": TRAINING_STATE_FORMAT,
        "epoch": epoch,
        "step": step,
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": capture_rng_state() if rng else None,
        "extra": extra,
    }
    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(state, "", tensors, set())
    tmp = directory / (TRAINING_TENSORS_FILE + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": "milmer-training-state"})
    os.replace(tmp, directory / TRAINING_TENSORS_FILE)
    _write_json(directory / TRAINING_STATE_FILE, encoded, "training state")
    return directory


def load_training_state(
    directory: str | os.PathLike[str],
    optimizer: torch.optim.Optimizer | None = None,
    *,
    scheduler: Any | None = None,
    restore_rng: bool = True,
) -> TrainingState:
    """Read :func:`save_training_state` output, load it into ``optimizer`` / ``scheduler`` (when
    given; optimizer tensors move to the parameters' device) and restore the RNG states."""
    directory = Path(directory)
    _require_files(directory, (TRAINING_TENSORS_FILE, TRAINING_STATE_FILE), "training state")
    encoded = _read_json(directory / TRAINING_STATE_FILE)
    if not isinstance(encoded, dict) or encoded.get("format") != TRAINING_STATE_FORMAT:
        got = encoded.get("format") if isinstance(encoded, dict) else type(encoded).__name__
        raise MilmerInputError(
            f"Invalid training state in {str(directory)!r}: expected format {TRAINING_STATE_FORMAT}, got {got!r}."
        )
    state = _decode(encoded, load_file(str(directory / TRAINING_TENSORS_FILE)))
    if scheduler is not None:
        check_requires(
            "scheduler", type(scheduler).__name__, "the scheduler state saved with the training state",
            state["scheduler"] is not None, f"none in {str(directory)!r}",
        )
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if restore_rng and state["rng"] is not None:
        restore_rng_state(state["rng"])
    return TrainingState(
        epoch=state["epoch"],
        step=state["step"],
        optimizer=state["optimizer"],
        scheduler=state["scheduler"],
        rng=state["rng"],
        extra=state["extra"],
    )
