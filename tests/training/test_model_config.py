"""ModelConfig: paper defaults, validation messages, strict JSON round trip, ties to the spec."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.spec import FaceSpec, GraphSpec, ModelSpec
from milmer.training.model_config import DEFAULT_BACKBONE, SPEC_FIELDS, ModelConfig


def test_defaults_are_the_papers():
    c = ModelConfig()
    assert (c.d_model, c.n_heads, c.ffn_dim, c.n_layers) == (768, 12, 2048, 2)
    assert (c.dropout, c.cls_dropout) == (0.2, 0.1)
    assert (c.frames_per_window, c.top_k, c.tokens_per_frame, c.n_queries) == (10, 3, 49, 64)
    assert (c.n_eeg_channels, c.eeg_samples, c.frame_size) == (32, 384, 224)
    assert (c.modality, c.fusion, c.mil, c.visual_integration) == ("both", "transformer", "topk", "cross-attention")
    assert c.backbone_dir == DEFAULT_BACKBONE
    assert (c.n_bag_tokens, c.n_face_tokens) == (147, 64)


def test_derived_token_counts():
    assert ModelConfig(visual_integration="none").n_face_tokens == 147
    assert ModelConfig(mil="amil", visual_integration="none").n_face_tokens == 49
    assert ModelConfig(mil="mean").n_bag_tokens == 49
    assert ModelConfig(modality="eeg").n_face_tokens == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"top_k": 11}, r"'top_k': expected at most frames_per_window = 10, got 11"),
        ({"top_k": 0}, r"'top_k': expected an integer >= 1, got 0"),
        ({"d_model": 100}, r"'n_heads': expected a divisor of d_model = 100, got 12"),
        ({"fusion": "concat", "modality": "eeg"}, r"fusion 'concat'.*needs modality 'both', got modality 'eeg'"),
        ({"fusion": "concat", "modality": "face"}, r"needs modality 'both', got modality 'face'"),
        ({"mil": "max"}, r"'mil': expected one of 'first-frame', 'mean', 'amil', 'topk', got 'max'"),
        ({"modality": "video"}, r"'modality': expected one of 'eeg', 'face', 'both', got 'video'"),
        ({"visual_integration": "ca"}, r"'visual_integration': expected one of 'none', 'mlp', 'cross-attention'"),
        ({"fusion": "sum"}, r"'fusion': expected one of 'transformer', 'concat', got 'sum'"),
        ({"dropout": 1.0}, r"'dropout': expected a number in \[0, 1\), got 1.0"),
        ({"cls_dropout": -0.1}, r"'cls_dropout': expected a number in \[0, 1\), got -0.1"),
        ({"n_classes": True}, r"'n_classes': expected an integer >= 1, got True"),
        ({"n_queries": 2.5}, r"'n_queries': expected an integer >= 1, got 2.5"),
        ({"freeze_backbone": "yes"}, r"'freeze_backbone': expected True or False, got 'yes'"),
        ({"backbone_dir": ""}, r"'backbone_dir': expected a non-empty path string"),
    ],
)
def test_invalid_configs_raise(kwargs, match):
    with pytest.raises(MilmerInputError, match=match):
        ModelConfig(**kwargs)


def test_eeg_only_accepts_face_options_it_ignores():
    c = ModelConfig(modality="eeg", mil="mean", visual_integration="mlp")
    assert c.uses_eeg and not c.uses_face


def test_json_round_trip(tmp_path):
    c = ModelConfig(d_model=64, n_heads=4, mil="amil", visual_integration="mlp", freeze_backbone=True)
    assert ModelConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert ModelConfig.from_json(c.to_json()) == c
    assert ModelConfig.load(c.save(tmp_path / "config.json")) == c
    assert sorted(c.to_dict()) == sorted(f.name for f in dataclasses.fields(ModelConfig))


def test_from_dict_is_strict():
    d = ModelConfig().to_dict()
    with pytest.raises(MilmerInputError, match=r"unknown key\(s\) n_layer;"):
        ModelConfig.from_dict({**d, "n_layer": 3})
    d.pop("top_k")
    with pytest.raises(MilmerInputError, match=r"missing key\(s\) top_k"):
        ModelConfig.from_dict(d)
    with pytest.raises(MilmerInputError, match="not valid JSON"):
        ModelConfig.from_json("{")
    with pytest.raises(MilmerInputError, match="file not found"):
        ModelConfig.load("no/such/config.json")


def test_from_spec_ties_input_sizes_and_classes():
    spec = ModelSpec.for_scheme(
        "deap2-valence",
        face=FaceSpec(frames_per_window=8),
        graph=GraphSpec(top_k=2, tokens_per_frame=49),
    )
    c = ModelConfig.from_spec(spec, d_model=64, n_heads=4)
    assert (c.n_classes, c.frames_per_window, c.top_k) == (2, 8, 2)
    assert (c.n_eeg_channels, c.eeg_samples, c.frame_size) == (32, 384, 224)
    assert c.d_model == 64
    c.check_spec(spec)
    assert ModelConfig.from_spec(ModelSpec()) == ModelConfig()


def test_from_spec_refuses_to_override_spec_fields():
    assert "top_k" in SPEC_FIELDS
    with pytest.raises(
        MilmerInputError, match=r"'n_classes' = 3 \(spec: 4\), 'top_k' = 2 \(spec: 3\): these come from the model spec.*change the spec instead"
    ):
        ModelConfig.from_spec(ModelSpec(), top_k=2, n_classes=3)
    # A config file that still sets the spec's own values keeps working.
    same = ModelConfig.from_spec(ModelSpec(), frame_size=224, frames_per_window=10, tokens_per_frame=49, top_k=3, d_model=64, n_heads=4)
    assert same == ModelConfig(d_model=64, n_heads=4)
    with pytest.raises(MilmerInputError, match=r"unknown ModelConfig field\(s\) depth"):
        ModelConfig.from_spec(ModelSpec(), depth=3)


def test_check_spec_names_each_disagreement():
    with pytest.raises(MilmerInputError, match=r"n_classes: config 4, spec 2; top_k: config 3, spec 1"):
        ModelConfig().check_spec(ModelSpec.for_scheme("deap2-arousal", graph=GraphSpec(top_k=1)))


def test_config_module_imports_no_torch():
    code = "import sys, milmer.training.model_config; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_spec_tied_defaults_come_from_the_spec():
    """The sizes tied to the input contract are not re-declared in ModelConfig: its defaults are
    the default spec's (224, 10, 49, 3, ...), read from the spec classes."""
    import dataclasses
    import inspect

    from milmer.training import model_config as config_module
    from milmer.training.model_config import SPEC_FIELDS

    expected = ModelConfig.from_spec(ModelSpec())
    assert {n: getattr(ModelConfig(), n) for n in SPEC_FIELDS} == {n: getattr(expected, n) for n in SPEC_FIELDS}
    source = inspect.getsource(config_module.ModelConfig)
    for f in dataclasses.fields(ModelConfig):
        if f.name in SPEC_FIELDS:
            line = next(x for x in source.splitlines() if x.strip().startswith(f"{f.name}:"))
            assert any(ref in line for ref in ("_EEG.", "_FACE.", "_GRAPH.", "CLASS_SCHEMES")), line
