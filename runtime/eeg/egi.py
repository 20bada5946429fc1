"""EGI Geodesic Sensor Net recordings onto the model's 10-20 sites (``--channel-map egi-hydrocel-129``).

A NetStation file labels its electrodes ``E1``..``E128`` (``E256``), positions on the net, with
the vertex reference stored as a channel of zeros (``Cz`` or ``E129``/``E257``) or not at all.
No net electrode sits exactly on a 10-20 site, so renaming the nearest one would shift every
channel by up to a centimetre. Instead the net's electrodes are placed with MNE's montage for the
net (``GSN-HydroCel-129``, ...) and the model's sites are interpolated from all of them with
spherical splines (Perrin et al. 1989; MNE's ``Raw.interpolate_to``) at their 10-05 template
positions. The stored zero vertex channel is the reference electrode: it enters the fit as the
true 0 V of the reference site. Every output is flagged (note ``egi-interpolated``).

The interpolation is a fixed (32, n_net) matrix (positions only), taken from ``interpolate_to``
once and applied as the recording is read (:func:`mixed_raw`): a long net is read in chunks
(:mod:`.decimate`) and never held whole at the file's rate.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..check import MilmerInputError, requires_error
from ..spec import EEGSpec
import numpy as np

from .artefacts import MNE_QUIET
from .report import EEGNote

if TYPE_CHECKING:
    import mne

__all__ = ["EGI_PRESETS", "egi_preset", "egi_to_1020", "mixed_raw"]

#: ``--channel-map`` preset -> MNE's montage of that net (E-numbered electrodes, Cz the vertex).
EGI_PRESETS: dict[str, str] = {
    "egi-hydrocel-128": "GSN-HydroCel-128",  # E1..E128, the vertex reference not stored
    "egi-hydrocel-129": "GSN-HydroCel-129",  # E1..E128 + the vertex reference (Cz / E129)
    "egi-hydrocel-256": "GSN-HydroCel-256",
    "egi-hydrocel-257": "GSN-HydroCel-257",
}
_E = re.compile(r"^E(\d{1,3})$", re.IGNORECASE)
# NetStation writes the vertex reference as "Cz", "VREF", "Vertex Reference" or the next E number.
_VERTEX = re.compile(r"^(cz|vref|vertex( reference)?|ref)$", re.IGNORECASE)


def egi_preset(channel_map: str | Mapping[str, str] | None) -> str | None:
    """The EGI preset named by ``--channel-map`` (lower-cased), or None."""
    if isinstance(channel_map, str) and channel_map.strip().lower() in EGI_PRESETS:
        return channel_map.strip().lower()
    return None


def _net_labels(raw: mne.io.BaseRaw, preset: str) -> dict[str, str]:
    """File label -> montage label for the net's electrodes and vertex; refuses a file that is
    not this net."""
    import mne

    montage_names = mne.channels.make_standard_montage(EGI_PRESETS[preset]).ch_names
    n_e = sum(1 for n in montage_names if _E.match(n))
    vertex = next((n for n in montage_names if not _E.match(n)), None)  # 'Cz' in the *-129/257 nets
    types = raw.get_channel_types()
    labels: dict[str, str] = {}
    beyond = []  # E numbers past this net's: a bigger net
    for name, kind in zip(raw.ch_names, types):
        m = _E.match(name.strip())
        if m and 1 <= int(m.group(1)) <= n_e:
            labels[name] = f"E{int(m.group(1))}"
        elif vertex and kind == "eeg" and (_VERTEX.match(name.strip()) or (m and int(m.group(1)) == n_e + 1)):
            labels[name] = vertex
        elif m:
            beyond.append(name)
    electrodes = [n for n in labels.values() if n != vertex]
    # A few electrodes may be dropped from a file; most of the net must be there.
    if len(electrodes) < 0.9 * n_e or beyond:
        eeg = [n for n, k in zip(raw.ch_names, types) if k == "eeg"]
        raise MilmerInputError(
            f"Invalid value for '--channel-map': {preset} is the EGI HydroCel net of {n_e} electrodes "
            f"labelled E1..E{n_e}; the recording has {len(electrodes)} of them"
            + (f" and {len(beyond)} beyond them ({', '.join(beyond[:3])}, ...)" if beyond else "")
            + " (its EEG channels: "
            f"{', '.join(eeg[:8])}{', ...' if len(eeg) > 8 else ''}). Give the preset of the net it was "
            f"recorded with ({', '.join(EGI_PRESETS)}), or another --channel-map for a non-EGI cap."
        )
    return labels


#: The oldest MNE whose ``Raw.interpolate_to`` the presets were checked with.
MIN_MNE: tuple[int, int] = (1, 13)


def _release(version: str) -> tuple[int, int]:
    """``'1.13.2'`` -> ``(1, 13)``; a development version counts as its release."""
    parts = [int("".join(ch for ch in p if ch.isdigit()) or 0) for p in version.split(".")[:2]]
    return (parts + [0, 0])[0], (parts + [0, 0])[1]


def egi_to_1020(raw: mne.io.BaseRaw, spec_eeg: EEGSpec, preset: str) -> tuple[mne.io.BaseRaw, EEGNote]:
    """The model's channels interpolated from an EGI net recording.

    raw:    the file's recording, channels ``E1``..``En`` (+ the vertex), volts or the file's unit
    Returns a recording of (C_spec + non-EEG channels, T) samples, the spec's channels named
    as in the spec and typed EEG (the file's non-EEG channels, such as EOG or triggers, kept as
    they are), and the ``egi-interpolated`` note. The samples are in the file's unit (the units
    step runs after). Nothing is read yet: the result (a :class:`MixedRaw`) reads the part of
    ``raw`` asked for and interpolates it then, so a long recording is read in chunks like any
    other file (:mod:`.decimate`). Raises MilmerInputError when the file is not the preset's net or a spec
    channel has no 10-05 position.
    """
    import inspect

    import mne

    from .channels import standard_1005_montage_name

    labels = _net_labels(raw, preset)
    interpolate_to = getattr(mne.io.BaseRaw, "interpolate_to", None)
    if interpolate_to is None or "method" not in inspect.signature(interpolate_to).parameters:
        raise requires_error(
            "--channel-map", preset, "MNE's Raw.interpolate_to(method='spline')", f"MNE {mne.__version__}, which lacks it",
            hint="upgrade mne",
        )
    if _release(mne.__version__) < MIN_MNE:
        # Checked against a generated net with known sources: within 1 % with MNE 1.13; MNE 1.12's
        # interpolate_to placed the sites wrongly (errors of 12-83 % of the field).
        raise requires_error(
            "--channel-map", preset, f"MNE {'.'.join(map(str, MIN_MNE))} or later (checked there)",
            f"MNE {mne.__version__}, which interpolates the sites wrongly",
            hint="upgrade mne (MNE 1.13 needs Python 3.11 or later), or map the net's channels yourself",
        )
    net = mne.channels.make_standard_montage(EGI_PRESETS[preset])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        template = mne.channels.make_standard_montage(standard_1005_montage_name())
    by_lower = {n.lower() for n in template.ch_names}
    unknown = [c for c in spec_eeg.channels if c.lower() not in by_lower]
    if unknown:
        raise requires_error(
            "--channel-map", preset, "a 10-05 position for each of the model's channels (it interpolates there)",
            f"none for {', '.join(unknown)}",
        )
    # Both montages are brought to the head frame by their own fiducials (set_montage), so the
    # template's sites land on the net's head.
    sites = mne.create_info(list(spec_eeg.channels), float(raw.info["sfreq"]), "eeg")
    sites.set_montage(template, match_case=False, verbose=MNE_QUIET)
    target = sites.get_montage()
    types = raw.get_channel_types()
    others = [n for n, k in zip(raw.ch_names, types) if n not in labels and k != "eeg"]
    # Spherical splines are a fixed linear map of the net's samples (positions only): interpolating
    # an identity "recording" (sample k = electrode k at 1 V) gives its (32, n_net) matrix.
    net_info = mne.create_info([labels[n] for n in labels], float(raw.info["sfreq"]), "eeg")
    unit = mne.io.RawArray(np.eye(len(labels)), net_info, verbose=MNE_QUIET)
    unit.set_montage(net, on_missing="ignore", verbose=MNE_QUIET)
    interpolated = unit.interpolate_to(target, method="spline")
    mapping = interpolated.get_data()  # (32, n_net)
    matrix = np.zeros((len(mapping) + len(others), len(labels) + len(others)))
    matrix[: len(mapping), : len(labels)] = mapping
    matrix[len(mapping) :, len(labels) :] = np.eye(len(others))  # EOG, triggers: as they are
    info = mne.create_info(
        [*interpolated.ch_names, *others], float(raw.info["sfreq"]),
        ["eeg"] * len(mapping) + [types[raw.ch_names.index(n)] for n in others],
    )  # fmt: skip
    out = mixed_raw(raw, [*labels, *others], matrix, info)
    n_net = sum(1 for n in labels.values() if _E.match(n))
    vertex = [f for f, n in labels.items() if not _E.match(n)]
    note = EEGNote.of(
        "egi-interpolated",
        f"EGI net ({preset}): the model's {spec_eeg.n_channels} channels interpolated (spherical splines) "
        f"at their 10-05 positions from the net's {n_net} electrodes"
        + (f" and its vertex reference {vertex[0]} (0 V)" if vertex else "")
        + "; no channel is recorded at a 10-20 site",
        preset=preset, montage=EGI_PRESETS[preset], electrodes=n_net, vertex=vertex[0] if vertex else None,
    )  # fmt: skip
    return out, note



def mixed_raw(source: mne.io.BaseRaw, picks: list[str], matrix: np.ndarray, info: mne.Info) -> mne.io.BaseRaw:
    """A recording whose channels are fixed linear combinations of ``source``'s, computed on read.

    picks: the names of ``source``'s channels the combinations use; matrix: (C_out, len(picks));
    info: the output channels (C_out). Reading ``[start, stop)`` reads those samples of ``picks``
    (``source`` preloaded or not) and returns ``matrix @ block``: (C_out, stop - start). Meas
    date, line frequency and annotations are ``source``'s; unit fields those of the channels
    passed through as they are (an interpolated site has none, as with MNE's ``interpolate_to``).
    """
    with info._unlock():
        info["meas_date"] = source.info["meas_date"]
        info["line_freq"] = source.info.get("line_freq")
    extras = {"source": source, "picks": list(picks), "matrix": np.asarray(matrix, float), "first": source.first_samp}
    out = _mixed_class()(
        info, preload=False, first_samps=(source.first_samp,), last_samps=(source.last_samp,),
        filenames=(None,), raw_extras=[extras], orig_format="double", verbose=MNE_QUIET,
    )  # fmt: skip
    out.set_annotations(source.annotations)
    units = getattr(source, "_orig_units", None) or {}
    out._orig_units = {n: units[n] for n in picks if n in units and n in info["ch_names"]}
    return out


@functools.cache
def _mixed_class() -> type:
    """The reader class behind :func:`mixed_raw` (made on first use: MNE is imported lazily)."""
    import mne
    from mne._fiff.utils import _mult_cal_one

    class MixedRaw(mne.io.BaseRaw):
        def _read_segment_file(self, data, idx, fi, start, stop, cals, mult):  # type: ignore[no-untyped-def]
            extras = self._raw_extras[fi]
            first = extras["first"]  # start, stop: samples of the file, first_samp included
            block = extras["source"].get_data(picks=extras["picks"], start=start - first, stop=stop - first)
            _mult_cal_one(data, extras["matrix"] @ block, idx, cals, mult)

    return MixedRaw
