"""A user's recording is brought to DEAP's state or refused with a way forward (issue 9).

Each case is a small file generated here (EDF+D, EDF, BDF, FIF, BrainVision, DEAP .dat) with
the right value pinned: window times, refusal text, mapped order, flags.
"""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.eeg.io import read_raw
from milmer.runtime.eeg.preprocess import EEGInputOptions, preprocess_raw
from milmer.runtime.recording import RecordingOptions, read_eeg
from milmer.runtime.spec import DEAP_CHANNELS, EEGSpec, ICASpec

NO_ICA = dataclasses.replace(EEGSpec(), ica=ICASpec(enabled=False))
SF = 128.0


def _run(path, spec=NO_ICA, **options):
    notes: list[str] = []
    raw = read_raw(path, notes)
    out = preprocess_raw(raw, spec, options=EEGInputOptions(**options))
    return out, notes


def _peak_hz(window_data):
    spectrum = np.abs(np.fft.rfft(window_data.astype(np.float64), axis=-1)).mean(axis=0)
    return np.fft.rfftfreq(window_data.shape[-1], 1 / SF)[spectrum.argmax()]


# ---------------------------------------------------------------- 1. time gaps
def test_edf_plus_d_windows_sit_at_true_times(tmp_path, files):
    # 15 s at 6 Hz, a 10 s pause, 15 s at 11 Hz (a tone on every channel, 40 uV, + brain).
    t = np.arange(int(15 * SF)) / SF
    first = files.brain(15.0, seed=1) * 1e6 + 40 * np.sin(2 * np.pi * 6 * t)
    second = files.brain(15.0, seed=2) * 1e6 + 40 * np.sin(2 * np.pi * 11 * t)
    path = files.write_edf_plus(
        tmp_path / "gap.edf", np.hstack([first, second]), DEAP_CHANNELS, SF, list(range(15)) + list(range(25, 40))
    )
    out, notes = _run(path, dataclasses.replace(NO_ICA, reference="as-recorded"))
    np.testing.assert_array_equal(out.starts, [0, 3, 6, 9, 12, 27, 30, 33, 36])
    assert out.info["windows_dropped_gap"] == [15, 18, 21, 24]
    assert out.info["duration_s"] == 40.0
    assert [_peak_hz(w) for w in out.data] == pytest.approx([6.0] * 5 + [11.0] * 4, abs=0.34)
    assert "gap.edf: discontinuous recording (EDF+D): 1 gap(s) 15.0-25.0 s" in str(notes[0])
    assert "dropped 4 window(s) that cross a recording gap (EEG starts 15, 18, 21, 24 s)" in out.info["notes"]


# ---------------------------------------------------------------- 2. units
def test_blank_edf_unit_is_refused_with_the_way_out(tmp_path, files):
    path = files.write_edf_plus(
        tmp_path / "blank.edf", files.brain(12.0) * 1e6, DEAP_CHANNELS, SF, list(range(12)), units=[""] * 32
    )
    with pytest.raises(
        MilmerInputError,
        match=r"implausible EEG amplitude in 32 channel\(s\): Fp1 \(1\.\d+e\+07 µV\).*the file's unit field says ''\. "
        r"The numbers look 1e6 too large: if the file's numbers are in uV, rerun with --eeg-unit uV\.",
    ):
        _run(path)
    out, _ = _run(path, eeg_unit="uV")
    assert 10 < out.info["channels"]["amplitude_uv_median"] < 30


def test_fif_holding_microvolt_numbers_is_refused(tmp_path, files):
    path = files.write_fif(tmp_path / "uv_raw.fif", files.brain(12.0) * 1e6, DEAP_CHANNELS)
    with pytest.raises(MilmerInputError, match=r"1e6 too large: .*--eeg-unit uV"):
        _run(path)


def test_volts_under_a_microvolt_label_are_refused(tmp_path, files):
    # 20e-6 stored under 'uV': 1e6 too small, but well above the 1e-12 V flat threshold.
    path = files.write_edf_plus(tmp_path / "v.edf", files.brain(12.0), DEAP_CHANNELS, SF, list(range(12)))
    with pytest.raises(
        MilmerInputError, match=r"unit field says 'µV'\. The numbers look 1e6 too small: .* --eeg-unit V\."
    ):
        _run(path)


def test_brainvision_greek_mu_channels_are_used_as_eeg_in_microvolts(tmp_path, files):
    units = ["\u03bcV" if c in ("CP5", "CP6") else "\u00b5V" for c in DEAP_CHANNELS]
    data = files.brain(12.0) * 1e6
    path = files.write_brainvision(tmp_path / "mu.vhdr", data, DEAP_CHANNELS, SF, units)
    out, _ = _run(path, dataclasses.replace(NO_ICA, reference="as-recorded"))
    retyped = out.info["channels"]["retyped"]
    assert sorted(retyped) == ["CP5", "CP6"] and "typed 'misc' by the reader" in retyped["CP5"]
    cp5 = DEAP_CHANNELS.index("CP5")
    # Same scale as the other channels (~20 uV band-passed), not 1e6 too large.
    assert 10 < np.std(out.data[:, cp5]) < 30


# ---------------------------------------------------------------- 3. quality markings
def test_bad_channel_is_refused_or_interpolated(tmp_path, files):
    data = files.brain(12.0)
    t7 = DEAP_CHANNELS.index("T7")
    data[t7] = 1e-3 * np.sign(np.sin(np.arange(data.shape[1])))  # disconnected: 1 mV square junk
    path = files.write_fif(tmp_path / "bad_raw.fif", data, DEAP_CHANNELS, bads=["T7"])
    with pytest.raises(MilmerInputError, match=r"the file marks channel\(s\) T7 bad \(info\['bads'\]\).*--interpolate-missing"):
        _run(path)
    out, _ = _run(path, interpolate_missing=True)
    assert all(f == ("interpolated:T7",) for f in out.flags)
    assert out.info["channels"]["interpolated"] == ["T7"] and out.info["channels"]["bad_in_file"] == ["T7"]
    assert np.std(out.data[:, t7]) < 40  # the junk (1 mV) is gone, neighbours' signal instead


def test_bad_annotation_flags_overlapping_windows(tmp_path, files):
    data = files.brain(15.0)
    data[:, int(7 * SF) : int(8.5 * SF)] += 1.5e-3  # a 1.5 mV movement artefact
    path = files.write_fif(tmp_path / "move_raw.fif", data, DEAP_CHANNELS, annotations=([7.0], [1.5], ["BAD_movement"]))
    out, _ = _run(path)
    assert out.flags == [(), (), ("bad-span:BAD_movement",), (), ()]
    assert out.info["bad_spans"] == ["BAD_movement"]


# ---------------------------------------------------------------- 4. reference and line noise
def _reference_free(files, tmp_path, name, hum_uv):
    clean = files.brain(20.0, seed=3)
    t = np.arange(clean.shape[1]) / SF
    rng = np.random.default_rng(4)
    offsets = rng.uniform(-20e-3, 20e-3, (32, 1))  # BioSemi CMS/DRL: tens of mV DC per channel
    hum = hum_uv * 1e-6 * np.sin(2 * np.pi * 50 * t)  # common to all channels
    import mne

    raw = mne.io.RawArray(clean + offsets + hum, mne.create_info(list(DEAP_CHANNELS), SF, "eeg"), verbose="error")
    path = tmp_path / name
    mne.export.export_raw(path, raw, fmt="bdf", overwrite=True, verbose="error")
    return path, clean


def test_reference_free_biosemi_is_average_referenced_and_notched(tmp_path, files):
    path, clean = _reference_free(files, tmp_path, "free.bdf", hum_uv=300)
    out, _ = _run(path)
    line = out.info["line_noise"]
    assert line["freq"] == 50.0 and line["source"] == "detected"
    # 99 % of the 1-64 Hz power within 49-51 Hz before; after, what is left there is the brain
    # signal's own (white: 2/63 of its power, the clean control's 3 %), measured 2.6 %.
    assert line["share_before"] > 0.95 and line["share_after"] < 0.035
    assert out.info["reference"] == "average of 32 channels"
    control_path = files.write_fif(tmp_path / "clean_raw.fif", clean, DEAP_CHANNELS)
    assert _run(control_path)[0].info["line_noise"]["freq"] is None  # no hum: nothing notched
    # Same windows as the clean recording put through the same steps, within 0.1 uV (rms).
    control, _ = _run(control_path, dataclasses.replace(NO_ICA, line_noise="50"))
    assert np.sqrt(np.mean((out.data - control.data) ** 2)) < 0.1


def test_flat_stored_reference_is_recognised(tmp_path, files):
    data = files.brain(12.0)
    cz = DEAP_CHANNELS.index("Cz")
    data = data - data[cz]  # recorded against Cz: Cz stored as zeros
    path = files.write_fif(tmp_path / "cz_raw.fif", data, DEAP_CHANNELS)
    out, _ = _run(path)
    assert out.info["channels"]["reference_electrode"] == "Cz"
    assert "Cz is flat at 0 V: taken as the recording's reference electrode" in out.info["notes"][0]
    assert np.std(out.data[:, cz]) > 5  # average reference restores it
    two = data.copy()
    two[DEAP_CHANNELS.index("O2")] = 0
    with pytest.raises(MilmerInputError, match=r"2 channel\(s\) cannot be used as EEG: Cz \(flat .*; O2 \(flat .*--interpolate-missing"):
        _run(files.write_fif(tmp_path / "two_raw.fif", two, DEAP_CHANNELS))


# ---------------------------------------------------------------- 5./6. names and missing channels
def test_biosemi32_labels_in_a_bdf(tmp_path, files):
    import mne

    from milmer.runtime.eeg.channels import BIOSEMI32

    data = files.brain(12.0)
    order = [BIOSEMI32.index(c) for c in DEAP_CHANNELS]  # spec channel -> cap position
    cap = np.empty_like(data)
    cap[order] = data
    raw = mne.io.RawArray(cap, mne.create_info([f"A{k}" for k in range(1, 33)], SF, "eeg"), verbose="error")
    path = tmp_path / "cap.bdf"
    mne.export.export_raw(path, raw, fmt="bdf", overwrite=True, verbose="error")
    spec = dataclasses.replace(NO_ICA, reference="as-recorded", line_noise="off")
    out, _ = _run(path, spec)
    reference, _ = _run(files.write_fif(tmp_path / "named_raw.fif", data, DEAP_CHANNELS), spec)
    np.testing.assert_allclose(out.data, reference.data, atol=1e-3)
    assert out.info["channels"]["mapped_by"][0].startswith("preset biosemi32")
    assert out.info["channels_renamed"]["A32"] == "Cz"


LACKING = ("AF3", "AF4", "PO3", "PO4", "Oz", "T7", "T8")


def test_brainvision_cap_missing_seven_channels(tmp_path, files):
    names = [c for c in DEAP_CHANNELS if c not in LACKING] + ["FT9", "FT10", "TP9", "TP10", "F5", "F6", "P5"]
    path = files.write_brainvision(tmp_path / "cap.vhdr", files.brain(12.0) * 1e6, names, SF, ["\u00b5V"] * 32)
    with pytest.raises(
        MilmerInputError,
        match=r"lacks 7 of the model's 32 EEG channels: AF3, T7, PO3, Oz, AF4, T8, PO4\..*--interpolate-missing",
    ):
        _run(path)
    out, _ = _run(path, interpolate_missing=True)
    assert out.flags[0] == ("interpolated:AF3,T7,PO3,Oz,AF4,T8,PO4",)
    assert all(f == out.flags[0] for f in out.flags)
    for c in LACKING:
        assert 3 < np.std(out.data[:, DEAP_CHANNELS.index(c)]) < 40


def test_consumer_headset_is_refused_whatever_the_interpolation_limit(tmp_path, files):
    names = ["AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8", "AF4"]
    path = files.write_fif(tmp_path / "epoc_raw.fif", files.brain(12.0, n=14), names)
    # One answer whatever the options: --interpolate-missing cannot help, nor can a raised limit
    # (18 of 32 made up is not the model's input; the rule is 24 real sites of 32).
    messages = []
    for options in ({}, {"interpolate_missing": True}, {"interpolate_missing": True, "max_interpolated": 20}):
        with pytest.raises(MilmerInputError, match=r"lacks 18 of the model's 32 EEG channels") as err:
            _run(path, **options)
        messages.append(str(err.value))
    assert messages[0] == messages[1] == messages[2]
    assert "It has 14 of them. A recording with fewer than 24 of the model's 32 sites" in messages[0]
    assert "cannot feed a 32-channel model, whatever --max-interpolated says" in messages[0]
    assert "--interpolate-missing" not in messages[0]


def test_interpolation_limit_below_the_real_site_rule(tmp_path, files):
    # 7 missing (25 real) with --max-interpolated 4: the user's own limit is named.
    names = [c for c in DEAP_CHANNELS if c not in LACKING]
    path = files.write_fif(tmp_path / "cap_raw.fif", files.brain(12.0, n=25), names)
    with pytest.raises(MilmerInputError, match=r"lacks 7 .*more than the 4 \(--max-interpolated\) allowed"):
        _run(path, interpolate_missing=True, max_interpolated=4)


def test_bad_marked_channels_count_against_the_real_site_rule(tmp_path, files):
    # 6 missing + 3 marked bad = 9 made up, 23 real: refused by the rule even with a limit of 20.
    names = [c for c in DEAP_CHANNELS if c not in LACKING[:6]]
    path = files.write_fif(tmp_path / "bads_raw.fif", files.brain(12.0, n=26), names, bads=names[:3])
    with pytest.raises(MilmerInputError, match=r"9 of the model's 32 channels would be interpolated .*only 23 would be real\. A recording with fewer than 24"):
        _run(path, interpolate_missing=True, max_interpolated=20)


# ---------------------------------------------------------------- DEAP .dat --trial
def test_deap_trial_is_mapped_through_the_ratings(tmp_path):
    root = tmp_path / "deap"
    (root / "data_preprocessed_python").mkdir(parents=True)
    data = np.zeros((40, 40, 8064))
    data[:, 0, 0] = np.arange(40)  # row marker
    labels = np.ones((40, 4))
    dat = root / "data_preprocessed_python" / "s07.dat"
    dat.write_bytes(pickle.dumps({"data": data, "labels": labels}, protocol=2))
    rows = ["Participant_id,Trial,Experiment_id,Valence,Arousal,Dominance,Liking"]
    rows += [f"7,{t},{41 - t},{t % 9 + 1},5,5,5" for t in range(1, 41)]  # presentation t = experiment 41 - t
    (root / "participant_ratings.csv").write_text("\n".join(rows) + "\n")
    notes: list[str] = []
    raw, baseline, source = read_eeg(dat, RecordingOptions(trial=5), notes)
    assert (source["experiment_id"], source["row"], baseline) == (36, 35, 3.0)
    assert raw.get_data()[0, 0] == pytest.approx(35e-6)
    assert "DEAP participant 7, trial 5 (presentation order) = experiment 36, row 35" in str(notes[0])
    with pytest.raises(MilmerInputError, match=r"^Invalid value for '--trial': expected an integer in \[1, 40\], got None; 's07\.dat' is a DEAP file of 40 trials: say which one with --trial N \(presentation order"):
        read_eeg(dat, RecordingOptions(), [])
    # A file with fewer trials (the demo's) is described by its own count, read from the CSV.
    (root / "participant_ratings.csv").write_text("\n".join(rows[:5]) + "\n")
    with pytest.raises(MilmerInputError, match=r"expected an integer in \[1, 4\], got None; 's07\.dat' is a DEAP file of 4 trials: say which one with --trial N"):
        read_eeg(dat, RecordingOptions(), [])
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid value for '--trial': expected one of the trials of participant 7 in '.*participant_ratings\.csv' \(1, 2, 3, 4\), got 5\.$",
    ):
        read_eeg(dat, RecordingOptions(trial=5), [])
    (root / "participant_ratings.csv").unlink()
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid value for '--trial': 5 needs participant_ratings\.csv next to 's07\.dat' or one folder up \(it maps .*\), "
        r"got none there; keep DEAP's layout: <root>/data_preprocessed_python/s07\.dat, <root>/participant_ratings\.csv\.$",
    ):
        read_eeg(dat, RecordingOptions(trial=5), [])
    edf = tmp_path / "r.edf"
    edf.write_bytes(b"")
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid value for '--trial': 5 needs a DEAP \.dat file \(only those hold several trials\), got 'r\.edf'\.$",
    ):
        read_eeg(edf, RecordingOptions(trial=5), [])


def test_a_spec_saved_before_reference_and_line_noise_keeps_its_preprocessing():
    from milmer.runtime.spec import ModelSpec

    old = ModelSpec().to_dict()
    del old["eeg"]["reference"], old["eeg"]["line_noise"]
    spec = ModelSpec.from_dict(old)
    assert (spec.eeg.reference, spec.eeg.line_noise) == ("as-recorded", "off")
    assert (EEGSpec().reference, EEGSpec().line_noise) == ("average", "auto")
    with pytest.raises(MilmerInputError, match=r"'eeg.reference': expected one of 'average', 'as-recorded', got 'Cz'"):
        EEGSpec(reference="Cz")


def test_line_frequency_stated_by_the_file_is_notched(tmp_path):
    import mne

    sf = 256.0
    t = np.arange(int(12 * sf)) / sf
    rng = np.random.default_rng(5)
    data = rng.uniform(-1, 1, (32, t.size)) * 30e-6 + 100e-6 * np.sin(2 * np.pi * 60 * t) * rng.uniform(0.5, 1.5, (32, 1))
    raw = mne.io.RawArray(data, mne.create_info(list(DEAP_CHANNELS), sf, "eeg"), verbose="error")
    raw.info["line_freq"] = 60.0
    path = tmp_path / "us_raw.fif"
    raw.save(path, verbose="error")
    out, _ = _run(path)
    line = out.info["line_noise"]
    assert (line["freq"], line["source"]) == (60.0, "the file")
    assert line["share_before"] > 0.5 and line["share_after"] < 0.035
    assert out.info["resampled_from"] == 256.0


def test_duplicate_labels_in_a_file_are_reported_as_duplicates(tmp_path, files):
    names = [c if c != "O2" else "Cz" for c in DEAP_CHANNELS]  # "Cz" twice, no O2
    path = files.write_edf_plus(tmp_path / "dup.edf", files.brain(6.0) * 1e6, names, SF, list(range(6)))
    with pytest.raises(MilmerInputError, match=r"duplicate channel labels: Cz \('Cz-0', 'Cz-1'\)\. .*--channel-map"):
        _run(path)
