"""``milmer train --config FILE [KEY=VALUE ...]``: train Milmer on DEAP-format data (training extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .errors import handle_errors

__all__ = ["TRAIN_HELP", "TRAIN_CONTEXT", "train", "train_epilog"]


def train_epilog() -> str:
    """The config keys with their defaults, generated from ``TrainConfig`` (torch-free import)."""
    from milmer.training.train_config import config_keys_help

    # \b keeps click/typer from re-wrapping the lines that follow it.
    return (
        "Config keys (in the file, or KEY=VALUE after the options) and their defaults; data_root "
        "and out_dir are required (--out may give out_dir):\n\n\b\n" + "\n".join(config_keys_help())
    )


TRAIN_HELP = "\n\n".join((
    "Train Milmer on DEAP-format data (needs the training extra).",
    "Extra KEY=VALUE arguments override the config file, e.g. epochs=5 protocol=loso model.d_model=64 "
    "(dotted keys for tables; values are JSON, else text).",
    "Relative paths in the config file are read from the config file's folder; relative paths in --out "
    "and in KEY=VALUE from the working directory.",
    "Everything (paths, the DEAP layout, the backbone checkpoint, option values) is checked before any "
    "work, and a run that fails to start leaves no run folder. Preprocessed windows are cached in "
    "cache_dir (default: $MILMER_CACHE_DIR, else ~/.cache/milmer/windows), shared by runs and kept when "
    "a run folder is deleted. Rerunning with the same config resumes the run.",
))  # fmt: skip

#: Extra arguments are the KEY=VALUE overrides.
TRAIN_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": False}


@handle_errors
def train(
    ctx: typer.Context,
    config: Path = typer.Option(
        ..., "--config", help="Training config file (JSON or TOML). Relative paths in it are read from its folder."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Run folder (sets out_dir; relative to the working directory)."
    ),
) -> None:
    """``milmer train``: see :data:`TRAIN_HELP` (the docstring is not the help text)."""
    from milmer.training.experiment import train_command

    run_dir = train_command(config, list(ctx.args), out)
    typer.echo(f"Run folder: {run_dir}")

