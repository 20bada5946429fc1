"""EGI Geodesic Sensor Net recordings: the model's 10-20 sites interpolated from the net."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.eeg import egi
from milmer.runtime.eeg.channels import standard_1005_montage_name
from milmer.runtime.eeg.egi import MIN_MNE, egi_to_1020
from milmer.runtime.eeg.options import EEGInputOptions
from milmer.runtime.eeg.working import working_recording
from milmer.runtime.spec import EEGSpec

mne = pytest.importorskip("mne")

SFREQ = 128.0
# Dipole-like sources in a spherical head (metres from the sphere's centre) and their moments.
# An electrode at direction u from the centre sees sum_s (R u - r_s) . p_s / |R u - r_s|^3 (a
# current dipole in an infinite medium, evaluated on the head sphere of radius R): a smooth field
# like a real one, so the true value at the 10-05 sites is computable the same way. Positions are
# taken as directions from the centre because that is what a spherical-spline fit sees.
SOURCES = np.array([[0.03, 0.02, 0.03], [-0.03, -0.03, 0.02], [0.0, 0.04, 0.0], [-0.02, 0.0, 0.04]])
MOMENTS = np.array([[0.0, 0.0, 1.0], [0.5, 0.0, 1.0], [0.0, 1.0, 0.3], [1.0, 0.0, 0.0]])


def _positions(montage_name: str) -> dict[str, np.ndarray]:
    """Electrode positions in the head frame (each montage placed by its own fiducials)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        montage = mne.channels.make_standard_montage(montage_name)
    info = mne.create_info(montage.ch_names, SFREQ, "eeg")
    info.set_montage(montage)
    return info.get_montage().get_positions()["ch_pos"]


def _sphere() -> tuple[float, np.ndarray]:
    """The head sphere MNE fits to the net's electrodes (what ``interpolate_to`` uses)."""
    info = mne.create_info(list(_positions("GSN-HydroCel-129")), SFREQ, "eeg")
    info.set_montage(mne.channels.make_standard_montage("GSN-HydroCel-129"))
    radius, origin, _ = mne.bem.fit_sphere_to_headshape(info, dig_kinds=("eeg",), units="m", verbose=False)
    return float(radius), np.asarray(origin)


def _field(positions: np.ndarray) -> np.ndarray:
    """(N, 3) positions -> (N, S) potential of each unit source, against the vertex (EGI Cz)."""
    radius, origin = _sphere()

    def at(p):
        u = (p - origin) / np.linalg.norm(p - origin, axis=1, keepdims=True)
        r = radius * u[:, None, :] - SOURCES[None]
        return np.einsum("nsk,sk->ns", r, MOMENTS) / np.linalg.norm(r, axis=2) ** 3

    return at(positions) - at(_positions("GSN-HydroCel-129")["Cz"][None])


def _egi_recording(seconds: float = 20.0) -> tuple[mne.io.RawArray, np.ndarray]:
    """A 129-channel HydroCel recording (E1..E128 against the vertex, Cz stored as zeros) and the
    (32, T) truth at the model's 10-05 sites (volts)."""
    pos = _positions("GSN-HydroCel-129")
    names = list(pos)
    t = np.arange(int(seconds * SFREQ)) / SFREQ
    rng = np.random.default_rng(0)
    courses = np.stack([np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (6.0, 10.0, 13.0, 21.0)])
    data = _field(np.array([pos[n] for n in names])) @ courses
    scale = 40e-6 / data.std()  # ~40 uV
    raw = mne.io.RawArray(data * scale, mne.create_info(names, SFREQ, "eeg"), verbose="error")
    template = {k.lower(): v for k, v in _positions(standard_1005_montage_name()).items()}
    truth = _field(np.array([template[c.lower()] for c in EEGSpec().channels])) @ courses * scale
    return raw, truth


needs_mne = pytest.mark.skipif(
    egi._release(mne.__version__) < MIN_MNE, reason=f"EGI presets need MNE >= {MIN_MNE} (older ones are refused)"
)


@needs_mne
def test_hydrocel_129_interpolates_the_model_sites_within_1_percent():
    spec = EEGSpec()
    raw, truth = _egi_recording()
    assert np.abs(raw.get_data(picks=["Cz"])).max() == 0  # the stored vertex reference
    out, note = egi_to_1020(raw, spec, "egi-hydrocel-129")
    assert out.ch_names == list(spec.channels)
    assert note.code == "egi-interpolated" and note.severity == "flag" and note.data["vertex"] == "Cz"
    got = out.get_data()
    scale = np.sqrt((truth**2).mean())
    error = np.sqrt(((got - truth) ** 2).mean(axis=1)) / scale  # per channel, relative to the field's rms
    assert error.max() < 0.01, dict(zip(spec.channels, error.round(3)))
    for c in ("Fp1", "Cz", "O2", "T7", "Pz"):
        i = spec.channels.index(c)
        assert np.abs(got[i] - truth[i]).max() < 0.02 * scale, c


@needs_mne
def test_working_recording_uses_the_preset_and_flags_it():
    raw, _ = _egi_recording()
    step = working_recording(raw, EEGSpec(), EEGInputOptions(channel_map="egi-hydrocel-129"))
    assert step.work.ch_names[:32] == list(EEGSpec().channels)
    assert [n.code for n in step.notes][:1] == ["egi-interpolated"]
    assert not step.channels.interpolated


def test_without_the_preset_an_egi_file_is_refused_naming_it():
    raw, _ = _egi_recording()
    with pytest.raises(MilmerInputError, match=r"--channel-map egi-hydrocel-129 \(the model's 10-20 sites interpolated"):
        working_recording(raw, EEGSpec(), EEGInputOptions())


def test_the_preset_refuses_a_file_that_is_not_that_net():
    spec = EEGSpec()
    data = np.random.default_rng(1).normal(0, 2e-5, (32, 1280))
    raw = mne.io.RawArray(data, mne.create_info(list(spec.channels), SFREQ, "eeg"), verbose="error")
    with pytest.raises(MilmerInputError, match=r"egi-hydrocel-129 is the EGI HydroCel net of 128 electrodes.*has 0 of them"):
        egi_to_1020(raw, spec, "egi-hydrocel-129")
    egi, _ = _egi_recording(5.0)
    with pytest.raises(MilmerInputError, match=r"egi-hydrocel-256 is the EGI HydroCel net of 256 electrodes.*has 128 of them"):
        egi_to_1020(egi, spec, "egi-hydrocel-256")


@needs_mne
def test_every_window_of_an_egi_recording_is_flagged(filter_only_spec):
    from milmer.runtime.eeg.preprocess import preprocess_raw

    raw, _ = _egi_recording(30.0)
    windows = preprocess_raw(raw, filter_only_spec, options=EEGInputOptions(channel_map="egi-hydrocel-129"))
    assert windows.data.shape[1:] == (32, filter_only_spec.window_samples)
    assert windows.flags and all("interpolated:egi-hydrocel-129" in f for f in windows.flags)
    assert "egi-interpolated" in [n["code"] for n in windows.info["note_codes"]]


def test_an_mne_older_than_the_checked_one_is_refused(monkeypatch):
    raw, _ = _egi_recording()
    monkeypatch.setattr(mne, "__version__", "1.12.1")
    with pytest.raises(MilmerInputError, match=r"^Invalid value for '--channel-map': 'egi-hydrocel-129' needs MNE 1\.13 or later \(checked there\), got MNE 1\.12\.1, which interpolates the sites wrongly; upgrade mne"):
        egi_to_1020(raw, EEGSpec(), "egi-hydrocel-129")


@needs_mne
def test_the_net_is_interpolated_as_it_is_read_like_mne_interpolate_to():
    """The preset's recording reads the part asked for and interpolates it then (a long net is
    never loaded whole): any stretch equals MNE's ``interpolate_to`` of the loaded net."""
    spec = EEGSpec()
    raw, _ = _egi_recording(10.0)
    raw.add_channels([mne.io.RawArray(raw.get_data(picks=["E8"]) * 3, mne.create_info(["VEOG"], SFREQ, "eog"), verbose="error")])
    out, _ = egi_to_1020(raw, spec, "egi-hydrocel-129")
    assert not out.preload and out.ch_names == [*spec.channels, "VEOG"] and out.get_channel_types()[-1] == "eog"
    net = raw.copy().pick([n for n in raw.ch_names if n != "VEOG"])
    net.rename_channels({"Cz": "Cz"}).set_montage(mne.channels.make_standard_montage("GSN-HydroCel-129"), verbose="error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        template = mne.channels.make_standard_montage(standard_1005_montage_name())
    sites = mne.create_info(list(spec.channels), SFREQ, "eeg")
    sites.set_montage(template, match_case=False, verbose="error")
    expected = net.interpolate_to(sites.get_montage(), method="spline").get_data()  # (32, T)
    scale = np.abs(expected).max()
    for start, stop in [(0, 1280), (77, 300), (1000, 1280)]:
        got = out.get_data(start=start, stop=stop)
        np.testing.assert_allclose(got[:32], expected[:, start:stop], rtol=0, atol=1e-9 * scale)
        np.testing.assert_array_equal(got[32], raw.get_data(picks=["VEOG"], start=start, stop=stop)[0])


@needs_mne
def test_a_long_egi_recording_read_in_chunks_gives_the_same_windows(monkeypatch, filter_only_spec):
    from milmer.runtime.eeg import decimate
    from milmer.runtime.eeg.preprocess import preprocess_raw

    options = EEGInputOptions(channel_map="egi-hydrocel-129")
    raw, _ = _egi_recording(30.0)
    whole = preprocess_raw(raw, filter_only_spec, options=options)
    monkeypatch.setattr(decimate, "MAX_FULL_RATE_BYTES", 1)
    monkeypatch.setattr(decimate, "CHUNK_S", 2.5)
    chunked = preprocess_raw(raw, filter_only_spec, options=options)
    assert any(n.startswith("resampled early (128 -> 128 Hz") for n in chunked.info["notes"])
    assert chunked.flags == whole.flags
    assert np.abs(chunked.data - whole.data).max() <= 2.0**-23 * np.abs(whole.data).max()
