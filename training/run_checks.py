"""Everything a training run needs, checked before any work: the run folder, the cache folder,
DEAP's layout, the folds and the backbone checkpoint (:func:`check_run`). Creates nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..runtime.check import (
    MilmerInputError,
    check_dir_or_absent,
    check_equal,
    check_nonempty,
    check_writable_dir,
    read_error,
)
from .train_config import TrainConfig

__all__ = ["CONFIG_FILE", "check_run", "check_run_dir"]

#: The resolved TrainConfig in a run folder (a re-run with the same config resumes).
CONFIG_FILE = "config.json"


def check_run_dir(run_dir: Path, cfg: TrainConfig, out_name: str = "'out_dir'") -> None:
    """Refuse to mix two configurations in one run folder; the same config resumes."""
    check_writable_dir(out_name.strip("'"), run_dir)
    saved = run_dir / CONFIG_FILE
    if saved.is_file():
        previous = json.loads(saved.read_text())
        now = cfg.to_dict()
        # Only the keys that differ: the whole config would bury them.
        changed = sorted(k for k in set(previous) | set(now) if previous.get(k) != now.get(k))
        check_equal(
            out_name.strip("'"), {k: now.get(k) for k in changed}, {k: previous.get(k) for k in changed},
            why=f"the config of the run in {str(run_dir)!r}",
            hint="choose another folder, or delete this one to start over (the preprocessed-window cache "
            f"is kept elsewhere, in {str(cfg.cache_path)!r})",
        )
    else:
        check_dir_or_absent(out_name.strip("'"), run_dir, empty=True, hint="it holds no milmer run; choose another folder")


def _check_backbone(cfg: TrainConfig) -> None:
    """``model.backbone_dir`` loads as a Swin checkpoint whose tokens have ``spec.graph.token_dim``."""
    from .backbone import load_swin

    path = cfg.model_config().backbone_dir
    try:
        token_dim = int(load_swin(path).config.hidden_size)
    except MilmerInputError:
        raise
    except Exception as err:  # noqa: BLE001 - e.g. safetensors' error for a truncated file
        raise read_error("backbone_dir", path, err, what="Swin checkpoint in", hint="corrupt or truncated weights?") from None
    check_equal("spec.graph.token_dim", cfg.model_spec().graph.token_dim, token_dim,
                why=f"the token size of the backbone in {path!r}", hint=f"set spec.graph.token_dim={token_dim}")


def check_run(cfg: TrainConfig, *, out_name: str = "'out_dir'") -> Any:
    """Check everything a run needs before any work; returns the DEAP index (a ``DeapIndex``).

    In order: ``out_dir`` (a writable folder that is new, empty, or holds a run of this same
    config), ``cache_dir`` (writable), ``data_root`` (DEAP's layout, at least one usable trial;
    'loso' needs two subjects), ``folds_to_run`` (in range) and ``model.backbone_dir`` (config and weights load as a Swin encoder; its token size matches
    the spec). Option values were checked when ``cfg`` was built. Creates nothing.
    ``out_name`` is how errors name the run folder (``"'--out'"`` when the CLI's option set it).
    Raises :class:`MilmerInputError` naming the key and the path.
    """
    from .deap import index_deap

    check_run_dir(Path(cfg.out_dir), cfg, out_name)
    check_writable_dir("cache_dir", cfg.cache_path)
    index = index_deap(cfg.data_root, subjects=cfg.subjects, exclude_subjects=cfg.exclude_subjects, param="data_root")
    if cfg.protocol == "loso":
        check_nonempty(
            "protocol", index.subjects, "subjects", at_least=2, why="protocol 'loso'",
            hint=f"found under data_root {str(cfg.data_root)!r} (subjects {cfg.subjects}, "
            f"exclude_subjects {list(cfg.exclude_subjects)})",
        )
    cfg.fold_indices(len(index.subjects) if cfg.protocol == "loso" else cfg.k_folds)  # folds_to_run in range
    _check_backbone(cfg)
    return index
