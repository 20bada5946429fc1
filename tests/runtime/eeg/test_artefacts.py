"""Artefacts in the raw samples: railed channels, clipping, NaN dropouts, a pop inside a BAD_ span."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.eeg.artefacts import bridge_spans, clipped_spans, nan_runs, runs
from milmer.runtime.eeg.preprocess import EEGInputOptions, preprocess_raw
from milmer.runtime.spec import DEAP_CHANNELS, EEGSpec, ICASpec

from .conftest import SFREQ, brain

NO_ICA = dataclasses.replace(EEGSpec(), ica=ICASpec(enabled=False))


def _raw(data, annotations=(), names=DEAP_CHANNELS, types=None):
    import mne

    info = mne.create_info(list(names), SFREQ, types or ["eeg"] * len(names))
    raw = mne.io.RawArray(data, info, verbose="error")
    if annotations:
        raw.set_annotations(mne.Annotations(*zip(*annotations)))
    return raw


def test_runs_and_nan_runs():
    assert runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]
    data = np.ones((3, 10))
    data[2] = np.nan  # NaN throughout: a bad channel, not a gap
    data[0, 4:6] = np.nan
    dead, spans = nan_runs(data)
    assert dead.tolist() == [False, False, True] and spans == [(4, 6)]
    bridge_spans(data[:2], spans)
    np.testing.assert_array_equal(data[0], np.ones(10))


def test_clipped_spans_find_runs_at_the_extremes_only():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((3, 1280))
    data[1, 300:700] = 5.0  # saturated at the rail for 3.1 s
    data[1, 900:903] = -5.0  # three samples at the other rail: 23 ms at 128 Hz
    data[2, 100:102] = data[2].max()  # two samples: a peak, not clipping
    spans, rows = clipped_spans(data, SFREQ)
    assert spans == [(300, 700), (900, 903)] and rows == [1]


# ---------------------------------------------------------------- 1. a railed channel
def test_railed_channel_is_not_taken_for_the_reference():
    data = brain(12.0)
    cz = DEAP_CHANNELS.index("Cz")
    data[cz] = (2**23 - 1) * 31.25e-9  # BioSemi's top code: 262 mV for the whole file
    railed = r"cannot be used as EEG: Cz \(stuck at a constant non-zero value .*--interpolate-missing"
    with pytest.raises(MilmerInputError, match=railed):
        preprocess_raw(_raw(data), NO_ICA)
    out = preprocess_raw(_raw(data), NO_ICA, options=EEGInputOptions(interpolate_missing=True))
    assert out.info["channels"]["reference_electrode"] is None
    assert out.info["channels"]["interpolated"] == ["Cz"]
    # The other channels are what they are with Cz marked bad in the file (no 262 mV in the reference).
    marked = _raw(data)
    marked.info["bads"] = ["Cz"]
    control = preprocess_raw(marked, NO_ICA, options=EEGInputOptions(interpolate_missing=True))
    np.testing.assert_allclose(out.data, control.data, atol=1e-4)
    assert 5 < np.median(np.abs(out.data)) < 50


# ---------------------------------------------------------------- 4. a non-EEG channel with a 10-20 name
def test_non_eeg_channels_with_10_20_names_are_named_not_the_unit():
    data = brain(12.0)
    fz, pz = DEAP_CHANNELS.index("Fz"), DEAP_CHANNELS.index("Pz")
    data[fz] = 36.6 + 0.01 * np.sin(np.arange(data.shape[1]) / 50)  # a thermometer in degC
    data[pz] = 0.3 * brain(12.0, seed=1)[0] / 20e-6  # a sensor in its own unit: ~0.3 (x 1e6 uV)
    types = ["eeg"] * 32
    types[fz] = types[pz] = "misc"
    raw = _raw(data, types=types)
    raw._orig_units = {c: "uV" for c in DEAP_CHANNELS} | {"Fz": "degC", "Pz": ""}
    with pytest.raises(MilmerInputError) as err:
        preprocess_raw(raw, NO_ICA)
    msg = str(err.value)
    assert "2 channel(s) cannot be used as EEG: Fz (not EEG" in msg and "unit field 'degC'" in msg
    assert "Pz (an amplitude unlike scalp EEG while the other channels look like EEG; typed 'misc'" in msg
    assert "--eeg-unit" not in msg  # the unit of the other 30 is right
    out = preprocess_raw(raw, NO_ICA, options=EEGInputOptions(interpolate_missing=True))
    assert sorted(out.info["channels"]["interpolated"]) == ["Fz", "Pz"]
    assert 5 < np.median(np.abs(out.data)) < 50  # nothing lifted by orders of magnitude


def test_one_implausible_channel_does_not_decide_the_unit():
    data = brain(12.0)
    data[DEAP_CHANNELS.index("FC5")] *= 1e3  # one channel 1e3 too large: a broken input, not the file's unit
    with pytest.raises(MilmerInputError, match=r"cannot be used as EEG: FC5 \(an amplitude unlike scalp EEG .*µV\)") as err:
        preprocess_raw(_raw(data), NO_ICA)
    assert "--eeg-unit" not in str(err.value)
    with pytest.raises(MilmerInputError, match=r"implausible EEG amplitude in 32 channel\(s\).*--eeg-unit"):
        preprocess_raw(_raw(brain(12.0) * 1e6), NO_ICA)  # all channels 1e6 too large: the unit


# ---------------------------------------------------------------- 9. NaN gaps
def test_nan_gap_is_a_recording_gap():
    data = brain(30.0)
    data[:, int(13.5 * SFREQ) : int(15.5 * SFREQ)] = np.nan  # an XDF dropout, all channels
    data[3, int(20 * SFREQ) : int(20.5 * SFREQ)] = np.nan  # one channel drops out briefly
    out = preprocess_raw(_raw(data), NO_ICA)
    np.testing.assert_array_equal(out.starts, [0, 3, 6, 9, 21, 24, 27])
    assert out.info["windows_dropped_gap"] == [12.0, 15.0, 18.0]
    assert np.isfinite(out.data).all()
    assert any("2 NaN run(s) (dropouts) treated as recording gaps" in n for n in out.info["notes"])


# ---------------------------------------------------------------- 2. clipping spans
def test_clipping_span_is_flagged_and_left_out_of_the_ica_fit(blinky):
    spec = dataclasses.replace(EEGSpec(), ica=ICASpec(method="fastica", max_excluded=2))
    data = blinky.eeg[:, : int(60 * SFREQ)].copy()
    span = slice(int(31 * SFREQ), int(35 * SFREQ))  # frontal channels saturated for 4 s
    rows = [DEAP_CHANNELS.index(c) for c in ("Fp1", "AF3", "Fp2")]
    data[rows, span] = 0.2  # 200 mV: the amplifier's rail
    eog = np.vstack([data, blinky.eog[None, : data.shape[1]]])
    out = preprocess_raw(_raw(eog, names=[*DEAP_CHANNELS, "vEOG"], types=["eeg"] * 32 + ["eog"]), spec)
    flagged = [float(t) for t, f in zip(out.starts, out.flags) if "bad-span:BAD_clipped" in f]
    assert flagged == [30.0, 33.0]
    clipping = "clipping (samples stuck at the channel's extreme) in Fp1, AF3, Fp2: 1 span(s)"
    assert any(clipping in n for n in out.info["notes"])
    # The same as annotating the span BAD_ by hand: clean windows seconds away are untouched.
    by_hand = preprocess_raw(
        _raw(eog, [(31.0, 4.0, "BAD_clipped")], names=[*DEAP_CHANNELS, "vEOG"], types=["eeg"] * 32 + ["eog"]), spec
    )
    far = np.flatnonzero(np.abs(out.starts - 31.5) > 6)
    np.testing.assert_allclose(out.data[far], by_hand.data[far], atol=1e-3)


# ---------------------------------------------------------------- 3. a pop inside a BAD_ span
def test_artefact_inside_a_bad_span_does_not_leak_through_the_filters():
    data = brain(30.0)
    clean = _raw(data.copy(), [(13.2, 0.6, "BAD_pop")])
    popped = data.copy()
    popped[7, int(13.4 * SFREQ) : int(13.4 * SFREQ) + 3] += 5e-3  # a 5 mV electrode pop, 23 ms
    out = preprocess_raw(_raw(popped, [(13.2, 0.6, "BAD_pop")]), NO_ICA)
    reference = preprocess_raw(clean, NO_ICA)
    assert [float(t) for t, f in zip(out.starts, out.flags) if f] == [12.0]
    # Nothing of the pop reaches any window, flagged or clean (the neighbours were ~5x larger before).
    np.testing.assert_allclose(out.data, reference.data, atol=1e-6)


@pytest.mark.parametrize("chunk_s", [0.37, 1.0, 600.0])
def test_kept_samples_read_in_chunks_are_the_samples_mne_omits_around(monkeypatch, chunk_s):
    import mne

    from milmer.runtime.eeg import artefacts

    raw = mne.io.RawArray(np.ones((2, 1000)), mne.create_info(["Fz", "Cz"], 100.0, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([0.0, 2.345, 5.0, 6.995, 9.9], [0.004, 1.1, 0.2, 0.5, 1.0],
                                        ["BAD_a", "BAD_b", "note", "BAD_ACQ_SKIP", "BAD_c"]))  # fmt: skip
    marked = raw.get_data(picks=["Fz"], reject_by_annotation="NaN", verbose="error")[0]
    monkeypatch.setattr(artefacts, "KEPT_CHUNK_S", chunk_s)
    keep = artefacts.kept_samples(raw)
    assert keep.dtype == np.int32 and np.array_equal(keep, np.flatnonzero(~np.isnan(marked)))
    assert 500 in keep and 250 not in keep and 700 not in keep and 999 not in keep and keep.size > 800  # 'note' kept


def test_interpolation_a_minute_at_a_time_equals_mne(monkeypatch):
    """interpolate_bads applies MNE's own spline matrix in chunks: the same channels as
    ``raw.interpolate_bads`` (to float64 rounding), the good ones untouched."""
    import mne

    from milmer.runtime.eeg import bad_channels
    from milmer.runtime.eeg.bad_channels import interpolate_bads
    from milmer.runtime.eeg.channels import standard_1005_montage_name

    spec = dataclasses.replace(EEGSpec(), reference="as-recorded")
    names = (*DEAP_CHANNELS, "vEOG")
    x = np.random.default_rng(3).standard_normal((33, 3000)) * 1e-5
    raw = _raw(x, names=names, types=["eeg"] * 32 + ["eog"])
    raw.info["bads"] = ["C3", "Pz"]
    expected = raw.copy()
    montage = mne.channels.make_standard_montage(standard_1005_montage_name())
    expected.set_montage(montage, match_case=False, on_missing="ignore")
    expected.interpolate_bads(reset_bads=True, verbose="error")
    monkeypatch.setattr(bad_channels, "INTERPOLATE_CHUNK_S", 1.7)
    interpolate_bads(raw, spec)
    assert raw.info["bads"] == [] and np.array_equal(raw.get_data(picks=["Cz", "vEOG"]), x[[23, 32]])
    np.testing.assert_allclose(raw.get_data(), expected.get_data(), rtol=0, atol=1e-12 * np.abs(x).max())
    assert np.abs(raw.get_data(picks=["C3"]) - x[4]).max() > 1e-6  # C3 was interpolated, not kept


def test_good_sample_is_the_good_data_or_every_kth_of_it():
    import mne

    from milmer.runtime.eeg.artefacts import good_data, good_sample

    x = np.random.default_rng(2).standard_normal((2, 5000))
    raw = mne.io.RawArray(x, mne.create_info(["Fz", "Cz"], 100.0, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([3.21, 20.0], [5.0, 0.5], ["BAD_a", "BAD_ACQ_SKIP"]))
    good = good_data(raw, ["Cz"])  # (1, 4450)
    assert good.shape == (1, 4450)
    assert np.array_equal(good_sample(raw, "Cz", 4450), good)
    assert np.array_equal(good_sample(raw, "Cz", 1000), good[:, ::5])  # ceil(4450 / 1000)
