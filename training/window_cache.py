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

Building (:func:`~.window_cache_build.build_cache`, in :mod:`.window_cache_build`): a finished
shard is skipped, so an interrupted build continues where it stopped. Two builds writing the same
cache folder at once are not supported.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.check import MilmerInputError, check_finite, check_path_exists, check_positive
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
    "open_cache",
    "CachedWindows",
    "ShardedArray",
]

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
SHARD_FILES = ("eeg.npy", "faces.npy", "found.npy", "timestamps.npy", "starts.npy")


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
    check_finite("offset_s", offset_s)
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
    (``$MILMER_HOME``, else ``~/.cache/milmer``; :func:`milmer.runtime.home.milmer_home`).
    """
    from ..runtime.home import milmer_home

    env = os.environ.get(CACHE_DIR_ENV)
    return (Path(env).expanduser() if env else milmer_home() / "windows").absolute()


def cache_dir(cache_root: str | os.PathLike[str], config: dict[str, Any]) -> Path:
    """The folder of one configuration: ``cache_root/deap-<first 16 hex of its key>``."""
    return Path(cache_root) / f"deap-{_sha(config)[:16]}"


def _stamp(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def trial_sources(record: TrialRecord) -> dict[str, Any]:
    for name, p in (("dat_path", record.dat_path), ("video_path", record.video_path)):
        check_path_exists(f"{record.name}.{name}", p)
    return {"dat": _stamp(Path(record.dat_path)), "video": _stamp(Path(record.video_path)), "row": record.row}


def shard_name(record: TrialRecord, sources: dict[str, Any], config: dict[str, Any]) -> str:
    return f"{record.name}-{_sha({'sources': sources, 'config': config})[:12]}"


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


def write_index(folder: Path, config: dict[str, Any], names: list[str], spec: ModelSpec) -> Path:
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


def check_key_file(folder: Path, config: dict[str, Any]) -> None:
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
    index_path = check_path_exists("index_path", index_path)
    folder = index_path.parent
    index = json.loads(index_path.read_text())
    check_key_file(folder, index["config"])
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
