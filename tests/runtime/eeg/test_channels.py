from __future__ import annotations

import json

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.eeg.channels import canonical_name, find_eog, map_channels, match_channels, parse_channel_map
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
        ("Fc5.", "fc5"),  # BCI2000 pads labels with dots
        ("C3..", "c3"),
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
    with pytest.raises(MilmerInputError, match=r"duplicate channel labels: Fp1 \('FP1', 'EEG Fp1-REF'\)"):
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


def test_reference_suffix_shared_by_every_label_is_removed():
    names = [f"EEG {c}-CPz" for c in DEAP_CHANNELS] + ["EOG vEOG"]
    match = match_channels(names, EEGSpec())
    assert [match.picks[c] for c in DEAP_CHANNELS] == list(range(32))
    assert match.how == ("reference suffix '-CPz' shared by every label removed",)
    # A bipolar montage shares no suffix: nothing is stripped, nothing matches.
    bipolar = [f"{a}-{b}" for a, b in zip(DEAP_CHANNELS, DEAP_CHANNELS[1:] + DEAP_CHANNELS[:1])]
    assert len(match_channels(bipolar, EEGSpec()).missing) == 32


def test_bci2000_dotted_labels():
    names = [c + "." * (1 + (len(c) < 3)) for c in DEAP_CHANNELS]  # "Fp1.", "F3..", ...
    assert map_channels(names, EEGSpec()) == list(range(32))


def test_biosemi32_labels_use_the_cap_layout():
    names = [f"A{k}" for k in range(1, 33)] + [f"EXG{k}" for k in range(1, 9)] + ["Status"]
    match = match_channels(names, EEGSpec())
    assert not match.missing
    # Spec (Geneva) order -> BioSemi label: Fp1=A1, AF3=A2, F3=A4, F7=A3, ..., Cz=A32.
    assert [names[match.picks[c]] for c in DEAP_CHANNELS[:4]] == ["A1", "A2", "A4", "A3"]
    assert names[match.picks["Cz"]] == "A32" and names[match.picks["O2"]] == "A17"
    assert match.how[0].startswith("preset biosemi32")
    assert match_channels(names, EEGSpec(), channel_map="biosemi32").picks == match.picks


def test_biosemi128_labels_are_never_read_as_10_20_names():
    names = [f"{b}{k}" for b in "ABCD" for k in range(1, 33)]  # holds "C3", "D4", ... as bundle electrodes
    with pytest.raises(MilmerInputError, match=r"letter-number positions \(A1, A2, .*not 10-20 names.*--channel-map"):
        match_channels(names, EEGSpec())


def test_duplicate_labels_are_reported_as_duplicates():
    # MNE renames a repeated label "Cz" to "Cz-0", "Cz-1".
    names = [c for c in DEAP_CHANNELS if c != "Cz"] + ["Cz-0", "Cz-1"]
    with pytest.raises(MilmerInputError, match=r"duplicate channel labels: Cz \('Cz-0', 'Cz-1'\)"):
        match_channels(names, EEGSpec())


@pytest.mark.parametrize("form", ["text", "file", "json"])
def test_channel_map(tmp_path, form):
    names = [f"ch{i}" for i in range(32)]
    pairs = {f"ch{i}": c for i, c in enumerate(DEAP_CHANNELS)}
    if form == "text":
        value = ",".join(f"{k}={v}" for k, v in pairs.items())
    elif form == "file":
        value = tmp_path / "map.txt"
        value.write_text("# my cap\n" + "\n".join(f"{k} = {v}" for k, v in pairs.items()))
    else:
        value = tmp_path / "map.json"
        value.write_text(json.dumps(pairs))
    match = match_channels(names, EEGSpec(), channel_map=str(value))
    assert [match.picks[c] for c in DEAP_CHANNELS] == list(range(32))
    assert match.renamed["ch0"] == "Fp1"


def test_channel_map_errors(tmp_path):
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid value for '--channel-map': expected names among the recording's channels \('Fp1', 'AF3', .*'O2'\), "
        r"got 'X9', 'Y9', which are not\.$",
    ):
        match_channels(list(DEAP_CHANNELS), EEGSpec(), channel_map="X9=Fp1,Fp2=F3,Y9=F4")
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid value for '--channel-map': expected one of the presets \('biosemi32', 'egi-hydrocel-128', "
        r"'egi-hydrocel-129', 'egi-hydrocel-256', 'egi-hydrocel-257'\), got 'nonsense'; or give 'old=new,\.\.\.', or a "
        r"file of old=new lines or of a JSON object \(no file has that name\)\.$",
    ):
        parse_channel_map("nonsense")
    broken = tmp_path / "map.json"
    broken.write_text('{"ch0": "Fp1",')
    with pytest.raises(MilmerInputError, match=r"^Invalid value for '--channel-map': the JSON channel map '.*map\.json' could not be read \(JSONDecodeError: "):
        parse_channel_map(str(broken))
    broken.write_text('{"ch0": 3}')
    with pytest.raises(MilmerInputError, match=r"^Invalid value for '--channel-map\['ch0'\]': expected a channel name, got int\.$"):
        parse_channel_map(str(broken))


@pytest.mark.parametrize("bundles", ["ABCDEFGHI", "ABCDEFGHIJKL"])
def test_letter_number_caps_of_any_bundle_count_are_never_read_as_10_20_names(bundles):
    # Bundles beyond H (BioSemi 280/288-channel setups) plus auxiliary inputs.
    names = [f"{b}{k}" for b in bundles for k in range(1, 33)] + ["Ergo-Left", "Ergo-Right", "EXG1", "Status"]
    for options in ({}, {"types": ["eeg"] * len(names)}):
        with pytest.raises(MilmerInputError, match=rf"the recording's {32 * len(bundles)} EEG labels are BioSemi letter-number positions \(A1, .*bundles A, B, .*, {bundles[-1]}\)"):
            match_channels(names, EEGSpec(), **options)


def test_10_20_names_that_look_like_letter_numbers_still_match():
    from milmer.runtime.eeg.channels import is_letter_number_cap

    assert not is_letter_number_cap(["C3", "C4", "O1", "O2", "A1", "A2"])  # a sleep montage
    assert is_letter_number_cap([f"I{k}" for k in range(1, 33)])
    match = match_channels(["C3", "C4", "O1", "O2", "A1", "A2"], EEGSpec())
    assert sorted(match.picks) == ["C3", "C4", "O1", "O2"]


def test_egi_net_labels_are_explained_not_called_flat():
    names = [f"E{k}" for k in range(1, 129)] + ["Cz"]  # NetStation: Cz is the vertex reference
    with pytest.raises(MilmerInputError) as err:
        match_channels(names, EEGSpec())
    msg = str(err.value)
    assert "EGI Geodesic Sensor Net positions (128 of them: E1, E2, E3, E4, ...)" in msg
    assert "its Cz is the net's vertex reference electrode" in msg and "not a disconnected channel" in msg
    assert "--channel-map" in msg and "--interpolate-missing cannot help" in msg
    # With a map, the zero Cz is the reference electrode (restored by the average reference).
    mapping = {f"E{k}": c for k, c in zip(range(1, 32), [c for c in DEAP_CHANNELS if c != "Cz"])}
    match = match_channels(names, EEGSpec(), channel_map=mapping)
    assert not match.missing and names[match.picks["Cz"]] == "Cz"
