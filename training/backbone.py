"""The face backbone: a Hugging Face ``SwinModel`` read from a local checkpoint directory.

Nothing is downloaded: ``backbone_dir`` must hold a ``save_pretrained`` checkpoint
(``config.json`` + weights). An image-classification checkpoint (``SwinForImageClassification``,
like the paper's face-emotion Swin) works too: only its Swin encoder is loaded.
Attention runs in "eager" mode because transformers' default SDPA path breaks the dynamo ONNX
exporter.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..runtime.check import MilmerInputError, check_equal, check_path_exists, check_same_length, read_error
from .model_config import DEFAULT_BACKBONE

__all__ = [
    "DEFAULT_BACKBONE",
    "BACKBONE_HUB_ID",
    "read_swin_config",
    "swin_token_dim",
    "swin_from_config",
    "load_swin",
    "save_tiny_swin",
    "swin_tokens_per_frame",
]

if TYPE_CHECKING:  # transformers is imported lazily (it takes seconds)
    from transformers import SwinConfig, SwinModel


#: The paper's face-emotion Swin-T on the Hugging Face Hub (Apache-2.0, fine-tuned from
#: microsoft/swin-tiny-patch4-window7-224).
BACKBONE_HUB_ID = f"MahmoudWSegni/{DEFAULT_BACKBONE}"


def _download_hint(path: Path) -> str:
    return (
        f"download the Swin checkpoint into {str(path)!r}, e.g. the paper's: hf download "
        f"{BACKBONE_HUB_ID} --local-dir {str(path)!r}; milmer never downloads at run time"
    )


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars and load reports (we check missing keys ourselves)."""
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    bars = logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def read_swin_config(backbone_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``config.json`` of a local Swin checkpoint, with clear errors if it is not one."""
    path = Path(backbone_dir)
    check_path_exists("backbone_dir", path, "dir", hint=_download_hint(path))
    config_file = path / "config.json"
    hint = f"without config.json it is not a Hugging Face checkpoint; {_download_hint(path)}"
    check_path_exists("backbone_dir", config_file, hint=hint)
    try:
        data = json.loads(config_file.read_text())
    except json.JSONDecodeError as err:
        raise MilmerInputError(f"Invalid backbone config {str(config_file)!r}: not valid JSON ({err}).") from None
    got = data.get("model_type") if isinstance(data, dict) else type(data).__name__
    check_equal("backbone_dir", got, "swin", why=f"the model_type of a Swin checkpoint, in {str(config_file)!r}")
    return data


def _eager(config: SwinConfig) -> SwinConfig:
    config._attn_implementation = "eager"
    return config


def swin_from_config(config: dict[str, Any] | SwinConfig) -> SwinModel:
    """A randomly initialised ``SwinModel`` (no pooler, eager attention) of the given architecture."""
    from transformers import SwinConfig, SwinModel

    if isinstance(config, dict):
        config = SwinConfig.from_dict(config)
    return SwinModel(_eager(config), add_pooling_layer=False)


def load_swin(backbone_dir: str | os.PathLike[str]) -> SwinModel:
    """Load the Swin encoder (no pooler, eager attention) from a local checkpoint directory.

    Raises :class:`MilmerInputError` if the directory, its ``config.json`` or its weights are
    missing, or if the weights do not cover every encoder parameter.
    """
    from transformers import SwinModel

    path = Path(backbone_dir)
    read_swin_config(path)
    try:
        with _quiet_transformers():
            model, info = SwinModel.from_pretrained(
                path,
                local_files_only=True,
                attn_implementation="eager",
                add_pooling_layer=False,
                output_loading_info=True,
            )
    except OSError as err:
        raise read_error("backbone_dir", path, err, what="checkpoint weights in", hint=_download_hint(path)) from None
    except RuntimeError as err:  # shape mismatches between config.json and the weights
        raise MilmerInputError(
            f"Invalid value for 'backbone_dir': the weights in {str(path)!r} do not fit its config.json ({err})."
        ) from None
    missing = sorted(info["missing_keys"]) + sorted(str(k) for k in info["mismatched_keys"])
    if missing:
        raise MilmerInputError(
            f"Invalid value for 'backbone_dir': the weights in {str(path)!r} do not fit the Swin "
            f"encoder (missing or mismatched: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})."
        )
    return model


def swin_token_dim(config: dict[str, Any]) -> int:
    """Size of each output token of a Swin given as a config dict (``read_swin_config``,
    ``SwinConfig.to_dict()``): ``embed_dim`` doubled by each patch merging, ``embed_dim * 2 **
    (stages - 1)`` (768 for Swin-T: 96 x 8; Liu et al. 2021, Sec. 3.1); HF's ``hidden_size``."""
    return int(config["embed_dim"]) * 2 ** (len(config["depths"]) - 1)


def swin_tokens_per_frame(config: SwinConfig, frame_size: int) -> int:
    """Tokens in ``last_hidden_state`` for a ``frame_size`` square input (49 for Swin-T at 224)."""
    side = -(-frame_size // config.patch_size)
    for _ in range(len(config.depths) - 1):  # each patch merging halves the grid (rounding up)
        side = (side + 1) // 2
    return side * side


def save_tiny_swin(
    path: str | os.PathLike[str],
    *,
    embed_dim: int = 8,
    depths: Sequence[int] = (1, 1, 1, 1),
    num_heads: Sequence[int] = (1, 1, 1, 1),
    seed: int = 0,
    classifier_labels: int | None = None,
) -> Path:
    """Write a tiny, randomly initialised Swin checkpoint in the real checkpoints' format.

    Same geometry as Swin-T (224 input, patch 4, window 7, 4 stages: 49 output tokens) with
    hidden size ``embed_dim * 8`` (64 by default), so one frame costs a few ms on a CPU. With
    ``classifier_labels`` it is saved as ``SwinForImageClassification`` (like the paper's
    face-emotion checkpoint). Writes ``config.json`` + ``model.safetensors``; returns ``path``.
    The global torch RNG is left untouched.
    """
    from transformers import SwinConfig, SwinForImageClassification, SwinModel

    check_same_length(("depths", "num_heads"), (depths, num_heads))
    extra = {} if classifier_labels is None else {"num_labels": classifier_labels}
    config = SwinConfig(
        image_size=224,
        patch_size=4,
        window_size=7,
        embed_dim=embed_dim,
        depths=list(depths),
        num_heads=list(num_heads),
        **extra,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SwinModel(_eager(config)) if classifier_labels is None else SwinForImageClassification(_eager(config))
    path = Path(path)
    with _quiet_transformers():
        model.save_pretrained(path)
    return path
