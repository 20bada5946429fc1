import json

import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.spec import CLASS_SCHEMES, DEAP_CHANNELS, EEGSpec, FaceSpec, ModelSpec


def test_defaults_match_the_paper():
    spec = ModelSpec()
    assert spec.eeg.channels == DEAP_CHANNELS and len(DEAP_CHANNELS) == 32
    assert DEAP_CHANNELS[:4] == ("Fp1", "AF3", "F3", "F7") and DEAP_CHANNELS[-1] == "O2"
    assert (spec.eeg.sfreq, spec.eeg.window_samples, spec.eeg.l_freq, spec.eeg.h_freq) == (128.0, 384, 1.0, 50.0)
    assert (spec.face.frames_per_window, spec.face.frame_size, spec.face.box_expand) == (10, 224, 0.10)
    assert spec.class_names == ("HAHV", "HALV", "LAHV", "LALV")
    assert (spec.graph.tokens_per_frame, spec.graph.token_dim, spec.graph.top_k) == (49, 768, 3)


def test_json_round_trip_is_exact():
    spec = ModelSpec.for_scheme("deap3-valence")
    text = spec.to_json()
    back = ModelSpec.from_json(text)
    assert back == spec
    assert back.to_json() == text
    assert isinstance(json.loads(text)["eeg"]["channels"], list)


def test_save_load(tmp_path):
    spec = ModelSpec()
    path = spec.save(tmp_path / "spec.json")
    assert ModelSpec.load(path) == spec
    assert not list(tmp_path.glob("*.tmp"))


def test_fingerprint_ignores_versions_but_not_settings():
    a = ModelSpec()
    b = ModelSpec(versions={"milmer": "9.9"})
    assert a.fingerprint() == b.fingerprint()
    c = ModelSpec(face=FaceSpec(frame_size=192))
    assert a.fingerprint() != c.fingerprint()
    assert a.preprocessing_fingerprint() != c.preprocessing_fingerprint()
    assert len(a.fingerprint()) == 64


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: FaceSpec(detector="yolo"), r"'face.detector': expected one of 'blazeface-short-range', 'opencv-haar', got 'yolo'"),
        (lambda: EEGSpec(window_s=3.001), r"^Invalid value for 'eeg.window_s': expected seconds > 0 that are a whole number of samples at 128 Hz \(a multiple of 1/128 s\), got 3\.001\.$"),
        (lambda: EEGSpec(window_s=0.0), r"^Invalid value for 'eeg.window_s': expected seconds > 0 .* got 0\.0\.$"),
        (lambda: EEGSpec(h_freq=70.0), r"'eeg.h_freq': expected less than eeg.sfreq/2 = 64.0, got 70.0; the Nyquist frequency"),
        (lambda: ModelSpec(label_scheme="deap5"), r"'label_scheme': expected one of 'deap4'"),
        (lambda: ModelSpec(class_names=("a", "b", "c", "d")), r"'class_names': expected \('HAHV', .*\) \(the classes of label scheme 'deap4'\), got \('a', 'b', 'c', 'd'\)"),
        (lambda: EEGSpec(channels=("Fp1", "FP1")), r"^Invalid value for 'eeg.channels': expected each channel name \(in any case\) once, got 'fp1' twice\.$"),
        (lambda: EEGSpec(channels=()), r"^Invalid value for 'eeg.channels': expected at least one channel name, got none\.$"),
    ],
)
def test_invalid_values_are_named(make, match):
    with pytest.raises(MilmerInputError, match=match):
        make()


def test_from_dict_rejects_unknown_and_missing_keys():
    d = ModelSpec().to_dict()
    d["face"]["colour"] = "rgb"
    with pytest.raises(MilmerInputError, match=r"unknown key\(s\) face.colour"):
        ModelSpec.from_dict(d)
    d = ModelSpec().to_dict()
    del d["eeg"]["ica"]["max_iter"]
    with pytest.raises(MilmerInputError, match=r"missing key\(s\) eeg.ica.max_iter"):
        ModelSpec.from_dict(d)


def test_from_dict_rejects_other_spec_versions_and_bad_json():
    d = ModelSpec().to_dict()
    d["spec_version"] = 99
    with pytest.raises(MilmerInputError, match=r"'spec_version': expected 1 \(the spec version this milmer reads\), got 99; re-export"):
        ModelSpec.from_dict(d)
    with pytest.raises(MilmerInputError, match="not valid JSON"):
        ModelSpec.from_json("{nope")


def test_all_schemes_build():
    for scheme, names in CLASS_SCHEMES.items():
        assert ModelSpec.for_scheme(scheme).n_classes == len(names)


def test_ica_method_and_tolerance():
    from milmer.runtime.spec import ICASpec

    assert (ICASpec().method, ICASpec().tol, ICASpec().max_iter) == ("picard", 1e-3, 1000)
    with pytest.raises(MilmerInputError, match=r"'ica.method': expected one of 'picard', 'fastica', got 'infomax'"):
        ICASpec(method="infomax")
    for tol in (0, 1.0, True, "1e-3"):
        with pytest.raises(MilmerInputError, match=r"'ica.tol': expected a number in \(0, 1\), got"):
            ICASpec(tol=tol)


def test_spec_saved_before_ica_tol_loads_as_it_was_fitted():
    """A spec without 'ica.tol' was written when FastICA was the only solver: it loads as FastICA
    at scikit-learn's default tolerance (1e-4), so a model keeps its training's preprocessing."""
    d = ModelSpec().to_dict()
    del d["eeg"]["ica"]["tol"]
    d["eeg"]["ica"]["method"] = "fastica"
    ica = ModelSpec.from_dict(d).eeg.ica
    assert (ica.method, ica.tol) == ("fastica", 1e-4)


@pytest.mark.parametrize("provenance", ["trained", "demo", "benchmark", None])
def test_provenance_round_trips(provenance, tmp_path):
    spec = ModelSpec(provenance=provenance)
    assert json.loads(spec.to_json())["provenance"] == provenance
    assert ModelSpec.load(spec.save(tmp_path / "spec.json")).provenance == provenance


def test_provenance_is_trained_by_default_and_checked():
    assert ModelSpec().provenance == "trained"
    with pytest.raises(
        MilmerInputError, match=r"^Invalid value for 'provenance': expected one of 'trained', 'demo', 'benchmark', got 'random'\.$"
    ):
        ModelSpec(provenance="random")
    d = ModelSpec().to_dict() | {"provenance": "pretrained"}
    with pytest.raises(MilmerInputError, match="'provenance': expected one of"):
        ModelSpec.from_dict(d)


def test_spec_saved_before_provenance_loads_without_one():
    """A spec written before the field existed does not become 'trained': it says nothing (None),
    and the runtime infers the provenance as before (tests/runtime/test_demo_model.py)."""
    d = ModelSpec().to_dict()
    del d["provenance"]
    assert ModelSpec.from_dict(d).provenance is None
