"""Match a recording's channel names to the spec's EEG channels.

Files name the same electrode in many ways: ``Fp1``, ``FP1``, ``EEG Fp1``, ``EEG FP1-REF``,
``Fp1-A1``, and old 10-20 names (``T3`` for ``T7``). Names are compared in a canonical form
(lower case, modality prefix and reference suffix removed, old names translated), so a spec
written with DEAP's names matches all of these.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .._check import MilmerInputError
from ..spec import EEGSpec

__all__ = ["canonical_name", "map_channels", "find_eog"]

# Old 10-20 temporal names -> 10-10 names (same electrode positions).
_OLD_NAMES = {"t3": "t7", "t4": "t8", "t5": "p7", "t6": "p8"}
# "EEG Fp1", "EEG-Fp1", "EOG vEOG": a modality prefix some writers (EDF, TUH) put first.
_PREFIX = re.compile(r"^(eeg|eog)[\s_-]+")
# "Fp1-REF", "Fp1-A1", "Fp1:LE": the reference a channel was recorded against.
_REF_SUFFIX = re.compile(r"[\s_:-]+(ref|le|re|a1|a2|m1|m2|avg|ave|ar|lm|rm)$")


def canonical_name(name: str) -> str:
    """The form names are compared in: ``'EEG FP1-REF'`` -> ``'fp1'``, ``'T3'`` -> ``'t7'``."""
    key = name.strip().lower()
    key = _PREFIX.sub("", key)
    key = _REF_SUFFIX.sub("", key)
    key = key.replace(" ", "")
    return _OLD_NAMES.get(key, key)


def map_channels(ch_names: Sequence[str], spec_eeg: EEGSpec) -> list[int]:
    """For each spec channel, in spec order, its index in ``ch_names``.

    An exact (case-sensitive) match wins when several file channels share a canonical name;
    otherwise such a tie is an error. All missing channels are reported at once.
    """
    by_key: dict[str, list[int]] = {}
    for i, name in enumerate(ch_names):
        by_key.setdefault(canonical_name(name), []).append(i)

    indices: list[int] = []
    missing: list[str] = []
    for wanted in spec_eeg.channels:
        candidates = by_key.get(canonical_name(wanted), [])
        exact = [i for i in candidates if ch_names[i] == wanted]
        if len(candidates) == 1:
            indices.append(candidates[0])
        elif len(exact) == 1:
            indices.append(exact[0])
        elif not candidates:
            missing.append(wanted)
        else:
            names = ", ".join(repr(ch_names[i]) for i in candidates)
            raise MilmerInputError(
                f"Invalid value for 'eeg': channel {wanted!r} matches several channels of the "
                f"recording ({names}); keep only one of them."
            )
    if missing:
        raise MilmerInputError(
            f"Invalid value for 'eeg': the recording lacks {len(missing)} of the model's "
            f"{spec_eeg.n_channels} EEG channels: {', '.join(missing)}. "
            f"The recording has {len(ch_names)} channels: {', '.join(ch_names)}."
        )
    return indices


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
