"""Score a study: every recording of a manifest, concurrently, against a Triton server.

The manifest is a CSV file with a header row::

    id,video,eeg,offset,baseline
    s01_t01,videos/s01_t01.mp4,eeg/s01_t01.edf,0.0,3.0

``id``, ``video`` and ``eeg`` are required; ``offset`` (video time in s at EEG t = 0) and
``baseline`` (seconds dropped at the EEG start) default to 0. Relative paths are taken from the
manifest's folder. Each recording is preprocessed here and scored on the server
(:class:`~.client.RemotePipeline`); its predictions go to ``OUT/<id>.json`` (or ``.csv``), written
atomically, so a file there means the recording is done: a rerun skips it (resumable). A recording
that fails is reported with its error and the others go on; the failures are listed in
``OUT/_failures.csv`` (an id cannot start with ``_``, so no recording's result takes that name).
A manifest saved by a spreadsheet as "CSV UTF-8" (with a byte-order mark) is read as well.
``workers`` recordings are in progress at once, each with at most one
request in flight, so the server never sees more than ``workers`` requests from a study.
"""

from __future__ import annotations

import csv
import errno
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..check import (
    MilmerExternalError,
    MilmerInputError,
    check_dir_or_absent,
    check_int,
    check_option,
    check_path_exists,
)
from ..files import write_text_atomic

__all__ = ["StudyEntry", "StudyReport", "read_manifest", "score_study", "FAILURES_FILE"]

FAILURES_FILE = "_failures.csv"
_REQUIRED = ("id", "video", "eeg")
_OPTIONAL = ("offset", "baseline")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class StudyEntry:
    """One recording of a study: its id (the result file's name), files and timing."""

    id: str
    video: Path
    eeg: Path
    offset_s: float = 0.0
    baseline_s: float = 0.0


@dataclass
class StudyReport:
    """What a run did: ids scored now, skipped (already scored), and failed with their errors."""

    scored: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    failures_file_error: str | None = None  # why the failure list could not be written (a full disk)

    @property
    def ok(self) -> bool:
        return not self.failed


def _number(value: str, column: str, row: int, path: Path) -> float:
    if value.strip() == "":
        return 0.0
    try:
        return float(value)
    except ValueError:
        raise MilmerInputError(
            f"Invalid manifest {str(path)!r}: row {row}, column {column!r}: expected a number of seconds, got {value!r}."
        ) from None


def read_manifest(path: str | os.PathLike[str]) -> list[StudyEntry]:
    """Read and check a manifest (see the module docstring); errors name the row and column."""
    path = Path(path)
    check_path_exists("manifest", path)
    with path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets write a BOM
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in _REQUIRED if c not in columns]
        unknown = [c for c in columns if c not in _REQUIRED + _OPTIONAL]
        if missing or unknown:
            raise MilmerInputError(
                f"Invalid manifest {str(path)!r}: expected columns {', '.join(_REQUIRED)} (and optionally "
                f"{', '.join(_OPTIONAL)}), got {columns}."
            )
        entries: list[StudyEntry] = []
        seen: set[str] = set()
        for row, record in enumerate(reader, start=2):
            record = {k.strip(): (v or "").strip() for k, v in record.items() if k is not None}
            ident = record["id"]
            if not _ID.match(ident):
                raise MilmerInputError(
                    f"Invalid manifest {str(path)!r}: row {row}, column 'id': expected a letter or digit first, then "
                    f"letters, digits, '.', '_' or '-' (it names the result file), got {ident!r}."
                )
            if ident in seen:
                raise MilmerInputError(f"Invalid manifest {str(path)!r}: row {row}, column 'id': {ident!r} appears twice.")
            seen.add(ident)
            for column in ("video", "eeg"):
                if not record[column]:
                    raise MilmerInputError(f"Invalid manifest {str(path)!r}: row {row}, column {column!r} is empty.")
            entries.append(
                StudyEntry(
                    id=ident,
                    video=path.parent / record["video"],
                    eeg=path.parent / record["eeg"],
                    offset_s=_number(record.get("offset", ""), "offset", row, path),
                    baseline_s=_number(record.get("baseline", ""), "baseline", row, path),
                )
            )
    if not entries:
        raise MilmerInputError(f"Invalid manifest {str(path)!r}: no recordings listed.")
    return entries


def _describe(err: BaseException) -> str:
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return f"no space left on device{f' writing {err.filename}' if err.filename else ''}"
    text = str(err).strip().replace("\n", " ")
    return text if isinstance(err, (MilmerInputError, MilmerExternalError)) else f"{type(err).__name__}: {text}"


def score_study(
    manifest: str | os.PathLike[str],
    server: str,
    out: str | os.PathLike[str],
    *,
    workers: int = 2,
    batch: int | None = None,
    fmt: Literal["json", "csv"] = "json",
    progress: bool = False,
    timeout_s: float | None = None,
) -> StudyReport:
    """Score every recording of ``manifest`` on ``server`` into ``out`` (see the module docstring).

    workers: recordings in progress at once (= most requests in flight); batch: bags per request;
    timeout_s: connection and per-request timeout (default :data:`~.client.DEFAULT_TIMEOUT_S`).
    Raises MilmerInputError for a bad manifest, bad options or no server; a failing recording
    is not raised but listed in the report (and ``out/_failures.csv``); a full disk fails the
    recordings it hits with "no space left on device" and the report is still returned.
    """
    from ..report import write_predictions
    from .client import DEFAULT_TIMEOUT_S, RemotePipeline

    timeout = DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s

    check_option("--format", fmt, ("json", "csv"))
    check_int("--workers", workers, low=1)
    entries = read_manifest(manifest)
    out = check_dir_or_absent("out", out)
    RemotePipeline(server, batch=batch, timeout_s=timeout).close()  # fail fast: server up, model served, options valid
    out.mkdir(parents=True, exist_ok=True)
    report = StudyReport()
    todo = [e for e in entries if not (out / f"{e.id}.{fmt}").is_file()]
    report.skipped = [e.id for e in entries if e not in todo]
    local = threading.local()
    pipelines: list[Any] = []
    lock = threading.Lock()

    def pipeline() -> Any:
        if not hasattr(local, "pipeline"):
            local.pipeline = RemotePipeline(server, batch=batch, timeout_s=timeout)
            with lock:
                pipelines.append(local.pipeline)
        return local.pipeline

    def score(entry: StudyEntry) -> None:
        result = pipeline().predict(entry.video, entry.eeg, offset_s=entry.offset_s, baseline_s=entry.baseline_s)
        write_predictions(result, out / f"{entry.id}.{fmt}")

    bar = _progress(len(todo)) if progress and todo else None
    mne_level = _quiet_mne()
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="milmer-study") as pool:
            futures = {pool.submit(score, entry): entry for entry in todo}
            for future in as_completed(futures):
                entry = futures[future]
                err = future.exception()
                if err is None:
                    report.scored.append(entry.id)
                else:
                    report.failed[entry.id] = _describe(err)
                if bar is not None:
                    bar[0].update(bar[1], advance=1)
    finally:
        if bar is not None:
            bar[0].stop()
        for p in pipelines:
            p.close()
        _restore_mne(mne_level)
    try:
        _write_failures(out / FAILURES_FILE, report.failed)
    except OSError as err:
        report.failures_file_error = _describe(err)
    return report


def _quiet_mne() -> Any:
    """Set MNE's log level to WARNING for the whole study and return the previous one. MNE's
    per-call ``verbose=False`` swaps a process-wide level and restores it afterwards, which is not
    thread-safe: with several workers one thread's restore let another's INFO lines (MNE logs to
    stdout) through."""
    import mne

    previous = mne.set_log_level("WARNING", return_old_level=True)
    return previous


def _restore_mne(level: Any) -> None:
    import mne

    mne.set_log_level(level)


def _write_failures(path: Path, failed: dict[str, str]) -> None:
    """``id,error`` per failed recording; no file when nothing failed (a stale one is removed)."""
    if not failed:
        path.unlink(missing_ok=True)
        return
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "error"])
    for ident in sorted(failed):
        writer.writerow([ident, failed[ident]])
    write_text_atomic(path, buffer.getvalue())


def _progress(total: int) -> tuple[Any, Any] | None:
    """A started rich progress bar (recordings) on stderr and its task; None off a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        return None
    bar = Progress(TextColumn("Scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("recordings"), TimeElapsedColumn(), console=console)
    task = bar.add_task("study", total=total)
    bar.start()
    return bar, task
