"""Step 1 of preprocessing: a user's recording as one MNE recording of the spec's channels.

:func:`working_recording` finds the spec's channels (:func:`~.channels.match_channels`) and any
EOG channels, reads a long high-rate file in chunks (:mod:`.decimate`), applies the units
(:func:`~.units.to_volts`), checks each picked channel on its own (:mod:`.bad_channels`), turns NaN
runs into gaps and clipping into ``BAD_clipped`` spans (:mod:`.artefacts`), and bridges every
``BAD_*`` span before any filter runs. What it found is in :class:`Working` (typed notes included).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..scratch import release, zeros
from ..spec import EEGSpec
from .artefacts import (
    CLIP_DESCRIPTION, MNE_QUIET, bad_span_samples, bridge_spans, clipped_spans, nan_runs, relative_annotations,
)  # fmt: skip
from .bad_channels import BAD_KINDS, FLAT_STD_V, check_bad_channels, check_interpolation, find_bad_channels, usable_eog
from .channels import find_eog, match_channels
from .egi import egi_preset, egi_to_1020
from .decimate import early_ratio, resample_early
from .quality import GAP
from .report import ChannelReport, EEGNote
from .units import to_volts, unit_field

if TYPE_CHECKING:
    import mne

    from .options import EEGInputOptions

__all__ = ["Working", "move_rows", "working_recording"]


@dataclass
class Working:
    """Step 1's result: the spec's channels (and EOG) as one MNE recording, and what was found."""

    work: mne.io.RawArray
    eog_names: list[str]
    channels: ChannelReport
    unit_fields: dict[str, str]
    line_freq_in_file: float | None
    notes: list[EEGNote] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def working_recording(raw: mne.io.BaseRaw, spec_eeg: EEGSpec, options: EEGInputOptions) -> Working:
    """Channels found, checked one by one, NaN runs and clipping marked, BAD_* spans bridged.

    The result's data is the only full-length copy made (rows: the spec's channels, then the
    usable EOG channels): every step here and after works on it in place (peak memory, see
    :mod:`.decimate`).
    """
    import mne

    notes: list[EEGNote] = []
    timings: dict[str, float] = {}
    # Read in chunks when the file's channels at its own rate would not fit (an EGI net included).
    ratio = early_ratio(raw.n_times, len(raw.ch_names), float(raw.info["sfreq"]), spec_eeg.sfreq)
    preset = egi_preset(options.channel_map)
    if preset:  # an EGI net: the model's sites interpolated from all of its electrodes first
        raw, note = egi_to_1020(raw, spec_eeg, preset)  # interpolated as it is read
        notes.append(note)
        if ratio is None:
            raw.load_data(verbose=MNE_QUIET)  # a short net: read and interpolated once
    types = raw.get_channel_types()
    match = match_channels(raw.ch_names, spec_eeg, types=types, channel_map=None if preset else options.channel_map)
    present = [c for c in spec_eeg.channels if c in match.picks]
    used = [raw.ch_names[match.picks[c]] for c in present]
    eog_candidates = [n for n in find_eog(raw.ch_names, types, spec_eeg) if n not in used]
    n_present, n_eog = len(present), len(eog_candidates)
    # (spec channels + EOG candidates, T): rows [0, n_present) the present channels in the spec's
    # order, then the EOG candidates, then zeros for the missing channels (rearranged at the end).
    n_rows = spec_eeg.n_channels + n_eog
    if ratio is not None:  # a long recording: read in chunks, resampled before any full-length copy
        tic, early = time.perf_counter(), []
        up, down = ratio
        n_out = -(-raw.n_times * up // down)
        # A scratch file when large (.scratch), its space checked with the windows' to come.
        buffer = zeros((n_rows, n_out), later_bytes=spec_eeg.n_channels * n_out * 4)
        raw = resample_early(
            raw, up, down, keep=used + eog_candidates, clip_channels=used, out=buffer[: n_present + n_eog], notes=early
        )  # its data: buffer's first rows
        notes += [EEGNote.of("decimated", text, up=up, down=down) for text in early]
        types = raw.get_channel_types()
        match = dataclasses.replace(match, picks={c: present.index(c) for c in match.picks})  # the same channels
        timings["decimate"] = time.perf_counter() - tic
    else:
        later = spec_eeg.n_channels * int(raw.n_times * spec_eeg.sfreq / float(raw.info["sfreq"])) * 4
        buffer = zeros((n_rows, raw.n_times), later_bytes=later)  # float32 windows at the model's rate
        for k, name in enumerate(eog_candidates):
            buffer[n_present + k] = raw.get_data(picks=[name])[0]
            release(buffer)
    sfreq = float(raw.info["sfreq"])
    bads_in_file = [c for c, i in match.picks.items() if raw.ch_names[i] in raw.info["bads"]]
    present = [c for c in spec_eeg.channels if c in match.picks]
    picks = [match.picks[c] for c in present]
    unit_fields = {c: unit_field(raw, raw.ch_names[match.picks[c]]) for c in present}
    picked_types = {c: types[i] for c, i in zip(present, picks)}
    check_interpolation(list(match.missing) + bads_in_file, match, bads_in_file, raw.ch_names, spec_eeg, options)
    eeg = to_volts(raw, picks, options.eeg_unit, out=buffer[:n_present])  # (C_present, T) volts, in place
    eog_names, eog_ignored = usable_eog(raw, spec_eeg)
    eog_names = [n for n in eog_names if n in eog_candidates]
    # The usable EOG rows first: eog is then a view, like eeg.
    order = eog_names + [n for n in eog_candidates if n not in eog_names]
    move_rows(buffer, {n_present + eog_candidates.index(n): n_present + k for k, n in enumerate(order)})
    eog = buffer[n_present : n_present + len(eog_names)]  # (C_eog, T) volts
    # Only the channels' samples (eeg, eog) and the recording's metadata are needed from here on.
    ch_names, n_times, stated = list(raw.ch_names), raw.n_times, raw.info.get("line_freq")
    annotations = relative_annotations(raw)
    del raw

    # NaN runs (dropouts) become gaps, bridged like an EDF+D gap; NaN-only channels are bad.
    nan_spans = nan_runs(eeg, also=eog)[1]
    bridge_spans(eeg, nan_spans)
    bridge_spans(eog, nan_spans)
    if nan_spans:
        seconds = [(round(a / sfreq, 3), round(b / sfreq, 3)) for a, b in nan_spans]
        notes.append(EEGNote.of(
            "nan-gap",
            f"{len(nan_spans)} NaN run(s) (dropouts) treated as recording gaps (BAD_ACQ_SKIP): "
            + ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in seconds[:5]) + (", ..." if len(seconds) > 5 else ""),
            spans_s=seconds,
        ))  # fmt: skip
    checked = [c for c in present if c not in bads_in_file]
    rows = [present.index(c) for c in checked]
    found = find_bad_channels(
        eeg, checked, sfreq, spec_eeg, rows=rows,
        types=[picked_types[c] for c in checked], unit_fields=unit_fields, flat_std=FLAT_STD_V,
    )  # fmt: skip
    check_bad_channels(found, options.interpolate_missing, picked_types, unit_fields)
    reference_channel = found.reference_electrode
    if reference_channel:
        notes.append(EEGNote.of(
            "reference-electrode",
            f"{reference_channel} is flat at 0 V: taken as the recording's reference electrode; "
            "the average reference restores it",
            channel=reference_channel,
        ))  # fmt: skip
    for name, kind in found.bad.items():
        notes.append(EEGNote.of("bad-channel", f"channel {name}: {BAD_KINDS[kind]}; interpolated", channel=name, kind=kind))
    retyped = {
        ch_names[i]: f"typed {types[i]!r} by the reader (unit field {unit_fields[c]!r}); used as EEG"
        for c, i in zip(present, picks)
        if types[i] != "eeg" and c not in found.bad
    }
    to_interpolate = list(match.missing) + bads_in_file + list(found.bad)
    check_interpolation(to_interpolate, match, bads_in_file, ch_names, spec_eeg, options)

    # Clipping (a saturated amplifier or ADC) in the usable channels: a bad span like BAD_*.
    usable_rows = [present.index(c) for c in present if c not in to_interpolate and c != reference_channel]
    clip_spans, clipping = clipped_spans(eeg, sfreq, usable_rows)
    if clip_spans:
        names = [present[i] for i in clipping]
        notes.append(EEGNote.of(
            "clipping",
            f"clipping (samples stuck at the channel's extreme) in {', '.join(names)}: {len(clip_spans)} span(s) "
            f"marked {CLIP_DESCRIPTION}, left out of the ICA fit, windows flagged",
            channels=names, spans_s=[(round(a / sfreq, 3), round(b / sfreq, 3)) for a, b in clip_spans],
        ))  # fmt: skip

    # The recording with the spec's names (missing and bad channels as zeros, marked bad): the
    # buffer's rows moved into place, never copied whole.
    info = mne.create_info(
        list(spec_eeg.channels) + eog_names, sfreq, ["eeg"] * spec_eeg.n_channels + ["eog"] * len(eog_names)
    )
    for row, c in enumerate(present):
        if c in to_interpolate:
            eeg[row] = 0.0
            release(buffer)
    del eeg, eog
    missing = [c for c in spec_eeg.channels if c not in present]
    dest = {row: spec_eeg.channels.index(c) for row, c in enumerate(present)}
    dest.update({n_present + k: spec_eeg.n_channels + k for k in range(n_eog)})  # usable EOG first
    dest.update({n_present + n_eog + k: spec_eeg.channels.index(c) for k, c in enumerate(missing)})  # zeros
    move_rows(buffer, dest)
    stacked = buffer[: spec_eeg.n_channels + len(eog_names)]  # (32 + n_eog, T) volts, a view
    for a, b in nan_spans:
        annotations.append(a / sfreq, (b - a) / sfreq, GAP)
    for a, b in clip_spans:
        annotations.append(a / sfreq, (b - a) / sfreq, CLIP_DESCRIPTION)
    # What a bad span holds (a pop, a rail step) must not reach clean windows through the filters:
    # its samples are replaced by a straight line before any filter runs.
    bridge_spans(stacked, bad_span_samples(annotations, sfreq, n_times))
    work = mne.io.RawArray(stacked, info, verbose=MNE_QUIET)
    work.info["bads"] = list(to_interpolate)
    work.set_annotations(annotations)
    channels = ChannelReport(
        mapped_by=match.how,
        renamed={ch_names[i]: c for c, i in match.picks.items() if ch_names[i] != c},
        interpolated=tuple(to_interpolate),
        missing=match.missing,
        bad_in_file=tuple(bads_in_file),
        bad=dict(found.bad),
        retyped=retyped,
        reference_electrode=reference_channel,
        eeg_unit=options.eeg_unit or "from the file",
        eog_ignored=eog_ignored,
    )
    return Working(work, eog_names, channels, unit_fields, float(stated) if stated else None, notes, timings)


def move_rows(data: np.ndarray, dest: dict[int, int]) -> None:
    """``data[dest[i]] = data[i]`` for every row ``i`` in ``dest`` at once, in place (``dest``:
    a permutation of its keys), holding two rows at a time: (R, T) rows rearranged without a
    second (R, T) array."""
    assert sorted(dest) == sorted(dest.values()), dest
    done: set[int] = set()
    for start in dest:
        if start in done or dest[start] == start:
            continue
        carry, j = data[start].copy(), start
        while True:  # follow the cycle start -> dest[start] -> ... -> start
            done.add(j)
            k = dest[j]
            if k == start:
                data[k] = carry
                release(data)
                break
            carry, data[k] = data[k].copy(), carry
            release(data)
            j = k
