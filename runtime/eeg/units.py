"""Units and scale: what the file's numbers really are, and whether they look like scalp EEG.

A file's unit field is trusted by the reader (MNE scales ``uV`` data by 1e-6, leaves a blank
field or a FIF's numbers as volts), so a wrong or unrecognised field gives data 1e3-1e6 off with
nothing else amiss. :func:`check_amplitude` looks at a robust amplitude per channel after the
band-pass and refuses channels outside :data:`PLAUSIBLE_UV`, naming the channels, the unit field
and the way out (``--eeg-unit``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..check import MilmerInputError
from ..scratch import release

if TYPE_CHECKING:
    import mne

__all__ = ["EEG_UNITS", "PLAUSIBLE_UV", "unit_factor", "unit_field", "to_volts", "robust_amplitude_uv", "check_amplitude"]

#: ``--eeg-unit`` values -> volts per unit.
EEG_UNITS: dict[str, float] = {"V": 1.0, "mV": 1e-3, "uV": 1e-6, "nV": 1e-9}
#: Robust amplitude (1.4826 x median absolute deviation, band-passed) of scalp EEG, microvolts.
#: Typical channels are 3-50 uV; a unit error is a factor of 1e3 or 1e6 away.
PLAUSIBLE_UV: tuple[float, float] = (0.1, 1000.0)
# Voltage unit spellings -> volts per unit: the micro sign (U+00B5), Greek mu (U+03BC), 'u'.
_SPELLINGS = {"v": 1.0, "mv": 1e-3, "uv": 1e-6, "nv": 1e-9}


def unit_factor(unit: str | None) -> float | None:
    """Volts per unit of a unit field (``'µV'``, ``'μV'``, ``'uV'``, ``'mV'``, ``'V'``, ``'nV'``),
    None when the field is blank or not a voltage."""
    if not unit:
        return None
    key = unit.strip().replace("\u00b5", "u").replace("\u03bc", "u").lower()
    return _SPELLINGS.get(key)


def robust_amplitude_uv(data: np.ndarray) -> np.ndarray:
    """data: (C, T) volts -> (C,) microvolts: 1.4826 x median absolute deviation (= the standard
    deviation for Gaussian data; blinks and artefacts in under half the samples do not move it)."""
    med = np.median(data, axis=1, keepdims=True)
    return 1.4826 * np.median(np.abs(data - med), axis=1) * 1e6


def check_amplitude(
    amplitude_uv: np.ndarray,
    names: Sequence[str],
    unit_fields: Mapping[str, str],
    eeg_unit: str | None,
) -> None:
    """Refuse channels whose robust amplitude lies outside :data:`PLAUSIBLE_UV`.

    amplitude_uv: (C,) from :func:`robust_amplitude_uv` after the band-pass; ``unit_fields``: the
    file's unit field per channel; ``eeg_unit``: the ``--eeg-unit`` given, if any.
    """
    lo, hi = PLAUSIBLE_UV
    bad = [(n, a) for n, a in zip(names, amplitude_uv) if not lo <= a <= hi]
    if not bad:
        return
    typical = float(np.median([a for _, a in bad]))
    listed = ", ".join(f"{n} ({a:.3g} \u00b5V)" for n, a in bad[:8]) + (", ..." if len(bad) > 8 else "")
    fields = sorted({repr(unit_fields.get(n, "") or "") for n, _ in bad})
    given = f"--eeg-unit {eeg_unit} was given" if eeg_unit else f"the file's unit field says {', '.join(fields)}"
    # The unit that brings the typical bad channel closest to 20 uV.
    ratio = 20.0 / typical if typical > 0 else 0.0
    hint = ""
    if ratio > 0:
        steps = int(round(np.log10(ratio) / 3))
        if steps:
            current = EEG_UNITS.get(eeg_unit or "", None)
            if current is None:
                known = [unit_factor(unit_fields.get(n)) for n, _ in bad]
                current = next((k for k in known if k), 1.0)
            target = current * 10.0 ** (3 * steps)
            unit = next((u for u, f in EEG_UNITS.items() if np.isclose(f, target)), None)
            size = "large" if steps < 0 else "small"
            if unit:
                hint = (f" The numbers look 1e{abs(3 * steps)} too {size}: if the file's numbers are in "
                        f"{unit}, rerun with --eeg-unit {unit}.")
    raise MilmerInputError(
        f"Invalid value for 'eeg': implausible EEG amplitude in {len(bad)} channel(s): {listed} "
        f"(robust amplitude after the band-pass; scalp EEG lies within {lo:g}-{hi:g} \u00b5V); {given}."
        + (hint or " Give the unit the file's numbers are in with --eeg-unit V|mV|uV|nV, or fix the file.")
    )


def unit_field(raw: mne.io.BaseRaw, name: str) -> str:
    """The file's unit field for channel ``name`` ('' when blank or the format has none)."""
    unit = (getattr(raw, "_orig_units", None) or {}).get(name, "")
    return "" if unit in (None, "n/a") else str(unit)


#: Seconds of a channel converted at a time by :func:`to_volts`.
VOLTS_CHUNK_S = 600.0

# Channel types MNE scales by the file's unit field (a 'misc' channel is left as stored).
_SCALED_TYPES = ("eeg", "eog", "emg", "ecg", "seeg", "ecog", "dbs")


def to_volts(
    raw: mne.io.BaseRaw, picks: Sequence[int], eeg_unit: str | None, out: np.ndarray | None = None
) -> np.ndarray:
    """(C, T) volts of ``picks``: the reader's values, with ``eeg_unit`` (the unit the file's
    numbers are in) replacing the unit field, and voltage units applied to channels the reader
    left unscaled (BrainVision 'μV' with a Greek mu: typed 'misc').

    Read one channel, :data:`VOLTS_CHUNK_S` at a time, into ``out`` ((C, T) float64, allocated
    when None; it may hold ``raw``'s own data: each stretch is read before it is written), so no
    second full copy, not even of one channel, is made.
    """
    types = raw.get_channel_types()
    if out is None:
        out = np.empty((len(picks), raw.n_times))
    step = max(1, int(VOLTS_CHUNK_S * raw.info["sfreq"]))
    for row, i in enumerate(picks):
        name = raw.ch_names[i]
        factor = unit_factor(unit_field(raw, name))
        applied = factor if (factor is not None and types[i] in _SCALED_TYPES) else 1.0
        for a in range(0, raw.n_times, step):
            data = raw.get_data(picks=[i], start=a, stop=min(a + step, raw.n_times))[0]  # (step,) a copy
            if eeg_unit is not None:
                data = data / applied * EEG_UNITS[eeg_unit]  # the file's numbers, in eeg_unit
            elif applied == 1.0 and factor is not None:
                data = data * factor
            out[row, a : a + step] = data
            release(out)  # a scratch-file buffer (:mod:`.scratch`): the stretch written leaves the resident set
    return out
