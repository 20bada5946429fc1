"""Building the window cache (:mod:`.window_cache`): every DEAP trial preprocessed by the
runtime's own functions, one shard per trial, in worker processes, resumable.

Each trial is preprocessed exactly as the deployed pipeline does it (one implementation, in
``milmer.runtime``)::

    eeg   = preprocess_raw(deap_trial_to_raw(dat["data"][row]), spec.eeg, baseline_s=baseline_s)
    faces = extract_faces(video, eeg.starts, spec.face, spec.eeg.window_s, offset_s=offset_s)

A finished shard is skipped, so an interrupted build continues where it stopped; a shard is
written to a temporary folder and renamed into place.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.check import MilmerInputError, check_int, check_nonempty, check_unique
from ..runtime.spec import ModelSpec
from .deap import TrialRecord
from .window_cache import (
    RATING_TOLERANCE,
    SHARD_FILES,
    CachedWindows,
    cache_config,
    cache_dir,
    check_key_file,
    open_cache,
    shard_name,
    trial_sources,
    write_index,
)

__all__ = ["build_cache"]

log = logging.getLogger("milmer.training.window_cache")


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


@dataclass(frozen=True)
class _ShardTask:
    record: TrialRecord
    spec: ModelSpec
    baseline_s: float
    offset_s: float
    sources: dict[str, Any]
    config: dict[str, Any]
    shard_dir: Path


# Worker-local memo of the last .dat read: consecutive trials of a subject share the file.
_DAT_MEMO: dict[str, Any] = {}


def _load_dat(path: Path, stamp: dict[str, Any]) -> dict[str, np.ndarray]:
    from ..runtime.eeg.io import load_deap_dat

    key = json.dumps(stamp, sort_keys=True)
    if _DAT_MEMO.get("key") != key:
        _DAT_MEMO.clear()
        _DAT_MEMO.update(key=key, dat=load_deap_dat(path))
    return _DAT_MEMO["dat"]


def _compute_trial(task: _ShardTask) -> tuple[Any, Any, np.ndarray]:
    """Run the runtime preprocessing for one trial: (EEGWindows, FaceWindows, .dat labels (4,))."""
    from ..runtime.eeg.io import deap_trial_to_raw
    from ..runtime.eeg.preprocess import preprocess_raw
    from ..runtime.face.extract import extract_faces

    rec, spec = task.record, task.spec
    dat = _load_dat(Path(rec.dat_path), task.sources["dat"])
    check_int(f"{rec.name}.row", rec.row, low=0, high=dat["data"].shape[0] - 1,
              hint=f"{str(rec.dat_path)!r} has {dat['data'].shape[0]} trials (Experiment_id {rec.experiment_id})")
    raw = deap_trial_to_raw(dat["data"][rec.row], sfreq=spec.eeg.sfreq)
    eeg = preprocess_raw(raw, spec.eeg, baseline_s=task.baseline_s)
    faces = extract_faces(rec.video_path, eeg.starts, spec.face, spec.eeg.window_s, offset_s=task.offset_s)
    return eeg, faces, np.asarray(dat["labels"][rec.row], dtype=np.float64)


def _build_shard(task: _ShardTask) -> str:
    """Preprocess one trial and write its shard atomically; returns the shard's name."""
    rec = task.record
    eeg, faces, dat_labels = _compute_trial(task)
    if np.abs(dat_labels - np.asarray(rec.ratings)).max() > RATING_TOLERANCE:
        raise MilmerInputError(
            f"Invalid DEAP mapping for {rec.name}: the CSV gives ratings {list(rec.ratings)} but row "
            f"{rec.row} of {Path(rec.dat_path).name} has labels {dat_labels.tolist()}; the video and "
            "the EEG row do not belong together."
        )
    n = eeg.data.shape[0]
    if faces.frames.shape[0] != n:
        raise RuntimeError(f"{rec.name}: {n} EEG windows but {faces.frames.shape[0]} face windows")
    meta = {
        "record": {
            "subject": rec.subject, "trial": rec.trial, "experiment_id": rec.experiment_id,
            "row": rec.row, "ratings": list(rec.ratings),
        },
        "sources": task.sources,
        "config": task.config,
        "n_windows": n,
        "dat_labels": dat_labels.tolist(),
        "eeg_info": _to_jsonable(eeg.info),
        "face_info": _to_jsonable(faces.info),
    }  # fmt: skip
    final = task.shard_dir
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        arrays = (eeg.data, faces.frames, faces.found, faces.timestamps, eeg.starts)
        for name, arr in zip(SHARD_FILES, arrays):
            np.save(tmp / name, np.ascontiguousarray(arr))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return final.name


def _limit_threads() -> None:
    """Pool initializer: one BLAS/OpenCV thread per worker, since the pool fills the cores."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


def _clean_stale_tmp(shards: Path) -> None:
    """Remove temp shard folders left by processes that no longer run (interrupted builds)."""
    for tmp in shards.glob(".tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 2)[-2])
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:
            pass


def build_cache(
    records: Iterable[TrialRecord],
    spec: ModelSpec,
    cache_root: str | os.PathLike[str],
    *,
    baseline_s: float = 3.0,
    offset_s: float = 0.0,
    workers: int | None = None,
    progress: bool = True,
) -> CachedWindows:
    """Preprocess every trial of ``records`` into the cache (skipping finished ones) and open it.

    baseline_s: seconds dropped from each trial's start before windowing (DEAP: 3 s pre-trial)
    offset_s:   video time minus EEG time of the same instant (0 when video t=0 is EEG sample 0)
    workers:    processes (default ``os.cpu_count()``); 1 runs in this process
    progress:   show a rich progress bar
    """
    records = list(records)
    check_nonempty("records", records, "trial")
    check_unique("records", [r.name for r in records], "trial")
    if workers is None:
        workers = os.cpu_count() or 1
    check_int("workers", workers, low=1)

    config = cache_config(spec, baseline_s=baseline_s, offset_s=offset_s)
    folder = cache_dir(cache_root, config)
    shards = folder / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    key_file = folder / "key.json"
    if not key_file.is_file():
        tmp = key_file.with_name(f"key.json.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(config, indent=1, sort_keys=True))
        os.replace(tmp, key_file)
    check_key_file(folder, config)
    _clean_stale_tmp(shards)

    names, todo = [], []
    for rec in records:
        sources = trial_sources(rec)
        name = shard_name(rec, sources, config)
        names.append(name)
        if not (shards / name / "meta.json").is_file():
            todo.append(_ShardTask(rec, spec, float(baseline_s), float(offset_s), sources, config, shards / name))
    if len(todo) < len(records):
        log.info("DEAP cache %s: %d of %d trials already built", folder, len(records) - len(todo), len(records))
    _run(todo, workers, progress)
    return open_cache(write_index(folder, config, names, spec))


def _run(tasks: list[_ShardTask], workers: int, progress: bool) -> None:
    """Build ``tasks``' shards; failures are collected and raised together after the rest finish."""
    if not tasks:
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("[bold]DEAP cache"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("{task.description}"), disable=not progress,
    )  # fmt: skip
    failures: list[str] = []
    with bar:
        job = bar.add_task("", total=len(tasks))
        if workers == 1:
            for task in tasks:
                try:
                    bar.update(job, advance=1, description=_build_shard(task))
                except MilmerInputError as err:
                    failures.append(f"{task.record.name}: {err}")
        else:
            import multiprocessing

            # spawn, not fork: the parent may hold torch/OpenMP threads that a fork would copy.
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=ctx, initializer=_limit_threads) as pool:
                futures = {pool.submit(_build_shard, t): t for t in tasks}
                for fut in as_completed(futures):
                    try:
                        bar.update(job, advance=1, description=fut.result())
                    except MilmerInputError as err:
                        failures.append(f"{futures[fut].record.name}: {err}")
    if failures:
        raise MilmerInputError(
            f"{len(failures)} of {len(tasks)} trials could not be cached (the others were; rerun to "
            "resume after fixing or excluding these):\n" + "\n".join(failures)
        )
