"""EEG formats beyond EDF/BDF/FIF/BrainVision: read those a well-kept library reads, refuse the rest.

- ``.xdf`` (LabRecorder, LSL): pyxdf (the ``xdf`` extra), with its clock synchronisation and
  dejittering; the EEG stream's and a video frame-marker stream's clocks come with it (:mod:`.xdf`).
- ``.set`` (EEGLAB): ``mne.io.read_raw_eeglab`` (an HDF5/MATLAB 7.3 file also needs pymatreader).
- ``.mff`` (EGI, a folder): ``mne.io.read_raw_egi`` (needs mffpy).
- ``.txt`` (OpenBCI GUI) and ``.csv`` (BrainFlow): refused with the way to convert, since neither
  MNE nor another library here reads them as a recording with units and channel names.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..check import check_suffix, read_error
from ..dependencies import OPTIONAL_MODULES, missing_package_error
from .report import EEGNote
from .timing import EEGTiming, meas_date_of

if TYPE_CHECKING:
    import mne

__all__ = ["eeg_path_kind", "FORMAT_SUFFIXES", "REFUSED_SUFFIXES", "ACCEPTED", "read_format", "refuse_text_format"]

#: What :mod:`.io` and this module accept, for error messages.
ACCEPTED = ".edf, .bdf, .fif, .vhdr (BrainVision), .xdf (LabRecorder), .set (EEGLAB), .mff (EGI), DEAP .dat"

_CONVERT = (
    "OpenBCI GUI .txt and BrainFlow .csv files carry no units or channel names a reader can trust: "
    "record with LabRecorder to .xdf (the OpenBCI GUI streams to LSL), or convert with BrainFlow "
    "(DataFilter.read_file, then mne.io.RawArray with your channel names, scaled to volts, "
    "saved with raw.export('rec.edf'))."
)
_READERS = {".set": "read_raw_eeglab", ".mff": "read_raw_egi"}
# What MNE's reader imports for the format (module, distribution).
_NEEDS = {".mff": ("mffpy",)}
#: Read here (besides :data:`~.io.EEG_SUFFIXES` and DEAP ``.dat``).
FORMAT_SUFFIXES: tuple[str, ...] = (".xdf", ".set", ".mff")
#: Refused with the way to convert.
REFUSED_SUFFIXES: tuple[str, ...] = (".txt", ".csv")


def eeg_path_kind(path: str | os.PathLike[str]) -> Literal["file", "dir"]:
    """``"dir"`` for an EGI ``.mff`` recording (a folder), else ``"file"``."""
    return "dir" if Path(path).suffix.lower() == ".mff" else "file"


def refuse_text_format(path: Path, accepted: tuple[str, ...] = ()) -> None:
    """Raise MilmerInputError for an OpenBCI GUI ``.txt`` / BrainFlow ``.csv`` file: the suffixes
    read (``accepted``) and how to convert."""
    if path.suffix.lower() in REFUSED_SUFFIXES:
        check_suffix("eeg", path, accepted, hint=_CONVERT)


def read_format(path: str | os.PathLike[str], notes: list[EEGNote]) -> tuple[mne.io.BaseRaw, EEGTiming]:
    """Read ``path`` (one of :data:`FORMAT_SUFFIXES`) preloaded, in volts, with its timing facts.

    Raises MilmerInputError (parameter 'eeg') for OpenBCI/BrainFlow text files (how to convert),
    a missing optional reader (the package to install) and a file the reader rejects.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    refuse_text_format(p)
    if suffix == ".xdf":
        from .xdf import read_xdf

        return read_xdf(p, notes)
    import importlib.util

    import mne

    for module in _NEEDS.get(suffix, ()):
        if importlib.util.find_spec(module) is None:
            raise missing_package_error(module, needed_for=f"reading {suffix}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = getattr(mne.io, _READERS[suffix])(p, preload=True, verbose=False)
        except ImportError as err:  # an HDF5 (MATLAB 7.3) .set needs pymatreader
            module = err.name if err.name in OPTIONAL_MODULES else "pymatreader"
            raise missing_package_error(module, needed_for=f"reading {p.name!r}") from None
        except Exception as err:  # MNE raises many types for a file it cannot read
            raise read_error("eeg", p, err, what=f"{suffix} file") from err
    notes.extend(EEGNote.of("reader-warning", f"{p.name}: {' '.join(str(w.message).split())}") for w in caught)
    start, source = meas_date_of(raw, suffix)
    return raw, EEGTiming(start, source or f"{suffix} header")
