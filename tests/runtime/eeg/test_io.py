from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.eeg.channels import find_eog, map_channels
from milmer.runtime.eeg.io import deap_trial_to_raw, load_deap_dat, read_raw
from milmer.runtime.spec import DEAP_CHANNELS, EEGSpec


def test_read_raw_missing_file(tmp_path):
    with pytest.raises(MilmerInputError, match=r"Invalid value for 'eeg': file not found: .*nope\.edf"):
        read_raw(tmp_path / "nope.edf")


def test_read_raw_unsupported_suffix(tmp_path):
    path = tmp_path / "rec.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(
        MilmerInputError,
        match=r"unsupported file type '\.csv' for 'rec\.csv'; expected one of '\.edf', '\.bdf', '\.fif', '\.vhdr'",
    ):
        read_raw(path)


def test_read_raw_corrupt_edf(tmp_path):
    path = tmp_path / "noise.edf"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(MilmerInputError, match=r"the \.edf file '.*noise\.edf' could not be read \(ValueError"):
        read_raw(path)


def _edf_with_aliases(tmp_path, seed=0):
    import mne

    names = [{"T7": "T3", "T8": "T4"}.get(c, f"EEG {c.upper()}-REF") for c in DEAP_CHANNELS] + ["vEOG"]
    data = np.random.default_rng(seed).standard_normal((33, 128 * 8)) * 20e-6
    raw = mne.io.RawArray(data, mne.create_info(names, 128.0, ["eeg"] * 32 + ["eog"]), verbose="error")
    path = tmp_path / "rec.edf"
    mne.export.export_raw(path, raw, overwrite=True, verbose="error")
    return path, raw


def test_edf_round_trip_and_channel_mapping(tmp_path):
    path, original = _edf_with_aliases(tmp_path)
    raw = read_raw(path)
    assert raw.ch_names == original.ch_names
    assert raw.info["sfreq"] == 128.0
    idx = map_channels(raw.ch_names, EEGSpec())
    assert idx == list(range(32))
    # EDF keeps no channel types: the EOG channel is found by its name.
    assert find_eog(raw.ch_names, raw.get_channel_types(), EEGSpec()) == ["vEOG"]
    # EDF stores 16-bit integers over the auto physical range (~ +-80 uV here): error < 0.01 uV.
    np.testing.assert_allclose(raw.get_data(), original.get_data(), rtol=0, atol=1e-8)


def test_read_raw_truncated_header(tmp_path):
    path, _ = _edf_with_aliases(tmp_path)
    truncated = tmp_path / "short.edf"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(MilmerInputError, match=r"the \.edf file '.*short\.edf' could not be read"):
        read_raw(truncated)


def _deap_dict(trials=2, samples=256):
    rng = np.random.default_rng(1)
    return {"data": rng.standard_normal((trials, 40, samples)), "labels": rng.uniform(1, 9, (trials, 4))}


@pytest.mark.parametrize("protocol", [2, 5])
def test_load_deap_dat_accepts_a_dict_of_arrays(tmp_path, protocol):
    d = _deap_dict()
    path = tmp_path / "s01.dat"
    path.write_bytes(pickle.dumps(d, protocol=protocol))
    out = load_deap_dat(path)
    np.testing.assert_array_equal(out["data"], d["data"])
    np.testing.assert_array_equal(out["labels"], d["labels"])


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_load_deap_dat_refuses_code_before_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "s01.dat"
    path.write_bytes(pickle.dumps({"data": _Evil(marker), "labels": np.zeros((1, 4))}, protocol=2))
    with pytest.raises(
        MilmerInputError,
        match=r"refusing to unpickle (posix|nt)\.system from '.*s01\.dat': DEAP \.dat files contain only numpy arrays",
    ):
        load_deap_dat(path)
    assert not marker.exists()


def test_load_deap_dat_refuses_object_arrays(tmp_path):
    path = tmp_path / "s01.dat"
    path.write_bytes(pickle.dumps({"data": np.array([1, "x"], dtype=object), "labels": np.zeros((1, 4))}))
    with pytest.raises(MilmerInputError, match=r"'data' must be a numeric numpy array, got object"):
        load_deap_dat(path)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"data": np.zeros((2, 40, 8))}, r"expected a dict with keys 'data' and 'labels', got \['data'\]"),
        ({"data": np.zeros((2, 8, 8)), "labels": np.zeros((2, 4))}, r"'data' must be \(trials, channels >= 32"),
        ({"data": np.zeros((2, 40, 8)), "labels": np.zeros((3, 4))}, r"'labels' must be \(trials, 4\) = \(2, 4\)"),
    ],
)
def test_load_deap_dat_validates_the_content(tmp_path, payload, match):
    path = tmp_path / "s01.dat"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(MilmerInputError, match=match):
        load_deap_dat(path)


def test_load_deap_dat_not_a_pickle(tmp_path):
    path = tmp_path / "s01.dat"
    path.write_bytes(b"\x80\x02}q\x00")  # a pickle cut off mid-stream
    with pytest.raises(MilmerInputError, match=r"DEAP file '.*s01\.dat' could not be read \(EOFError"):
        load_deap_dat(path)


def test_deap_trial_to_raw_names_types_and_units():
    trial = _deap_dict(trials=1)["data"][0]  # (40, 256) uV
    raw = deap_trial_to_raw(trial)
    assert raw.ch_names[:32] == list(DEAP_CHANNELS)
    assert raw.ch_names[32:] == ["hEOG", "vEOG", "zEMG", "tEMG", "GSR", "Respiration", "Plethysmograph", "Temperature"]
    assert raw.get_channel_types()[30:] == ["eeg", "eeg", "eog", "eog", "emg", "emg", "misc", "misc", "misc", "misc"]
    assert raw.info["sfreq"] == 128.0
    data = raw.get_data()
    np.testing.assert_allclose(data[:36], trial[:36] * 1e-6)  # biopotentials: uV -> V
    np.testing.assert_allclose(data[36:], trial[36:])  # GSR, respiration, ... unchanged


def test_deap_trial_to_raw_shape_error():
    with pytest.raises(MilmerInputError, match=r"expected a DEAP trial of shape \(40, samples\), got float64 \(32, 10\)"):
        deap_trial_to_raw(np.zeros((32, 10)))


def test_read_raw_reads_a_truncated_recording_with_a_warning(tmp_path):
    path, _ = _edf_with_aliases(tmp_path)  # 8 one-second records
    cut = tmp_path / "cut.edf"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) - 3 * 33 * 128 * 2])  # drop 3 records of 33 ch x 128 int16
    with pytest.warns(RuntimeWarning, match=r"cut\.edf: Number of records from the header does not match"):
        raw = read_raw(cut)
    assert raw.n_times == 5 * 128
