"""Read EEG recordings: EDF/BDF/FIF/BrainVision through MNE, DEAP's pickled ``.dat`` files safely.

DEAP ships its preprocessed data as Python pickles. Unpickling runs whatever callables the file
names, so :func:`load_deap_dat` uses an unpickler that resolves only the few numpy names an
array needs and refuses every other name before anything is called.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..check import MilmerInputError, check_array, check_path_exists, check_suffix, read_error
from ..spec import DEAP_CHANNELS
from .decimate import MAX_FULL_RATE_BYTES

if TYPE_CHECKING:
    import mne

__all__ = [
    "EEG_SUFFIXES",
    "DEAP_EXTRA_CHANNELS",
    "read_raw",
    "load_deap_dat",
    "deap_trial_to_raw",
    "edf_record_onsets",
    "insert_gaps",
]

#: File suffix -> name of the MNE reader in ``mne.io``.
_READERS: dict[str, str] = {
    ".edf": "read_raw_edf",
    ".bdf": "read_raw_bdf",
    ".fif": "read_raw_fif",
    ".vhdr": "read_raw_brainvision",
}
EEG_SUFFIXES: tuple[str, ...] = tuple(_READERS)

#: DEAP channels 33-40 and their MNE types, after the 32 EEG channels of ``DEAP_CHANNELS``.
DEAP_EXTRA_CHANNELS: tuple[tuple[str, str], ...] = (
    ("hEOG", "eog"), ("vEOG", "eog"), ("zEMG", "emg"), ("tEMG", "emg"),
    ("GSR", "misc"), ("Respiration", "misc"), ("Plethysmograph", "misc"), ("Temperature", "misc"),
)  # fmt: skip

# DEAP stores biopotentials in microvolts; MNE works in volts. GSR, respiration, plethysmograph
# and temperature are in their own units and stay as they are.
_MICROVOLT_TYPES = ("eeg", "eog", "emg")

# Everything a pickled dict of numpy arrays refers to, under numpy 1.x and 2.x module names.
# ``_codecs.encode`` carries raw bytes in protocol-2 pickles written by Python 3.
_PICKLE_ALLOWED: frozenset[tuple[str, str]] = frozenset(
    [("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")]
    + [(f"numpy.{core}.multiarray", name) for core in ("core", "_core") for name in ("_reconstruct", "scalar")]
    + [(f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")]
)


def read_raw(path: str | os.PathLike[str], notes: list[str] | None = None) -> mne.io.BaseRaw:
    """Read an ``.edf``, ``.bdf``, ``.fif`` or ``.vhdr`` recording, in volts: preloaded when its
    channels take at most :data:`~.decimate.MAX_FULL_RATE_BYTES` as float64, else left on disk
    (MNE reads the parts asked for; preprocessing reads it in chunks).

    The reader's warnings (odd dates, a recording not stopped cleanly) are appended to ``notes``
    as one line each, prefixed with the file's name; without ``notes`` they are re-issued as
    ``RuntimeWarning``. Discontinuous EDF+D/BDF+D files are put on their true time axis
    (:func:`insert_gaps`): sample ``k`` of the result is at ``k / sfreq`` seconds after the
    recording's start, the gaps are annotated ``BAD_ACQ_SKIP``.
    """
    import mne

    p = check_path_exists("eeg", path)
    suffix = check_suffix("eeg", p, EEG_SUFFIXES)
    reader = getattr(mne.io, _READERS[suffix])
    # The reader's warnings are worth seeing only when the file could be read.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = reader(p, preload=False, verbose=False)
            # Small recordings are loaded now; long high-rate ones stay on disk and are read in
            # chunks by preprocessing's early resampling (.decimate), which bounds peak memory.
            if raw.n_times * len(raw.ch_names) * 8 <= MAX_FULL_RATE_BYTES:
                raw.load_data(verbose=False)
        except Exception as err:  # MNE raises many types (ValueError, OSError, struct.error, ...)
            raise read_error("eeg", p, err, what=f"{suffix} file") from err
    lines = [f"{p.name}: {' '.join(str(w.message).split())}" for w in caught]
    if suffix in (".edf", ".bdf"):
        onsets = edf_record_onsets(p)
        if onsets is not None:
            raw, gaps = insert_gaps(raw, onsets[0], onsets[1])
            lines.append(
                f"{p.name}: discontinuous recording (EDF+D): {len(gaps)} gap(s) "
                + ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in gaps)
                + " put at their true times and marked BAD_ACQ_SKIP"
            )
    if notes is not None:
        notes.extend(lines)
    else:
        for line in lines:
            warnings.warn(line, RuntimeWarning, stacklevel=2)
    return raw


def edf_record_onsets(path: str | os.PathLike[str]) -> tuple[np.ndarray, float] | None:
    """Data-record onsets (s) of a discontinuous EDF+D/BDF+D file and the record length (s).

    None for continuous files (plain EDF, EDF+C). EDF+ (https://www.edfplus.info/specs/edfplus.html):
    the first TAL of each record's annotation signal is ``+<onset>\\x14\\x14``, the record's
    start in seconds after the file's start time.
    """
    with open(path, "rb") as fh:
        head = fh.read(256)
        if len(head) < 256 or head[192:197] not in (b"EDF+D", b"BDF+D"):
            return None
        width = 3 if head[0:1] == b"\xff" else 2
        n_records = int(head[236:244].decode("ascii").strip())
        record_s = float(head[244:252].decode("ascii").strip())
        ns = int(head[252:256].decode("ascii").strip())
        sig = fh.read(256 * ns)
        labels = [sig[16 * i : 16 * (i + 1)].decode("latin1").strip() for i in range(ns)]
        off = ns * (16 + 80 + 8 + 8 + 8 + 8 + 8 + 80)
        spr = [int(sig[off + 8 * i : off + 8 * (i + 1)].decode("ascii").strip()) for i in range(ns)]
        ann = [i for i, lab in enumerate(labels) if lab in ("EDF Annotations", "BDF Annotations")]
        if not ann:
            return None
        start = sum(spr[: ann[0]]) * width
        length = spr[ann[0]] * width
        record_bytes = sum(spr) * width
        onsets = []
        for k in range(n_records):
            fh.seek(256 * (ns + 1) + k * record_bytes + start)
            tal = fh.read(length)
            head_tal = tal.split(b"\x14", 1)[0].decode("latin1").strip("\x00 ")
            onsets.append(float(head_tal))
    onsets_arr = np.asarray(onsets) - onsets[0]
    return onsets_arr, record_s


def insert_gaps(raw: mne.io.BaseRaw, onsets: np.ndarray, record_s: float) -> tuple[mne.io.BaseRaw, list[tuple[float, float]]]:
    """Put the data records of ``raw`` (read as if contiguous) at their ``onsets`` (s).

    Gaps are filled with a straight line between the samples on either side (so filters do not
    ring at a step) and annotated ``BAD_ACQ_SKIP`` (MNE's filters, ICA and epoching skip them).
    The file's own annotations already carry true times and are kept. Returns the new recording
    and the gaps as (start, end) seconds.
    """
    import mne

    sfreq = float(raw.info["sfreq"])
    spr = int(round(record_s * sfreq))
    data = raw.get_data()  # (C, n_records * spr)
    n_total = int(round((onsets[-1] + record_s) * sfreq))
    out = np.empty((data.shape[0], n_total))
    filled = np.zeros(n_total, bool)
    for k, onset in enumerate(onsets):
        at = int(round(onset * sfreq))
        out[:, at : at + spr] = data[:, k * spr : (k + 1) * spr]
        filled[at : at + spr] = True
    gaps: list[tuple[float, float]] = []
    idx = np.flatnonzero(~filled)
    if idx.size:
        breaks = np.flatnonzero(np.diff(idx) > 1)
        for a, b in zip(np.r_[idx[0], idx[breaks + 1]], np.r_[idx[breaks], idx[-1]]):
            left, right = out[:, a - 1], out[:, b + 1] if b + 1 < n_total else out[:, a - 1]
            ramp = np.linspace(0, 1, b - a + 3)[1:-1]
            out[:, a : b + 1] = left[:, None] + (right - left)[:, None] * ramp[None, :]
            gaps.append((a / sfreq, (b + 1) / sfreq))
    new = mne.io.RawArray(out, raw.info.copy(), verbose=False)
    new._orig_units = dict(getattr(raw, "_orig_units", {}) or {})
    annotations = raw.annotations.copy()
    for a, b in gaps:
        annotations.append(a, b - a, "BAD_ACQ_SKIP")
    new.set_annotations(annotations)
    return new, gaps


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Resolves only the names in ``_PICKLE_ALLOWED``; refuses any other before it is called."""

    def __init__(self, file: Any, source: Path) -> None:
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_ALLOWED:
            raise MilmerInputError(
                f"Invalid value for 'eeg': refusing to unpickle {module}.{name} from "
                f"{str(self._source)!r}: DEAP .dat files contain only numpy arrays."
            )
        return super().find_class(module, name)


def load_deap_dat(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Load a DEAP ``data_preprocessed_python/sXX.dat`` file without running code from it.

    Returns ``{'data': (trials, channels >= 32, samples) float, 'labels': (trials, 4) float}``;
    ``data`` is in microvolts (DEAP's unit), ``labels`` are valence, arousal, dominance, liking.
    """
    p = check_path_exists("eeg", path)
    try:
        with p.open("rb") as fh:
            obj = _NumpyOnlyUnpickler(fh, p).load()
    except MilmerInputError:
        raise
    except Exception as err:  # truncated or not a pickle at all
        raise read_error("eeg", p, err, what="DEAP file") from err
    return _check_deap_dict(obj, p)


def _check_deap_dict(obj: Any, path: Path) -> dict[str, np.ndarray]:
    where = f"Invalid value for 'eeg': {str(path)!r} is not a DEAP .dat file"
    if not isinstance(obj, dict) or not {"data", "labels"} <= set(obj):
        got = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise MilmerInputError(f"{where}: expected a dict with keys 'data' and 'labels', got {got}.")
    data, labels = obj["data"], obj["labels"]
    for key, arr in (("data", data), ("labels", labels)):
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
            kind = getattr(arr, "dtype", type(arr).__name__)
            raise MilmerInputError(f"{where}: {key!r} must be a numeric numpy array, got {kind}.")
    if data.ndim != 3 or data.shape[1] < len(DEAP_CHANNELS) or data.shape[2] == 0:
        raise MilmerInputError(
            f"{where}: 'data' must be (trials, channels >= {len(DEAP_CHANNELS)}, samples), "
            f"got {data.shape}."
        )
    if labels.shape != (data.shape[0], 4):
        raise MilmerInputError(
            f"{where}: 'labels' must be (trials, 4) = ({data.shape[0]}, 4), got {labels.shape}."
        )
    return {"data": data, "labels": labels}


def deap_trial_to_raw(trial: np.ndarray, sfreq: float = 128.0) -> mne.io.RawArray:
    """One DEAP trial as an MNE recording with DEAP's channel names and types.

    trial: (40, T) microvolts (GSR etc. in their own units), channels in DEAP's order: the 32
    EEG channels of ``DEAP_CHANNELS`` then hEOG, vEOG (eog), zEMG, tEMG (emg), GSR,
    Respiration, Plethysmograph, Temperature (misc). The result is in volts.
    """
    import mne

    n_channels = len(DEAP_CHANNELS) + len(DEAP_EXTRA_CHANNELS)
    trial = np.asarray(trial)
    check_array("trial", trial, shape=(n_channels, "samples"), nonempty=True, what=f"a DEAP trial of shape ({n_channels}, samples)")
    names = list(DEAP_CHANNELS) + [name for name, _ in DEAP_EXTRA_CHANNELS]
    types = ["eeg"] * len(DEAP_CHANNELS) + [kind for _, kind in DEAP_EXTRA_CHANNELS]
    scale = np.array([1e-6 if kind in _MICROVOLT_TYPES else 1.0 for kind in types])
    info = mne.create_info(names, float(sfreq), types, verbose=False)
    return mne.io.RawArray(trial.astype(np.float64) * scale[:, None], info, verbose=False)
