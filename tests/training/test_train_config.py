"""TrainConfig: validation messages, JSON/TOML files, CLI overrides, relative paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from milmer.runtime.check import MilmerInputError
from milmer.training.train_config import TrainConfig, load_train_config, parse_overrides

BASE = {"data_root": "/data/deap", "out_dir": "/runs/a"}


def make(**kw):
    return TrainConfig(**{**BASE, **kw})


def test_defaults_are_the_papers_training_settings(monkeypatch):
    monkeypatch.delenv("MILMER_CACHE_DIR", raising=False)
    monkeypatch.setenv("MILMER_HOME", "/home/u/.milmer")
    cfg = make()
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.min_lr_ratio, cfg.seed) == (100, 14, 1e-4, 0.01, 0.1, 0)
    assert cfg.protocol == "trial" and cfg.label_scheme == "deap4" and cfg.keep == "best"
    # The window cache is shared by runs and lives outside every run folder.
    assert cfg.cache_path == Path("/home/u/.milmer/windows")
    assert cfg.model_config().n_classes == 4


def test_cache_root_from_the_environment_or_the_config(monkeypatch, tmp_path):
    monkeypatch.setenv("MILMER_CACHE_DIR", str(tmp_path / "shared"))
    assert make().cache_path == tmp_path / "shared"
    assert make(cache_dir="/fast/cache").cache_path == Path("/fast/cache")
    monkeypatch.delenv("MILMER_CACHE_DIR")
    monkeypatch.delenv("MILMER_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert make().cache_path == tmp_path / "home" / ".cache" / "milmer" / "windows"


def test_config_keys_help_lists_every_key_with_its_default():
    import dataclasses

    from milmer.training.model_config import SPEC_FIELDS, ModelConfig
    from milmer.training.train_config import config_keys_help

    lines = config_keys_help()
    keys = {line.split("=")[0].strip(): line.split("=", 1)[1].strip() for line in lines if " = " in line and ":" not in line}
    assert list(keys)[:3] == ["data_root", "out_dir", "cache_dir"]
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= set(keys)
    assert {f"model.{f.name}" for f in dataclasses.fields(ModelConfig) if f.name not in SPEC_FIELDS} <= set(keys)
    assert not any(f"model.{name}" in keys for name in SPEC_FIELDS)  # set through the spec, not model
    assert keys["data_root"] == "(required)" and keys["epochs"] == "100" and keys["lr"] == "0.0001"
    assert keys["protocol"] == '"trial"' and keys["exclude_subjects"] == "[]" and keys["cache_dir"] == "null"
    assert keys["model.d_model"] == "768" and keys["model.freeze_backbone"] == "false"
    assert max(map(len, lines)) <= 78  # fits an 80-column terminal with the help's margin


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"protocol": "segments"}, r"'protocol': expected one of 'segment', 'trial', 'loso', got 'segments'"),
        ({"label_scheme": "deap5"}, r"'label_scheme': expected one of 'deap4'.*got 'deap5'"),
        ({"amp": "fp8"}, r"'amp': expected one of 'auto', 'bf16', 'fp16', 'off', got 'fp8'"),
        ({"device": "tpu"}, r"'device': expected one of 'auto', 'cpu', 'cuda', got 'tpu'"),
        ({"keep": "all"}, r"'keep': expected one of 'best', 'last', got 'all'"),
        ({"epochs": 0}, r"'epochs': expected an integer >= 1, got 0"),
        ({"epochs": 2.5}, r"'epochs': expected an integer >= 1, got 2.5"),
        ({"batch_size": True}, r"'batch_size': expected an integer >= 1, got True"),
        ({"lr": 0}, r"'lr': expected a number > 0, got 0"),
        ({"lr": "1e-4"}, r"'lr': expected a number > 0, got '1e-4'"),
        ({"min_lr_ratio": 1.5}, r"'min_lr_ratio': expected a number in \[0, 1\], got 1.5"),
        ({"k_folds": 1}, r"'k_folds': expected an integer >= 2, got 1"),
        ({"warmup_epochs": 100}, r"'warmup_epochs': expected less than epochs = 100, got 100"),
        ({"val_fraction": 0.7}, r"'val_fraction': expected a number in \[0, 0.5\], got 0.7"),
        ({"val_fraction": 0.0}, r"keep 'best' .* needs val_fraction > 0"),
        ({"subjects": [1, 0]}, r"'subjects\[1\]': expected an integer >= 1, got 0"),
        ({"folds_to_run": 0}, r"'folds_to_run': expected an integer >= 1, got 0"),
        ({"folds_to_run": [1, 1]}, r"'folds_to_run': expected distinct fold indices >= 0, got \[1, 1\]"),
        ({"folds_to_run": "all"}, r"'folds_to_run': expected null .* got 'all'"),
        ({"workers": -1}, r"'workers': expected an integer >= 0, got -1"),
        ({"data_root": ""}, r"'data_root': expected a non-empty path string, got ''"),
        ({"model": {"d_model": 60, "n_heads": 7}}, r"'n_heads': expected a divisor of d_model = 60, got 7"),
        ({"model": {"n_classes": 3}}, r"'n_classes'.*come from the model spec"),
        ({"model": {"colour": 1}}, r"unknown ModelConfig field\(s\) colour"),
        ({"spec": {"eeg": {"sfreq": -1}}}, r"'eeg.sfreq': expected a number > 0, got -1"),
        ({"spec": {"face": {"size": 3}}}, r"Invalid override spec.face.size: unknown key"),
    ],
)
def test_validation_names_parameter_allowed_and_received(kw, match):
    with pytest.raises(MilmerInputError, match=match):
        make(**kw)


def test_spec_and_model_overrides_flow_into_the_model_config():
    cfg = make(
        label_scheme="deap2-arousal",
        spec={"face": {"frames_per_window": 6}, "graph": {"top_k": 2}, "eeg": {"ica": {"enabled": False}}},
        model={"d_model": 64, "n_heads": 4},
    )
    spec, mc = cfg.model_spec(), cfg.model_config()
    assert spec.class_names == ("low", "high") and not spec.eeg.ica.enabled
    assert (mc.n_classes, mc.frames_per_window, mc.top_k, mc.d_model, mc.n_heads) == (2, 6, 2, 64, 4)


def test_fold_indices():
    assert make().fold_indices(5) == [0, 1, 2, 3, 4]
    assert make(folds_to_run=2).fold_indices(5) == [0, 1]
    assert make(folds_to_run=9).fold_indices(3) == [0, 1, 2]
    assert make(folds_to_run=[3, 1]).fold_indices(5) == [3, 1]
    with pytest.raises(MilmerInputError, match=r"'folds_to_run\[\d\]': expected an integer <= 2, got 4; protocol 'trial' gave 3 folds"):
        make(folds_to_run=[0, 4]).fold_indices(3)


def test_parse_overrides_types_and_nesting():
    got = parse_overrides(["epochs=5", "lr=1e-3", "model.d_model=64", "model.freeze_backbone=true",
                           "subjects=[1,2]", "cache_dir=null", "protocol=loso", "spec.eeg.ica.enabled=false"])
    assert got == {"epochs": 5, "lr": 1e-3, "model": {"d_model": 64, "freeze_backbone": True}, "subjects": [1, 2],
                   "cache_dir": None, "protocol": "loso", "spec": {"eeg": {"ica": {"enabled": False}}}}
    with pytest.raises(MilmerInputError, match=r"Invalid override 'epochs': expected key=value"):
        parse_overrides(["epochs"])
    with pytest.raises(MilmerInputError, match=r"Invalid override 'model..d=1': expected key=value"):
        parse_overrides(["model..d=1"])


def test_toml_file_relative_paths_and_overrides(tmp_path, monkeypatch):
    folder = tmp_path / "cfgs"
    folder.mkdir()
    (folder / "run.toml").write_text(
        'data_root = "deap"\nout_dir = "runs/x"\nepochs = 7\nsubjects = [1, 2]\n'
        '[model]\nd_model = 64\nn_heads = 4\nbackbone_dir = "swin"\n'
    )
    monkeypatch.chdir(tmp_path)
    cfg = load_train_config(folder / "run.toml", ["epochs=3", "model.n_heads=8", "cache_dir=c"])
    assert cfg.data_root == str(folder / "deap") and cfg.out_dir == str(folder / "runs/x")
    assert cfg.cache_dir == str(tmp_path / "c")  # CLI paths are relative to the working directory
    assert cfg.epochs == 3 and cfg.subjects == (1, 2)
    assert cfg.model == {"d_model": 64, "n_heads": 8, "backbone_dir": str(folder / "swin")}


def test_json_round_trip_through_the_saved_file(tmp_path):
    cfg = make(folds_to_run=[0, 2], subjects=[3], spec={"eeg": {"ica": {"enabled": False}}}, model={"d_model": 64, "n_heads": 4})
    path = cfg.save(tmp_path / "config.json")
    assert json.loads(path.read_text())["folds_to_run"] == [0, 2]
    assert load_train_config(path) == cfg


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("a.toml", 'data_root = "d"\nout_dir = "o"\nepoch = 3\n', r"unknown key\(s\) epoch; expected some of data_root"),
        ("a.json", '{"data_root": "d"}', r"missing required key\(s\) out_dir"),
        ("a.json", "{nope", r"not valid JSON"),
        ("a.toml", "x = = 1", r"not valid TOML"),
        ("a.yaml", "x: 1", r"'config': unsupported file type '.yaml' for 'a.yaml'; expected one of '.json', '.toml'"),
    ],
)
def test_bad_files(tmp_path, name, text, match):
    (tmp_path / name).write_text(text)
    with pytest.raises(MilmerInputError, match=match):
        load_train_config(tmp_path / name)


def test_missing_file(tmp_path):
    with pytest.raises(MilmerInputError, match=r"'config': file not found"):
        load_train_config(tmp_path / "none.toml")


def test_training_configs_use_the_runtime_json_mixin():
    """Model and training configs are (de)serialised like the spec: JsonDataclass, no own to_dict."""
    from milmer.runtime.jsonable import JsonDataclass
    from milmer.training.model_config import ModelConfig
    from milmer.training.train_config import TrainConfig

    for cls in (ModelConfig, TrainConfig):
        assert issubclass(cls, JsonDataclass)
        assert "to_dict" not in vars(cls) and "to_json" not in vars(cls), cls
