"""Which of a recording's picked channels can be used, checked one channel at a time before
anything mixes them (the average reference spreads one bad channel into every other).

:func:`find_bad_channels` sorts the picked channels into usable ones and bad ones, each bad one
with the reason (a :data:`BAD_KINDS` code): NaN throughout, flat at zero (a stored reference
electrode: kept, the average reference restores it), stuck at a non-zero constant (railed),
not EEG (a non-voltage unit field), or an implausible amplitude while most channels look like
EEG. :func:`check_bad_channels` refuses them, naming each channel and the way forward, unless
``--interpolate-missing`` asks for them to be interpolated.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..check import MilmerInputError
from ..scratch import release
from ..spec import EEGSpec
from .artefacts import MNE_QUIET, constant_channels
from .channels import ChannelMatch, find_eog, missing_message, too_few_message
from .filters import average_reference
from .options import min_real_channels
from .units import PLAUSIBLE_UV, robust_amplitude_uv, unit_factor

__all__ = [
    "BAD_KINDS",
    "BadChannels",
    "find_bad_channels",
    "check_bad_channels",
    "check_interpolation",
    "interpolate_bads",
    "interpolation_matrix",
    "screen_amplitude_uv",
    "usable_eog",
]

#: Reason code -> what it means, for messages and reports.
BAD_KINDS: dict[str, str] = {
    "nan": "NaN or infinite throughout",
    "flat": "flat (a disconnected electrode)",
    "railed": "stuck at a constant non-zero value (a railed or dead electrode; a reference electrode is stored as zeros)",
    "not-eeg": "not EEG (the file types it non-EEG and its unit field is not a voltage)",
    "implausible": "an amplitude unlike scalp EEG while the other channels look like EEG",
}
if TYPE_CHECKING:
    import mne

    from .options import EEGInputOptions

#: A channel whose standard deviation is below this (volts) carries no signal.
FLAT_STD_V = 1e-12
#: Seconds of the recording screened for each channel's amplitude (the start, band-passed).
SCREEN_S = 60.0
#: Seconds of the recording interpolated at a time by :func:`interpolate_bads`.
INTERPOLATE_CHUNK_S = 60.0


@dataclass(frozen=True)
class BadChannels:
    """Picked channels that cannot be used as recorded.

    bad:                 spec channel -> reason code (:data:`BAD_KINDS`)
    reference_electrode: the one channel flat at 0 V, taken as the electrode the others were
                         recorded against (None when there is none)
    amplitude_uv:        spec channel -> robust amplitude (uV) of the screened stretch
    """

    bad: dict[str, str] = field(default_factory=dict)
    reference_electrode: str | None = None
    amplitude_uv: dict[str, float] = field(default_factory=dict)


def screen_amplitude_uv(data: np.ndarray, sfreq: float, l_freq: float, h_freq: float) -> np.ndarray:
    """data: (C, T) volts -> (C,) robust amplitude (uV) of the first :data:`SCREEN_S` seconds,
    band-passed ``max(l_freq, 1)``-``h_freq`` Hz per channel (no reference: channels stay apart)."""
    import mne

    n = min(data.shape[1], int(SCREEN_S * sfreq))
    part = data[:, :n] - np.median(data[:, :n], axis=1, keepdims=True)
    h = min(h_freq, sfreq / 2 - 1)
    if n > 3 * sfreq / max(l_freq, 1.0):
        part = mne.filter.filter_data(part, sfreq, max(l_freq, 1.0), h, verbose="error")
    return robust_amplitude_uv(part)


def find_bad_channels(
    eeg: np.ndarray,
    names: Sequence[str],
    sfreq: float,
    spec_eeg: EEGSpec,
    *,
    types: Sequence[str],
    unit_fields: Mapping[str, str],
    flat_std: float,
    rows: Sequence[int] | None = None,
) -> BadChannels:
    """eeg: (C, T) volts; its ``rows`` (default: all) hold the picked channels ``names`` (NaN
    runs already bridged, channels NaN throughout left NaN); ``types``: the reader's type of
    each; ``unit_fields``: name -> the file's unit field. Read a channel at a time (no (C, T)
    temporary; a scratch-file ``eeg`` is released after each, :mod:`.scratch`)."""
    rows = list(range(len(names))) if rows is None else list(rows)
    row_of = dict(zip(rows, names))
    bad: dict[str, str] = {}
    for row, name in row_of.items():
        if not np.isfinite(eeg[row]).any():
            bad[name] = "nan"
        release(eeg)
    checked = [row for row, name in row_of.items() if name not in bad]
    zero, stuck = constant_channels(eeg, flat_std, checked)  # rows of eeg
    reference = None
    zero_names = [row_of[i] for i in zero]
    if len(zero_names) == 1 and spec_eeg.reference == "average" and len(names) > 1:
        reference = zero_names[0]
    else:
        bad.update({c: "flat" for c in zero_names})
    bad.update({row_of[i]: "railed" for i in stuck})
    for name, kind in zip(names, types):
        unit = unit_fields.get(name, "")
        if name not in bad and kind != "eeg" and unit and unit_factor(unit) is None:
            bad[name] = "not-eeg"
    live = [i for i, name in row_of.items() if name not in bad and name != reference]
    amplitude: dict[str, float] = {}
    if live:
        n = min(eeg.shape[1], int(SCREEN_S * sfreq))
        amp = screen_amplitude_uv(eeg[live, :n], sfreq, spec_eeg.l_freq, spec_eeg.h_freq)  # a copy of n samples
        amplitude = {row_of[i]: float(a) for i, a in zip(live, amp)}
        lo, hi = PLAUSIBLE_UV
        odd = [row_of[i] for i, a in zip(live, amp) if not lo <= a <= hi]
        # A minority out of range is the channels' fault; most channels out of range is the
        # unit's (left to the unit check after the band-pass): one channel never decides it.
        if odd and len(odd) < len(live) / 2:
            bad.update({c: "implausible" for c in odd})
    return BadChannels(bad=bad, reference_electrode=reference, amplitude_uv=amplitude)


def check_bad_channels(
    found: BadChannels, interpolate_missing: bool, types: Mapping[str, str], unit_fields: Mapping[str, str]
) -> None:
    """Refuse bad channels unless they are to be interpolated, naming each with its reason,
    reader type, unit field and amplitude, and the ways forward."""
    if not found.bad or interpolate_missing:
        return
    parts = []
    for name, kind in found.bad.items():
        detail = [f"typed {types[name]!r}" if types.get(name, "eeg") != "eeg" else ""]
        if unit_fields.get(name):
            detail.append(f"unit field {unit_fields[name]!r}")
        if name in found.amplitude_uv:
            detail.append(f"{found.amplitude_uv[name]:.3g} \u00b5V")
        extra = ", ".join(d for d in detail if d)
        parts.append(f"{name} ({BAD_KINDS[kind]}{'; ' + extra if extra else ''})")
    raise MilmerInputError(
        f"Invalid value for 'eeg': {len(found.bad)} channel(s) cannot be used as EEG: {'; '.join(parts)}. "
        "Kept, they would enter the average reference and shift every other channel. Mark them bad "
        "in the file (info['bads']), drop or rename them (--channel-map), or let milmer interpolate "
        "them from their neighbours with --interpolate-missing (flagged in every output)."
    )


def check_interpolation(
    to_interpolate: Sequence[str],
    match: ChannelMatch,
    bads_in_file: Sequence[str],
    ch_names: Sequence[str],
    spec_eeg: EEGSpec,
    options: EEGInputOptions,
) -> None:
    if not to_interpolate:
        return
    n = spec_eeg.n_channels
    too_few = n - len(match.missing) < min_real_channels(n)  # not the model's input, whatever the limit
    if match.missing and (too_few or not options.interpolate_missing or len(match.missing) > options.max_interpolated):
        # One answer whether or not --interpolate-missing was given (it cannot help past the limit).
        also = f" The file also marks {', '.join(bads_in_file)} bad." if bads_in_file else ""
        raise MilmerInputError(
            missing_message(match.missing, ch_names, spec_eeg, max_interpolated=options.max_interpolated) + also
        )
    if not options.interpolate_missing:
        raise MilmerInputError(
            f"Invalid value for 'eeg': the file marks channel(s) {', '.join(bads_in_file)} bad "
            "(info['bads']); the model needs all of its channels. Let milmer interpolate them from "
            "their neighbours with --interpolate-missing (flagged in every output), or repair the file."
        )
    n_real = n - len(set(to_interpolate))
    if len(to_interpolate) > options.max_interpolated or n_real < min_real_channels(n):
        limit = (
            f"only {n_real} would be real. " + too_few_message(n)
            if n_real < min_real_channels(n)
            else f"at most {options.max_interpolated} are (--max-interpolated)."
        )
        raise MilmerInputError(
            f"Invalid value for 'eeg': {len(to_interpolate)} of the model's {n} "
            f"channels would be interpolated ({', '.join(to_interpolate)}); {limit} Interpolated "
            "channels carry no signal of their own."
        )


def interpolate_bads(work: mne.io.BaseRaw, spec_eeg: EEGSpec) -> None:
    """Spherical-spline interpolation of ``work.info['bads']`` from standard 10-20 positions,
    then the average reference again (it now includes the interpolated channels)."""
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # renamed 'colin27_1005' in MNE 1.14
        from .channels import standard_1005_montage_name
        montage = mne.channels.make_standard_montage(standard_1005_montage_name())
    known = {n.lower() for n in montage.ch_names}
    unknown = [c for c in spec_eeg.channels if c.lower() not in known]
    if unknown:
        raise MilmerInputError(
            f"Invalid value for 'eeg': cannot interpolate: channel(s) {', '.join(unknown)} have no "
            "standard 10-20 position."
        )
    work.set_montage(montage, match_case=False, on_missing="ignore", verbose=MNE_QUIET)
    matrix, goods, bads = interpolation_matrix(work)
    data = work._data  # (C, T) the recording's own samples, edited in place as MNE's call does
    step = max(1, int(INTERPOLATE_CHUNK_S * work.info["sfreq"]))
    for a in range(0, data.shape[1], step):
        data[bads, a : a + step] = matrix @ data[goods, a : a + step]
        release(data)
    work.info["bads"] = []
    if spec_eeg.reference == "average":
        average_reference(work)


def interpolation_matrix(work: mne.io.BaseRaw) -> tuple[np.ndarray, list[int], list[int]]:
    """MNE's spherical-spline interpolation of ``work.info['bads']`` (EEG, from the positions in
    ``work.info``) as a matrix: (n_bad, n_good), the good and bad EEG channels' indices. Taken
    from ``interpolate_bads`` run on an identity recording (its rows, the good channels, are the
    unit vectors), so that the matrix is MNE's own; applying it :data:`INTERPOLATE_CHUNK_S` at
    a time spares the full-length copy of the good channels MNE's call makes."""
    import mne

    goods = [int(i) for i in mne.pick_types(work.info, eeg=True, exclude="bads")]
    bads = [int(i) for i in mne.pick_types(work.info, eeg=True, exclude=()) if work.ch_names[i] in work.info["bads"]]
    unit = np.zeros((len(work.ch_names), max(len(goods), 2)))
    unit[goods, : len(goods)] = np.eye(len(goods))
    probe = mne.io.RawArray(unit, work.info.copy(), verbose=MNE_QUIET)
    probe.interpolate_bads(reset_bads=True, verbose=MNE_QUIET)
    return probe._data[bads, : len(goods)], goods, bads


def usable_eog(raw: mne.io.BaseRaw, spec_eeg: EEGSpec) -> tuple[list[str], dict[str, str]]:
    """EOG channels fit to guide ICA, and why any others were left out."""
    names = find_eog(raw.ch_names, raw.get_channel_types(), spec_eeg)
    usable, ignored = [], {}
    for name in names:
        std = _finite_std(raw, name)
        if std is None:
            ignored[name] = "NaN or infinite values"
        elif std < FLAT_STD_V:
            ignored[name] = "flat"
        else:
            usable.append(name)
    return usable, ignored


def _finite_std(raw: mne.io.BaseRaw, name: str) -> float | None:
    """Standard deviation of channel ``name``'s finite samples (None when there are none), read
    :data:`SCREEN_S` x 10 at a time: each stretch's count, mean and squared deviations combined
    (Chan et al.'s pairwise update, as stable as the two-pass formula), no full-length copy."""
    n, mean, m2 = 0, 0.0, 0.0
    step = max(1, int(10 * SCREEN_S * raw.info["sfreq"]))
    for a in range(0, raw.n_times, step):
        chunk = raw.get_data(picks=[name], start=a, stop=min(a + step, raw.n_times))[0]
        release(getattr(raw, "_data", None))  # the decimated recording's rows may be a scratch file
        chunk = chunk[np.isfinite(chunk)]
        if chunk.size:
            k, chunk_mean = chunk.size, float(chunk.mean())
            delta = chunk_mean - mean
            m2 += float(((chunk - chunk_mean) ** 2).sum()) + delta**2 * n * k / (n + k)
            mean += delta * k / (n + k)
            n += k
    return None if n == 0 else float(np.sqrt(m2 / n))
