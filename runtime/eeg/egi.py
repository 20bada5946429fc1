"""EGI Geodesic Sensor Net recordings onto the model's 10-20 sites (``--channel-map egi-hydrocel-129``).

A NetStation file labels its electrodes ``E1``..``E128`` (``E256``), positions on the net, with
the vertex reference stored as a channel of zeros (``Cz`` or ``E129``/``E257``) or not at all.
No net electrode sits exactly on a 10-20 site, so renaming the nearest one would shift every
channel by up to a centimetre. Instead the net's electrodes are placed with MNE's montage for the
net (``GSN-HydroCel-129``, ...) and the model's sites are interpolated from all of them with
spherical splines (Perrin et al. 1989; MNE's ``Raw.interpolate_to``) at their 10-05 template
positions. The stored zero vertex channel is the reference electrode: it enters the fit as the
true 0 V of the reference site. Every output is flagged (note ``egi-interpolated``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..check import MilmerInputError
from ..spec import EEGSpec
from .artefacts import MNE_QUIET
from .report import EEGNote

if TYPE_CHECKING:
    import mne

__all__ = ["EGI_PRESETS", "egi_preset", "egi_to_1020"]

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
    Returns a new recording of (C_spec + non-EEG channels, T) samples, the spec's channels named
    as in the spec and typed EEG (the file's non-EEG channels, such as EOG or triggers, kept as
    they are), and the ``egi-interpolated`` note. The samples are in the file's unit (the units
    step runs after). Raises MilmerInputError when the file is not the preset's net or a spec
    channel has no 10-05 position.
    """
    import mne

    from .channels import standard_1005_montage_name

    import inspect

    labels = _net_labels(raw, preset)
    interpolate_to = getattr(mne.io.BaseRaw, "interpolate_to", None)
    if interpolate_to is None or "method" not in inspect.signature(interpolate_to).parameters:
        raise MilmerInputError(
            f"Invalid value for '--channel-map': {preset} needs MNE's Raw.interpolate_to(method='spline'), "
            f"which this environment's MNE {mne.__version__} lacks; upgrade mne."
        )
    if _release(mne.__version__) < MIN_MNE:
        # Checked against a generated net with known sources: within 1 % with MNE 1.13; MNE 1.12's
        # interpolate_to placed the sites wrongly (errors of 12-83 % of the field).
        raise MilmerInputError(
            f"Invalid value for '--channel-map': {preset} needs MNE {'.'.join(map(str, MIN_MNE))} or later "
            f"(checked there; this environment's MNE {mne.__version__} interpolates the sites wrongly); "
            "upgrade mne (MNE 1.13 needs Python 3.11 or later), or map the net's channels yourself."
        )
    net = mne.channels.make_standard_montage(EGI_PRESETS[preset])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        template = mne.channels.make_standard_montage(standard_1005_montage_name())
    by_lower = {n.lower() for n in template.ch_names}
    unknown = [c for c in spec_eeg.channels if c.lower() not in by_lower]
    if unknown:
        raise MilmerInputError(
            f"Invalid value for '--channel-map': {preset} interpolates the model's channels at their "
            f"10-05 positions; {', '.join(unknown)} has none."
        )
    # Both montages are brought to the head frame by their own fiducials (set_montage), so the
    # template's sites land on the net's head.
    sites = mne.create_info(list(spec_eeg.channels), float(raw.info["sfreq"]), "eeg")
    sites.set_montage(template, match_case=False, verbose=MNE_QUIET)
    target = sites.get_montage()
    others = [n for n, k in zip(raw.ch_names, raw.get_channel_types()) if n not in labels and k != "eeg"]
    net_raw = raw.copy().pick(list(labels)).load_data(verbose=MNE_QUIET)
    net_raw.rename_channels(labels, verbose=MNE_QUIET)
    net_raw.set_channel_types(dict.fromkeys(net_raw.ch_names, "eeg"), verbose=MNE_QUIET)
    net_raw.info["bads"] = []
    net_raw.set_montage(net, on_missing="ignore", verbose=MNE_QUIET)
    out = net_raw.interpolate_to(target, method="spline")
    del net_raw
    if others:
        out.add_channels([raw.copy().pick(others).load_data(verbose=MNE_QUIET)], force_update_info=True)
    out.set_annotations(raw.annotations)
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
