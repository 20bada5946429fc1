"""An on-disk cache of preprocessed DEAP windows, built with the runtime's own preprocessing.

Each trial is preprocessed exactly as the deployed pipeline does it (there is one
implementation, in ``milmer.runtime``)::

    eeg   = preprocess_raw(deap_trial_to_raw(dat["data"][row]), spec.eeg, baseline_s=baseline_s)
    faces = extract_faces(video, eeg.starts, spec.face, spec.eeg.window_s, offset_s=offset_s)

so window ``i``'s frames are sampled from video time ``eeg.starts[i] + offset_s`` onwards, the
same 3 s as its EEG (``starts`` count from the trial's first sample, baseline included).

Where: ``cache_root`` is the training config's ``cache_dir``, else :func:`default_cache_root`
(``$MILMER_CACHE_DIR``, else ``$MILMER_HOME/windows``, else ``~/.cache/milmer/windows``). It is
shared by every run and never lives inside a run folder, so deleting a run keeps the hours of
preprocessing that real DEAP takes.

Layout under ``cache_root``::

    deap-<config key>/                 one folder per configuration
        key.json                       what the key hashes (checked on every open)
        shards/sXX_trialYY-<source>/   one folder per trial, written to a temp folder first
            eeg.npy     (W, 32, 384) float32      faces.npy      (W, 10, 224, 224, 3) uint8
            found.npy   (W, 10) bool              timestamps.npy (W, 10) float64
            starts.npy  (W,) float64              meta.json      record, sources, runtime info
        index-<set>.json               the windows of one set of trials (subject, trial, ...)

Staleness. The configuration key is a sha256 over ``spec.preprocessing_fingerprint()``,
``baseline_s``, ``offset_s``, :data:`PREPROCESSING_CODE_VERSION`, :data:`CACHE_FORMAT_VERSION`
and the versions of the libraries that shape the output (numpy, scipy, scikit-learn, MNE,
OpenCV, mediapipe): changing any of them gives a different folder. Each shard's name carries a
hash of its sources, the ``.dat`` file and the video, each stamped by resolved path, size and
``st_mtime_ns`` (not a content hash: reading 32 x 110 MB of ``.dat`` to check a cache would
cost more than it saves). Touching, replacing or moving a source file therefore gives a new
shard name and a rebuild; an edit that keeps a file's size and modification time is not
detected. Opening a cache re-stats every source and refuses stale shards.

Resume: a finished shard is skipped, so an interrupted build continues where it stopped.
Two builds writing the same cache folder at once are not supported.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.check import MilmerInputError, check_positive
from ..runtime.spec import ModelSpec
from .deap import TrialRecord
from .labels import ratings_to_labels

__all__ = [
    "PREPROCESSING_CODE_VERSION",
    "CACHE_FORMAT_VERSION",
    "RATING_TOLERANCE",
    "CACHE_DIR_ENV",
    "cache_config",
    "cache_dir",
    "default_cache_root",
    "build_cache",
    "open_cache",
    "CachedWindows",
    "ShardedArray",
]

log = logging.getLogger(__name__)

#: Bump when milmer's preprocessing changes its output in a way the spec does not capture.
PREPROCESSING_CODE_VERSION = 1
#: Bump when the files written here change.
CACHE_FORMAT_VERSION = 1
#: Largest allowed difference between the CSV's ratings and the ``.dat`` row's labels; a larger
#: one means the Experiment_id mapping paired the video with the wrong EEG row.
RATING_TOLERANCE = 1e-3

#: Environment variable naming the shared cache root (see :func:`default_cache_root`).
CACHE_DIR_ENV = "MILMER_CACHE_DIR"

_LIBRARIES = (
    "numpy", "scipy", "scikit-learn", "mne", "opencv-python-headless", "opencv-contrib-python", "mediapipe",
)
_SHARD_FILES = ("eeg.npy", "faces.npy", "found.npy", "timestamps.npy", "starts.npy")


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def cache_config(spec: ModelSpec, *, baseline_s: float = 3.0, offset_s: float = 0.0) -> dict[str, Any]:
    """What the configuration key hashes (see module docstring); stored as ``key.json``."""
    check_positive("baseline_s", baseline_s, allow_zero=True)
    if not np.isfinite(offset_s):
        raise MilmerInputError(f"Invalid value for 'offset_s': expected a finite number, got {offset_s!r}.")
    return {
        "cache_format": CACHE_FORMAT_VERSION,
        "preprocessing_code": PREPROCESSING_CODE_VERSION,
        "spec_preprocessing": spec.preprocessing_fingerprint(),
        "baseline_s": float(baseline_s),
        "offset_s": float(offset_s),
        "libraries": _library_versions(),
    }


def default_cache_root() -> Path:
    """The shared cache root when a config names no ``cache_dir`` (an absolute path).

    ``$MILMER_CACHE_DIR`` if set, else ``windows/`` under milmer's per-user folder
    (``$MILMER_HOME``, else ``~/.cache/milmer``; :func:`milmer.runtime.infer_command.milmer_home`).
    """
    from ..runtime.infer_command import milmer_home

    env = os.environ.get(CACHE_DIR_ENV)
    return (Path(env).expanduser() if env else milmer_home() / "windows").absolute()


def cache_dir(cache_root: str | os.PathLike[str], config: dict[str, Any]) -> Path:
    """The folder of one configuration: ``cache_root/deap-<first 16 hex of its key>``."""
    return Path(cache_root) / f"deap-{_sha(config)[:16]}"


def _stamp(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sources(record: TrialRecord) -> dict[str, Any]:
    for name, p in (("dat_path", record.dat_path), ("video_path", record.video_path)):
        if not Path(p).is_file():
            raise MilmerInputError(f"Invalid value for {name!r} of {record.name}: file not found: {str(p)!r}.")
    return {"dat": _stamp(Path(record.dat_path)), "video": _stamp(Path(record.video_path)), "row": record.row}


def _shard_name(record: TrialRecord, sources: dict[str, Any], config: dict[str, Any]) -> str:
    return f"{record.name}-{_sha({'sources': sources, 'config': config})[:12]}"


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


# --------------------------------------------------------------------------- building one shard
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
    if not 0 <= rec.row < dat["data"].shape[0]:
        raise MilmerInputError(
            f"Invalid value for 'row' of {rec.name}: {str(rec.dat_path)!r} has {dat['data'].shape[0]} "
            f"trials, got row {rec.row} (Experiment_id {rec.experiment_id})."
        )
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
        for name, arr in zip(_SHARD_FILES, arrays):
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


# --------------------------------------------------------------------------- reading back
class ShardedArray:
    """A read-only (N, ...) array stored as one ``.npy`` per shard, memory-mapped on first use.

    ``a[i]`` is a (...) view into one shard's memory map; ``a[indices]`` and ``a[slice]`` gather
    into a new array. ``np.asarray(a)`` loads everything (large for faces).
    """

    def __init__(self, files: Sequence[Path], counts: Sequence[int], shape: tuple[int, ...], dtype: np.dtype):
        self._files = [Path(f) for f in files]
        self._offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.shape = (int(self._offsets[-1]), *shape)
        self.dtype = np.dtype(dtype)
        self._maps: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.shape[0]

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps are reopened lazily in each DataLoader worker.
        return {**self.__dict__, "_maps": {}}

    def _shard(self, k: int) -> np.ndarray:
        arr = self._maps.get(k)
        if arr is None:
            arr = np.load(self._files[k], mmap_mode="r")
            expected = (int(self._offsets[k + 1] - self._offsets[k]), *self.shape[1:])
            if arr.shape != expected or arr.dtype != self.dtype:
                raise MilmerInputError(
                    f"Invalid cache: {str(self._files[k])!r} holds {arr.shape} {arr.dtype}, the index "
                    f"expects {expected} {self.dtype}; rebuild the cache."
                )
            self._maps[k] = arr
        return arr

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            i = int(key) + (self.shape[0] if key < 0 else 0)
            if not 0 <= i < self.shape[0]:
                raise IndexError(f"index {int(key)} is out of bounds for {self.shape[0]} windows")
            k = int(np.searchsorted(self._offsets, i, side="right") - 1)
            return self._shard(k)[i - self._offsets[k]]
        idx = np.arange(self.shape[0])[key]
        out = np.empty((idx.size, *self.shape[1:]), self.dtype)
        for j, i in enumerate(idx):
            out[j] = self[int(i)]
        return out

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = self[:]  # always a new array, whatever ``copy`` asks
        return out if dtype is None else out.astype(dtype)


class CachedWindows:
    """All windows of a built cache; EEG and faces read lazily, the index in memory.

    eeg:            (N, 32, 384) float32   (ShardedArray)
    faces:          (N, 10, 224, 224, 3) uint8 RGB crops (ShardedArray)
    face_found:     (N, 10) bool           face_timestamps: (N, 10) float64 video seconds
    subject, trial, experiment_id: (N,) int64      start: (N,) float64 EEG seconds
    ratings:        (N, 4) float64 valence, arousal, dominance, liking
    """

    def __init__(self, folder: Path, index_path: Path, index: dict[str, Any]):
        self.folder = folder
        self.index_path = index_path
        self.config: dict[str, Any] = index["config"]
        self.shards: list[dict[str, Any]] = index["shards"]
        cols = index["windows"]
        self.subject = np.asarray(cols["subject"], np.int64)
        self.trial = np.asarray(cols["trial"], np.int64)
        self.experiment_id = np.asarray(cols["experiment_id"], np.int64)
        self.start = np.asarray(cols["start"], np.float64)
        self.ratings = np.asarray(cols["ratings"], np.float64).reshape(-1, 4)
        shape = index["shapes"]
        self.face_found = np.asarray(cols["face_found"], bool).reshape(-1, shape["faces"][0])
        self.face_timestamps = np.asarray(cols["face_timestamps"], np.float64).reshape(self.face_found.shape)
        dirs = [folder / "shards" / s["name"] for s in self.shards]
        counts = [s["n_windows"] for s in self.shards]
        self.eeg = ShardedArray([d / "eeg.npy" for d in dirs], counts, tuple(shape["eeg"]), np.float32)
        self.faces = ShardedArray([d / "faces.npy" for d in dirs], counts, tuple(shape["faces"]), np.uint8)

    def __len__(self) -> int:
        return self.subject.size

    @property
    def window_has_face(self) -> np.ndarray:
        """(N,) bool: the detector found a face in at least one frame of the window."""
        return self.face_found.any(axis=1)

    def labels(self, scheme: str) -> np.ndarray:
        """(N,) int64 class indices of every window under label ``scheme``."""
        return ratings_to_labels(self.ratings[:, 0], self.ratings[:, 1], scheme)


def _write_index(folder: Path, config: dict[str, Any], names: list[str], spec: ModelSpec) -> Path:
    cols: dict[str, list[Any]] = {
        k: [] for k in ("subject", "trial", "experiment_id", "start", "ratings", "face_found", "face_timestamps")
    }
    shards = []
    for name in names:
        d = folder / "shards" / name
        meta = json.loads((d / "meta.json").read_text())
        rec, n = meta["record"], meta["n_windows"]
        shards.append({"name": name, "n_windows": n, "sources": meta["sources"], **rec})
        cols["subject"] += [rec["subject"]] * n
        cols["trial"] += [rec["trial"]] * n
        cols["experiment_id"] += [rec["experiment_id"]] * n
        cols["ratings"] += [rec["ratings"]] * n
        cols["start"] += np.load(d / "starts.npy").tolist()
        cols["face_found"] += np.load(d / "found.npy").tolist()
        cols["face_timestamps"] += np.load(d / "timestamps.npy").tolist()
    index = {
        "config": config,
        "shapes": {
            "eeg": [spec.eeg.n_channels, spec.eeg.window_samples],
            "faces": [spec.face.frames_per_window, spec.face.frame_size, spec.face.frame_size, 3],
        },
        "shards": shards,
        "windows": cols,
    }
    path = folder / f"index-{_sha(names)[:16]}.json"
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(index))
    os.replace(tmp, path)
    return path


def _check_key_file(folder: Path, config: dict[str, Any]) -> None:
    key_file = folder / "key.json"
    stored = json.loads(key_file.read_text()) if key_file.is_file() else None
    if stored != config:
        raise MilmerInputError(
            f"Invalid cache {str(folder)!r}: its key.json does not match the configuration it is "
            f"opened with (stored {stored!r}, expected {config!r}); delete the folder and rebuild."
        )


def open_cache(index_path: str | os.PathLike[str], *, check_sources: bool = True) -> CachedWindows:
    """Open a built cache from its ``index-*.json``, refusing it if anything is stale.

    Checks that the folder's ``key.json`` matches the index, that every shard is complete, and
    (``check_sources``) that every source file still has the size and mtime it was built from.
    """
    index_path = Path(index_path)
    if not index_path.is_file():
        raise MilmerInputError(f"Invalid value for 'index_path': file not found: {str(index_path)!r}.")
    folder = index_path.parent
    index = json.loads(index_path.read_text())
    _check_key_file(folder, index["config"])
    for shard in index["shards"]:
        d = folder / "shards" / shard["name"]
        if not (d / "meta.json").is_file():
            raise MilmerInputError(f"Invalid cache {str(folder)!r}: shard {shard['name']} is missing; rebuild it.")
        if check_sources:
            for kind in ("dat", "video"):
                was = shard["sources"][kind]
                p = Path(was["path"])
                now = _stamp(p) if p.is_file() else None
                if now != was:
                    raise MilmerInputError(
                        f"Stale cache {str(folder)!r}: source {str(p)!r} of shard {shard['name']} changed "
                        f"since it was built (was {was}, now {now}); rebuild with build_cache."
                    )
    return CachedWindows(folder, index_path, index)


# --------------------------------------------------------------------------- building
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
    if not records:
        raise MilmerInputError("Invalid value for 'records': expected at least one trial, got none.")
    names_seen = [r.name for r in records]
    dupes = sorted({n for n in names_seen if names_seen.count(n) > 1})
    if dupes:
        raise MilmerInputError(f"Invalid value for 'records': trial(s) listed twice: {', '.join(dupes)}.")
    if workers is None:
        workers = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise MilmerInputError(f"Invalid value for 'workers': expected an integer >= 1, got {workers!r}.")

    config = cache_config(spec, baseline_s=baseline_s, offset_s=offset_s)
    folder = cache_dir(cache_root, config)
    shards = folder / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    key_file = folder / "key.json"
    if not key_file.is_file():
        tmp = key_file.with_name(f"key.json.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(config, indent=1, sort_keys=True))
        os.replace(tmp, key_file)
    _check_key_file(folder, config)
    _clean_stale_tmp(shards)

    names, todo = [], []
    for rec in records:
        sources = _sources(rec)
        name = _shard_name(rec, sources, config)
        names.append(name)
        if not (shards / name / "meta.json").is_file():
            todo.append(_ShardTask(rec, spec, float(baseline_s), float(offset_s), sources, config, shards / name))
    if len(todo) < len(records):
        log.info("DEAP cache %s: %d of %d trials already built", folder, len(records) - len(todo), len(records))
    _run(todo, workers, progress)
    return open_cache(_write_index(folder, config, names, spec))


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
