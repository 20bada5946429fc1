from __future__ import annotations

import numpy as np
import pytest

from milmer.runtime._check import MilmerInputError
from milmer.runtime.eeg.channels import canonical_name, find_eog, map_channels
from milmer.runtime.spec import DEAP_CHANNELS, EEGSpec


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Fp1", "fp1"),
        ("FP1", "fp1"),
        ("EEG Fp1", "fp1"),
        ("EEG FP1-REF", "fp1"),
        ("Fp1-Ref", "fp1"),
        ("EEG-Fp1-LE", "fp1"),
        ("Fp1-A1", "fp1"),
        ("T3", "t7"),
        ("EEG T4-REF", "t8"),
        ("T5", "p7"),
        ("t6", "p8"),
        ("EOG vEOG", "veog"),
        ("Fp1-F3", "fp1-f3"),  # a bipolar derivation is not Fp1
    ],
)
def test_canonical_name(name, key):
    assert canonical_name(name) == key


def _aliased(name: str, i: int) -> str:
    old = {"T7": "T3", "T8": "T4", "P7": "T5", "P8": "T6"}
    forms = [name.upper(), f"EEG {name}", f"EEG {name.upper()}-REF", f"{name}-Ref", f"{name}-A1", name.lower()]
    return old.get(name, forms[i % len(forms)])


def test_map_channels_with_aliases_in_any_order():
    spec = EEGSpec()
    order = np.random.default_rng(0).permutation(32)
    names = [_aliased(DEAP_CHANNELS[j], k) for k, j in enumerate(order)] + ["hEOG", "Status"]
    idx = map_channels(names, spec)
    assert [int(order[i]) for i in idx] == list(range(32))
    assert names[idx[7]] == "T3" and names[idx[25]] == "T4"  # T7 and T8 found under old names


def test_map_channels_prefers_an_exact_name_over_an_alias():
    names = list(DEAP_CHANNELS) + ["FP1"]
    assert map_channels(names, EEGSpec())[0] == 0


def test_map_channels_refuses_two_aliases_of_one_channel():
    names = list(DEAP_CHANNELS[1:]) + ["FP1", "EEG Fp1-REF"]
    with pytest.raises(MilmerInputError, match=r"channel 'Fp1' matches several .*'FP1', 'EEG Fp1-REF'"):
        map_channels(names, EEGSpec())


def test_map_channels_lists_every_missing_channel_and_what_the_file_has():
    names = [c for c in DEAP_CHANNELS if c not in ("Fp1", "Cz", "O2")]
    with pytest.raises(MilmerInputError) as err:
        map_channels(names, EEGSpec())
    msg = str(err.value)
    assert "lacks 3 of the model's 32 EEG channels: Fp1, Cz, O2." in msg
    assert "The recording has 29 channels: AF3, F3, F7," in msg
    assert msg.startswith("Invalid value for 'eeg'")


def test_find_eog_by_type_and_by_name():
    names = list(DEAP_CHANNELS) + ["EOG vEOG", "HEOG", "E1", "GSR"]
    types = ["eeg"] * 32 + ["eeg", "eeg", "eog", "misc"]
    assert find_eog(names, types, EEGSpec()) == ["EOG vEOG", "HEOG", "E1"]


def test_find_eog_never_returns_an_eeg_channel():
    spec = EEGSpec(eog_channels=("Fp1", "vEOG"))
    assert find_eog(["Fp1", "vEOG"], ["eog", "eeg"], spec) == ["vEOG"]
