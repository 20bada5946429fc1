"""``milmer score-study MANIFEST --server URL --out DIR``: every recording of a study, scored on a server."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .errors import EXIT_INTERNAL, finite_option, handle_errors, print_error

__all__ = ["score_study"]


@handle_errors
def score_study(
    manifest: Path = typer.Argument(..., help="CSV with columns id, video, eeg[, offset, baseline]."),
    server: str = typer.Option(..., "--server", help="Triton server running the model: http://HOST:PORT."),
    out: Path = typer.Option(..., "--out", help="Folder for one result file per recording (reruns skip done ones)."),
    workers: int = typer.Option(2, "--workers", metavar="N", min=1, help="Recordings in progress at once (= most requests in flight)."),
    batch: Optional[int] = typer.Option(None, "--batch", metavar="N", min=1, help="Bags per request (default 4)."),
    fmt: str = typer.Option("json", "--format", help="Result file format: json or csv."),
    timeout: float = typer.Option(
        60.0, "--timeout", metavar="SECONDS", min=0.001, callback=finite_option,
        help="The most seconds to wait for the connection (a server starting or restarting is waited for), for each answer and for the model to be ready.",
    ),
) -> None:
    """Score every recording of a manifest against a server; resumable, failures reported per recording."""
    from milmer.runtime.serve.study import FAILURES_FILE, score_study as run_study

    report = run_study(manifest, server, out, workers=workers, batch=batch, fmt=fmt, progress=True, timeout_s=timeout)  # type: ignore[arg-type]
    typer.echo(
        f"Scored {len(report.scored)}, skipped {len(report.skipped)} already scored, failed {len(report.failed)}; results in {out}"
    )
    for ident, error in sorted(report.failed.items()):
        print_error(f"Failed {ident}: {error}")
    if report.failures_file_error is not None:
        print_error(f"Error: could not write {out / FAILURES_FILE}: {report.failures_file_error}.")
    elif not report.ok:
        print_error(f"Failures are listed in {out / FAILURES_FILE}; rerun the same command to retry them.")
    if not report.ok:
        raise typer.Exit(EXIT_INTERNAL)
