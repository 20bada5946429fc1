"""``milmer demo-data``: write synthetic DEAP-format data and one continuous recording.

Needs the ``demo`` extra (:mod:`milmer.synthetic`: scikit-image, edfio), not the runtime alone.
"""

from __future__ import annotations

from pathlib import Path

import typer

from .errors import finite_option, handle_errors

__all__ = ["demo_data"]


@handle_errors
def demo_data(
    out: Path = typer.Option(..., "--out", help="Folder to write the synthetic DEAP-format data into."),
    subjects: int = typer.Option(2, "--subjects", metavar="N", min=1, max=99, help="Number of synthetic participants."),
    trials: int = typer.Option(8, "--trials", metavar="N", min=4, max=99, help="Trials per participant (DEAP has 40)."),
    trial_seconds: float = typer.Option(
        30.0, "--trial-seconds", metavar="SECONDS", callback=finite_option,
        help="Seconds per trial after the 3 s baseline, > 0, whole 1/128 s (DEAP: 60).",
    ),
    recording_seconds: float = typer.Option(
        60.0, "--recording-seconds", metavar="SECONDS", callback=finite_option,
        help="Length of the continuous demo recording in whole seconds, > 0.",
    ),
    seed: int = typer.Option(0, "--seed", metavar="N", min=0, help="Random seed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an earlier demo dataset in OUT."),
) -> None:
    """Write SYNTHETIC DEAP-format data (and one continuous recording) for demos and tests."""
    from milmer.synthetic import make_demo_data

    manifest = make_demo_data(
        out, n_subjects=subjects, n_trials=trials, trial_s=trial_seconds,
        recording_s=recording_seconds, seed=seed, progress=True, overwrite=overwrite,
        names={"out": "--out", "overwrite": "--overwrite", "n_subjects": "--subjects", "n_trials": "--trials",
               "trial_s": "--trial-seconds", "recording_s": "--recording-seconds", "seed": "--seed"},
    )
    typer.echo(f"Wrote synthetic DEAP-format data to {out}: {manifest.summary()}.")
