"""Match a recording's channel names to the spec's EEG channels.

Files name the same electrode in many ways: ``Fp1``, ``FP1``, ``EEG Fp1``, ``EEG FP1-REF``,
``Fp1-A1``, ``EEG Fp1-CPz`` (a reference shared by every label), BCI2000's ``Fc5.`` and
``C3..`` (names padded with dots), and old 10-20 names (``T3`` for ``T7``). Names are compared in
a canonical form (lower case, modality prefix, padding dots and the shared reference suffix
removed, old names translated), so a spec written with DEAP's names matches all of these.

BioSemi caps are often saved with letter-number labels (``A1``..``A32``, ``B1``..). Those are
electrode positions in the cap's own layout, not 10-20 sites: a 128-channel file's ``C3`` and
``F4`` are electrodes of bundles C and F. A letter-number label set is therefore never matched
by name; the 32-channel layout (DEAP's own cap, a BioSemi ActiveTwo 32) is the named preset
``biosemi32`` (:data:`MONTAGE_PRESETS`), applied when the file's EEG labels are exactly
``A1``..``A32``. Anything else: a channel map (``--channel-map old=new,...`` or a file).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..check import MilmerInputError, check_option, check_subset, check_type, read_error
from ..spec import EEGSpec
from .options import min_real_channels

__all__ = [
    "standard_1005_montage_name",
    "BIOSEMI32",
    "MONTAGE_PRESETS",
    "ChannelMatch",
    "canonical_name",
    "match_channels",
    "map_channels",
    "parse_channel_map",
    "find_eog",
    "is_letter_number_cap",
    "missing_message",
    "too_few_message",
]

#: BioSemi ActiveTwo 32-channel cap: label ``A{k}`` is electrode ``BIOSEMI32[k - 1]``.
BIOSEMI32: tuple[str, ...] = (
    "Fp1", "AF3", "F7", "F3", "FC1", "FC5", "T7", "C3", "CP1", "CP5", "P7", "P3", "Pz", "PO3",
    "O1", "Oz", "O2", "PO4", "P4", "P8", "CP6", "CP2", "C4", "T8", "FC6", "FC2", "F4", "F8",
    "AF4", "Fp2", "Fz", "Cz",
)  # fmt: skip
#: Named channel maps (``--channel-map biosemi32``): file label -> 10-20 name.
MONTAGE_PRESETS: dict[str, dict[str, str]] = {
    "biosemi32": {f"A{k}": name for k, name in enumerate(BIOSEMI32, start=1)},
}

# Old 10-20 temporal names -> 10-10 names (same electrode positions).
_OLD_NAMES = {"t3": "t7", "t4": "t8", "t5": "p7", "t6": "p8"}
# "EEG Fp1", "EEG-Fp1", "EOG vEOG": a modality prefix some writers (EDF, TUH) put first.
_PREFIX = re.compile(r"^(eeg|eog)[\s_-]+")
# "Fp1-REF", "Fp1-A1", "Fp1:LE": the reference a channel was recorded against.
_REF_SUFFIX = re.compile(r"[\s_:-]+(ref|le|re|a1|a2|m1|m2|avg|ave|ar|lm|rm)$")
# BioSemi letter-number labels: bundle letter (A, B, ... any count of bundles), electrode 1-32.
_LETTER_NUMBER = re.compile(r"^[A-Za-z]([1-9]|[12][0-9]|3[0-2])$")
# EGI/NetStation Geodesic Sensor Net labels: E1, E2, ... (Cz or E129 the vertex reference).
_EGI = re.compile(r"^E\d{1,3}$", re.IGNORECASE)
# The EGI nets' presets (:data:`.egi.EGI_PRESETS`): the model's sites interpolated from the net.
_EGI_PRESET_NAMES = ("egi-hydrocel-128", "egi-hydrocel-129", "egi-hydrocel-256", "egi-hydrocel-257")
# MNE makes repeated labels unique as "Fp1-0", "Fp1-1", ...
_MNE_DEDUP = re.compile(r"^(.*)-(\d+)$")
# Labels that are never EEG electrodes (BioSemi's extra inputs and trigger channel, ...).
_NOT_EEG = re.compile(
    r"^(.*eog.*|exg\d+|status|trigger|stim.*|sti\s*\d*|edf annotations|bdf annotations|ecg.*|ekg.*|emg.*"
    r"|gsr.*|resp.*|erg.*|temp.*|plet.*|ana\d+|aux\d*|accel.*|acc[xyz_]?\d*|battery.*|counter|packet.*)$"
)


def canonical_name(name: str) -> str:
    """The form names are compared in: ``'EEG FP1-REF'`` -> ``'fp1'``, ``'C3..'`` -> ``'c3'``,
    ``'T3'`` -> ``'t7'``."""
    key = name.strip().lower().rstrip(".").strip()
    key = _PREFIX.sub("", key)
    key = _REF_SUFFIX.sub("", key)
    key = key.replace(" ", "")
    return _OLD_NAMES.get(key, key)


def _shared_suffix(labels: Sequence[str]) -> str | None:
    """``'-CPz'`` when every label ends in the same ``-X`` reference suffix (at least 2 labels)."""
    parts = [lab.strip().rsplit("-", 1) for lab in labels]
    if len(parts) < 2 or any(len(p) != 2 or not p[0].strip() for p in parts):
        return None
    suffixes = {p[1].strip().lower() for p in parts}
    if len(suffixes) != 1:
        return None
    suffix = suffixes.pop()
    return None if not suffix or suffix.isdigit() else "-" + labels[0].strip().rsplit("-", 1)[1]


@dataclass(frozen=True)
class ChannelMatch:
    """How a recording's channels map onto the spec's.

    picks:      spec channel -> index in the file's channel list (channels found)
    missing:    spec channels not in the file, in spec order
    renamed:    file label -> spec name, for labels that differ from the spec's name
    how:        what made the names match (preset, channel map, shared reference suffix), for the report
    """

    picks: dict[str, int]
    missing: tuple[str, ...]
    renamed: dict[str, str] = field(default_factory=dict)
    how: tuple[str, ...] = ()


def parse_channel_map(value: str | Mapping[str, str] | None) -> dict[str, str]:
    """``--channel-map``: a preset name (``biosemi32``), ``'old=new,old2=new2'``, or a file.

    A file holds a JSON object ``{"old": "new"}`` or ``old=new`` lines (``#`` comments). Returns
    file label -> spec name.
    """
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    text = str(value).strip()
    if text.lower() in MONTAGE_PRESETS:
        return dict(MONTAGE_PRESETS[text.lower()])
    if text.lower() in _EGI_PRESET_NAMES:
        return {}  # interpolated, not renamed: applied before matching (:mod:`.egi`)
    path = Path(text)
    try:
        is_file = path.is_file()
    except OSError:  # a long old=new list is no file name
        is_file = False
    if "=" not in text and not is_file:
        check_option(
            "--channel-map", text, (*MONTAGE_PRESETS, *_EGI_PRESET_NAMES), among="the presets",
            hint="or give 'old=new,...', or a file of old=new lines or of a JSON object (no file has that name)",
        )
    if is_file:
        body = path.read_text(encoding="utf-8")
        if body.lstrip().startswith("{"):
            try:
                data = json.loads(body)
            except json.JSONDecodeError as err:
                raise read_error("--channel-map", path, err, what="JSON channel map") from None
            return {str(k): check_type(f"--channel-map[{k!r}]", v, str, "a channel name") for k, v in data.items()}
        items = [line.split("#", 1)[0].strip() for line in body.splitlines()]
    else:
        items = [item.strip() for item in text.split(",")]
    mapping: dict[str, str] = {}
    for item in filter(None, items):
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise MilmerInputError(f"Invalid value for '--channel-map': expected old=new, got {item!r}.")
        mapping[old.strip()] = new.strip()
    return mapping


def _eeg_like(ch_names: Sequence[str], types: Sequence[str] | None) -> list[int]:
    """Indices of labels that may be EEG electrodes (not EOG/trigger/extra inputs)."""
    out = []
    for i, name in enumerate(ch_names):
        kind = types[i] if types is not None else "eeg"
        if kind in ("stim", "eog", "ecg", "emg", "resp", "bio", "syst"):
            continue
        if _NOT_EEG.match(name.strip().lower()):
            continue
        out.append(i)
    return out


def match_channels(
    ch_names: Sequence[str],
    spec_eeg: EEGSpec,
    *,
    types: Sequence[str] | None = None,
    channel_map: str | Mapping[str, str] | None = None,
) -> ChannelMatch:
    """Find each spec channel in ``ch_names`` (see the module docstring for the rules).

    Raises MilmerInputError for duplicate labels (two file channels for one spec channel), a
    channel map naming labels the file lacks, and letter-number label sets without a map.
    Missing channels are returned, not raised: the caller interpolates or refuses them.
    """
    mapping = parse_channel_map(channel_map)
    how: list[str] = []
    names = list(ch_names)
    if mapping:
        check_subset("--channel-map", mapping, names, among="the recording's channels", what="names")
        names = [mapping.get(n, n) for n in names]
        preset = next((k for k, v in MONTAGE_PRESETS.items() if v == mapping), None)
        how.append(f"channel map {preset or 'given'} ({len(mapping)} labels)")
    else:
        eeg_idx = _eeg_like(names, types)
        labels = [names[i] for i in eeg_idx]
        _refuse_egi_labels(labels, spec_eeg)
        if is_letter_number_cap(labels):
            if sorted(lab.strip().upper() for lab in labels) == sorted(MONTAGE_PRESETS["biosemi32"]):
                preset = {k: v for k, v in MONTAGE_PRESETS["biosemi32"].items()}
                by_upper = {k.upper(): v for k, v in preset.items()}
                names = [by_upper.get(n.strip().upper(), n) if i in eeg_idx else n for i, n in enumerate(names)]
                how.append("preset biosemi32 (labels A1..A32: BioSemi ActiveTwo 32-channel cap)")
            else:
                raise MilmerInputError(
                    f"Invalid value for 'eeg': the recording's {len(labels)} EEG labels are BioSemi "
                    f"letter-number positions ({', '.join(labels[:6])}, ...; bundles "
                    f"{', '.join(sorted({lab.strip()[0].upper() for lab in labels}))}), not 10-20 names; "
                    "their C3, F4, ... are cap electrodes, not the 10-20 sites, so neither name matching "
                    "nor interpolation can use them. Only the 32-channel cap (A1..A32) has a preset; give "
                    "--channel-map old=new,... (or a file) naming, for each of the model's "
                    f"{spec_eeg.n_channels} channels, the cap electrode at that site (the cap maker's layout "
                    "lists them)."
                )
        else:
            suffix = _shared_suffix(labels)
            if suffix is not None:
                names = [n[: -len(suffix)] if i in eeg_idx else n for i, n in enumerate(names)]
                how.append(f"reference suffix {suffix!r} shared by every label removed")

    # Duplicates: the same canonical name twice, or MNE's "X-0", "X-1" for a repeated label "X".
    dedup_bases = [m.group(1) for m in map(_MNE_DEDUP.match, (n.strip() for n in names)) if m]
    by_key: dict[str, list[int]] = {}
    made_unique: set[int] = set()
    for i, name in enumerate(names):
        m = _MNE_DEDUP.match(name.strip())
        if m and dedup_bases.count(m.group(1)) > 1:
            made_unique.add(i)
            name = m.group(1)
        by_key.setdefault(canonical_name(name), []).append(i)

    picks: dict[str, int] = {}
    missing: list[str] = []
    duplicates: list[str] = []
    for wanted in spec_eeg.channels:
        candidates = by_key.get(canonical_name(wanted), [])
        exact = [i for i in candidates if names[i] == wanted]
        if len(candidates) == 1:
            picks[wanted] = candidates[0]
        elif not candidates:
            missing.append(wanted)
        elif len(exact) == 1 and not made_unique.intersection(candidates):
            picks[wanted] = exact[0]  # "Fp1" beside an alias "FP1": the exact name wins
        else:
            duplicates.append(f"{wanted} ({', '.join(repr(ch_names[i]) for i in candidates)})")
    if duplicates:
        raise MilmerInputError(
            f"Invalid value for 'eeg': duplicate channel labels: {'; '.join(duplicates)}. The file "
            "names one electrode more than once; rename the extra ones with --channel-map "
            "old=new,... (or drop them) so each model channel has one source."
        )
    renamed = {ch_names[i]: name for name, i in picks.items() if ch_names[i] != name}
    return ChannelMatch(picks=picks, missing=tuple(missing), renamed=renamed, how=tuple(how))


def is_letter_number_cap(labels: Sequence[str]) -> bool:
    """Whether EEG ``labels`` are a BioSemi-style letter-number cap (``A1``..``A32``, ``B1``..,
    any number of bundles), not 10-20 names.

    Every label is a letter and a number 1-32, and some number exceeds 10: 10-20 names that look
    alike (``C3``, ``O1``, ``T8``, ``P10``) never go past 10, while a cap's bundle holds 32.
    """
    stripped = [lab.strip() for lab in labels]
    if not stripped or not all(_LETTER_NUMBER.match(lab) for lab in stripped):
        return False
    return max(int(lab[1:]) for lab in stripped) > 10


def _refuse_egi_labels(labels: Sequence[str], spec_eeg: EEGSpec) -> None:
    """EGI/NetStation nets label electrodes E1, E2, ...: positions on the net, not 10-20 sites."""
    egi = [lab for lab in labels if _EGI.match(lab.strip())]
    if len(egi) < max(2, len(labels) // 2):
        return
    reference = [lab for lab in labels if canonical_name(lab) == "cz"]
    presets = [k for k in _EGI_PRESET_NAMES if k.endswith(str(len(egi) + len(reference)))] or list(_EGI_PRESET_NAMES)
    raise MilmerInputError(
        f"Invalid value for 'eeg': the recording's labels are EGI Geodesic Sensor Net positions "
        f"({len(egi)} of them: {', '.join(egi[:4])}, ...), not 10-20 names"
        + (f"; its {reference[0]} is the net's vertex reference electrode (stored as zeros; the "
           "average reference restores it), not a disconnected channel" if reference else "")
        + f". Give --channel-map {' or '.join(presets)} (the model's 10-20 sites interpolated from the "
        "net's electrodes, placed with MNE's montage of the net; every output flagged), or name a "
        "net electrode for each site with --channel-map old=new,... (or a file); --interpolate-missing "
        "cannot help, as no label names a 10-20 site."
    )


def map_channels(ch_names: Sequence[str], spec_eeg: EEGSpec, **kwargs: object) -> list[int]:
    """For each spec channel, in spec order, its index in ``ch_names``; missing channels are an
    error listing all of them (see :func:`match_channels` for the matching rules)."""
    match = match_channels(ch_names, spec_eeg, **kwargs)  # type: ignore[arg-type]
    if match.missing:
        raise MilmerInputError(missing_message(match.missing, ch_names, spec_eeg))
    return [match.picks[c] for c in spec_eeg.channels]


def missing_message(
    missing: Sequence[str], ch_names: Sequence[str], spec_eeg: EEGSpec, extra: str = "", *, max_interpolated: int = 8
) -> str:
    """Why a recording lacking ``missing`` channels is refused and the one way forward that works.

    The answer is the same whether or not ``--interpolate-missing`` was given: interpolation is
    offered only when at most ``max_interpolated`` channels are missing and at least
    :func:`~.options.min_real_channels` of the model's sites are really there; otherwise the
    recording cannot feed the model (unless the electrodes are there under other names:
    ``--channel-map``).
    """
    n = spec_eeg.n_channels
    has = f"The recording has {len(ch_names)} channels: {', '.join(ch_names) or '(none)'}. "
    tail = " " + extra if extra else ""
    if len(missing) == n:
        return (
            f"Invalid value for 'eeg': none of the model's {n} EEG channels "
            f"({', '.join(spec_eeg.channels)}) is in the recording. {has}"
            "If these are the model's electrodes under other names, map them with --channel-map "
            f"old=new,... (or a file; presets: {', '.join(MONTAGE_PRESETS)}). " + too_few_message(n) + tail
        )
    head = (
        f"Invalid value for 'eeg': the recording lacks {len(missing)} of the model's "
        f"{n} EEG channels: {', '.join(missing)}. {has}"
    )
    if n - len(missing) < min_real_channels(n):
        return head + (
            f"It has {n - len(missing)} of them. " + too_few_message(n)
            + " If the channels are there under other names, rename them with --channel-map old=new,... (or a file)."
            + tail
        )
    if len(missing) > max_interpolated:
        return head + (
            f"Interpolating {len(missing)} channels is more than the {max_interpolated} "
            f"(--max-interpolated) allowed. If the channels are there under other names, rename them "
            "with --channel-map old=new,... (or a file)." + tail
        )
    return head + (
        extra or f"The model needs all of its {n} channels; rename channels with --channel-map old=new,... "
        "or let milmer interpolate a few from their neighbours with --interpolate-missing."
    )


def too_few_message(n: int) -> str:
    """The one rule, stated the same in every refusal: fewer than 24 of 32 real sites cannot feed."""
    return (
        f"A recording with fewer than {min_real_channels(n)} of the model's {n} sites (a consumer "
        f"headset with 4-16 electrodes) cannot feed a {n}-channel model, whatever --max-interpolated says."
    )


def find_eog(ch_names: Sequence[str], types: Sequence[str], spec_eeg: EEGSpec) -> list[str]:
    """Names of the recording's EOG channels: typed ``'eog'`` or named in ``spec_eeg.eog_channels``.

    Channels that :func:`map_channels` would use as EEG channels are never returned.
    """
    if len(types) != len(ch_names):
        raise ValueError(f"{len(ch_names)} channel names but {len(types)} channel types")
    eeg_keys = {canonical_name(c) for c in spec_eeg.channels}
    eog_keys = {canonical_name(c) for c in spec_eeg.eog_channels}
    found = []
    for name, kind in zip(ch_names, types):
        key = canonical_name(name)
        if key not in eeg_keys and (kind == "eog" or key in eog_keys):
            found.append(name)
    return found


def standard_1005_montage_name() -> str:
    """MNE's name for the 10-05 template montage: ``'colin27_1005'`` from MNE 1.13 on (where
    ``'standard_1005'`` is deprecated, removed in 1.14), ``'standard_1005'`` before (the Python
    3.10 lock has MNE 1.12). Same positions; choosing by availability keeps users free of
    MNE's FutureWarning on every run."""
    import mne

    return "colin27_1005" if "colin27_1005" in mne.channels.get_builtin_montages() else "standard_1005"
