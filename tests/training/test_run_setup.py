"""Recoverable training: everything is checked before any work, a failed start leaves nothing, and
the preprocessed-window cache is shared by runs (outside every run folder) and reused.

The end-to-end scenario goes through the ``milmer train`` CLI on tiny synthetic DEAP data (1
subject x 4 trials of one window, a tiny Swin, the OpenCV Haar detector, ICA off).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from milmer.app.cli import main
from milmer.runtime.check import MilmerInputError
from milmer.app.errors import EXIT_OK, EXIT_USAGE
from milmer.training import window_cache_build as cache_module
from milmer.training import experiment
from milmer.app.demo import demo_train_config
from milmer.training.experiment import check_run, run_experiment

FAST_SPEC = {"eeg": {"ica": {"enabled": False}}, "face": {"detector": "opencv-haar"}}


@pytest.fixture(scope="module")
def deap(tmp_path_factory):
    """Tiny DEAP-format data and a tiny Swin under one folder (``root``)."""
    from milmer.synthetic.make import make_demo_data
    from milmer.training.backbone import save_tiny_swin

    root = tmp_path_factory.mktemp("setup")
    make_demo_data(root / "demo", n_subjects=1, n_trials=4, trial_s=3.0, baseline_s=3.0, video_fps=10.0, recording_s=1.0)
    return {"root": root, "data": root / "demo" / "deap", "swin": save_tiny_swin(root / "swin")}


def _values(deap, **changes):
    """The demo's training settings as config-file values (1 epoch, 1 of 2 folds, no val split)."""
    cfg = demo_train_config(deap["data"], deap["root"] / "run", None, deap["swin"], "trial", k_folds=2, folds_to_run=1,
                            val_fraction=0.0, epochs=1, workers=0)  # fmt: skip
    values = cfg.replace(spec={**cfg.spec, **FAST_SPEC}).to_dict()
    values.pop("cache_dir")  # the default: $MILMER_CACHE_DIR
    values = {k: v for k, v in values.items() if v is not None}
    for key, value in changes.items():
        if key.startswith("model."):
            values["model"] = {**values["model"], key[6:]: value}
        else:
            values[key] = value
    return values


def _config(deap, **changes):
    from milmer.training.train_config import TrainConfig

    return TrainConfig(**{"cache_dir": None, **_values(deap, **changes)})


def _shard_stamps(cache_root: Path) -> dict[str, int]:
    return {str(p.relative_to(cache_root)): p.stat().st_mtime_ns for p in sorted(cache_root.rglob("*.npy"))}


def _forbid(monkeypatch, *names):
    """Make the cache builders fail loudly: the test pins that they are not reached."""

    def boom(*args, **kwargs):
        raise AssertionError("the window cache was touched")

    for name in names:
        monkeypatch.setattr(cache_module, name, boom)


def test_typo_then_fix_then_delete_the_run_then_rerun_reuses_the_cache(deap, tmp_path, monkeypatch, capsys):
    cache_root = tmp_path / "shared-cache"
    monkeypatch.setenv("MILMER_CACHE_DIR", str(cache_root))
    # Relative paths in the config file are read from the config file's folder, not the cwd.
    folder = deap["root"]
    monkeypatch.chdir(tmp_path)
    config = folder / "deap.json"

    def train(**changes):
        values = _values(deap, **{"data_root": "demo/DEAPP", "out_dir": "runs/r1", **changes})
        config.write_text(json.dumps(values))
        code = main(["train", "--config", str(config)])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, _, err = train()
    assert code == EXIT_USAGE
    assert "Invalid value for 'data_root'" in err and repr(str(folder / "demo" / "DEAPP")) in " ".join(err.split())
    assert "Traceback" not in err
    assert not (folder / "runs").exists() and not (tmp_path / "runs").exists()  # no run folder left
    assert not cache_root.exists()  # nothing was preprocessed

    code, out, err = train(data_root="demo/deap")  # the corrected rerun is not refused
    assert code == EXIT_OK, err
    run = folder / "runs" / "r1"
    assert f"Run folder: {run}" in out
    assert json.loads((run / "config.json").read_text())["data_root"] == str(folder / "demo" / "deap")
    report = json.loads((run / "report.json").read_text())
    assert Path(report["data"]["cache"]).parent == cache_root  # the shared cache, not inside the run
    stamps = _shard_stamps(cache_root)
    assert len([k for k in stamps if k.endswith("eeg.npy")]) == 4  # one shard per trial

    shutil.rmtree(run)  # deleting a run never deletes the cache
    assert _shard_stamps(cache_root) == stamps

    _forbid(monkeypatch, "_build_shard", "_compute_trial")  # a rebuild would fail this run
    code, _, err = train(data_root="demo/deap")
    assert code == EXIT_OK, err
    assert _shard_stamps(cache_root) == stamps
    assert json.loads((run / "report.json").read_text())["per_fold"][0]["n_test"] == report["per_fold"][0]["n_test"]


@pytest.mark.parametrize(
    ("backbone", "match"),
    [
        ("missing", r"Invalid value for 'backbone_dir': directory not found: '.*missing'"),
        ("no-config", r"Invalid value for 'backbone_dir': file not found: '.*no-config/config.json'; without config.json it is not a Hugging Face checkpoint"),
        ("no-weights", r"Invalid value for 'backbone_dir': the checkpoint weights in '.*no-weights' could not be read"),
        ("truncated", r"Invalid value for 'backbone_dir'.*truncated"),
    ],
)
def test_a_missing_or_broken_backbone_is_refused_before_any_cache_is_built(deap, tmp_path, monkeypatch, backbone, match):
    monkeypatch.setenv("MILMER_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / backbone
    if backbone != "missing":
        path.mkdir()
    if backbone in ("no-weights", "truncated"):
        shutil.copy(deap["swin"] / "config.json", path / "config.json")
    if backbone == "truncated":
        (path / "model.safetensors").write_bytes((deap["swin"] / "model.safetensors").read_bytes()[:1000])
    _forbid(monkeypatch, "build_cache")
    monkeypatch.setattr(experiment, "_load_data", lambda *a, **k: pytest.fail("data loaded before the checks"))
    cfg = _config(deap, out_dir=str(tmp_path / "run"), **{"model.backbone_dir": str(path)})
    with pytest.raises(MilmerInputError, match=match):
        run_experiment(cfg, progress=False)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()


def test_a_backbone_of_another_size_is_refused_before_any_cache_is_built(deap, tmp_path, monkeypatch):
    from milmer.training.backbone import save_tiny_swin

    monkeypatch.setenv("MILMER_CACHE_DIR", str(tmp_path / "cache"))
    wider = save_tiny_swin(tmp_path / "wider", embed_dim=16)  # tokens of 128, the spec says 64
    monkeypatch.setattr(experiment, "_load_data", lambda *a, **k: pytest.fail("data loaded before the checks"))
    cfg = _config(deap, out_dir=str(tmp_path / "run"), **{"model.backbone_dir": str(wider)})
    with pytest.raises(MilmerInputError, match=r"'spec.graph.token_dim': expected 128 \(the token size of the backbone in .*\), got 64; set spec.graph.token_dim=128"):
        run_experiment(cfg, progress=False)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("no-dat", r"Invalid value for 'data_root': directory not found: '.*deap/data_preprocessed_python'; expected the DEAP layout"),
        ("no-csv", r"Invalid value for 'data_root': file not found: '.*deap/participant_ratings.csv'; it maps the videos' presentation order"),
        ("file", r"Invalid value for 'data_root': expected a directory, got file '.*deap'; expected the DEAP layout"),
        ("no-video", r"Invalid value for 'data_root': expected at least one usable trial \(EEG \+ face video\), got none; none under '.*deap'"),
    ],
)
def test_data_root_without_deaps_layout_names_data_root(deap, tmp_path, case, match):
    data = tmp_path / "deap"
    if case == "file":
        data.write_text("")
    else:
        shutil.copytree(deap["data"], data)
        {"no-dat": lambda: shutil.rmtree(data / "data_preprocessed_python"),
         "no-csv": lambda: (data / "participant_ratings.csv").unlink(),
         "no-video": lambda: shutil.rmtree(data / "face_video")}[case]()  # fmt: skip
    cfg = _config(deap, data_root=str(data), out_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"))
    with pytest.raises(MilmerInputError, match=match):
        check_run(cfg)
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


def test_out_dir_checks_name_the_option_that_gave_it(deap, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MILMER_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "a-file").write_text("")
    cfg = _config(deap, out_dir=str(tmp_path / "a-file"))
    with pytest.raises(MilmerInputError, match=r"Invalid value for 'out_dir': '.*a-file' exists and is not a folder"):
        check_run(cfg)

    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("")
    config = tmp_path / "c.json"
    config.write_text(json.dumps(_values(deap)))
    code = main(["train", "--config", str(config), "--out", str(other)])
    err = " ".join(capsys.readouterr().err.split())
    assert code == EXIT_USAGE
    assert f"Invalid value for '--out': folder {str(other)!r} is not empty; it holds no milmer run" in err
    assert (other / "notes.txt").is_file() and sorted(p.name for p in other.iterdir()) == ["notes.txt"]

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(_config(deap, out_dir=str(run), epochs=7).to_dict()))
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'out_dir': expected \{'epochs': 7\} \(the config of the run in '.*run'\), "
                                               r"got \{'epochs': \d+\}; choose another folder, or delete this one to start over "
                                               r"\(the preprocessed-window cache is kept elsewhere, in '.*cache'\)\.$"):  # fmt: skip
        check_run(_config(deap, out_dir=str(run)))


def test_missing_config_file_names_the_option(tmp_path, capsys):
    code = main(["train", "--config", str(tmp_path / "nope.toml")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == EXIT_USAGE and f"Invalid value for '--config': file not found: {str(tmp_path / 'nope.toml')!r}" in err
    (tmp_path / "c.yaml").write_text("epochs: 1\n")
    code = main(["train", "--config", str(tmp_path / "c.yaml")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == EXIT_USAGE and "Invalid value for '--config': unsupported file type '.yaml'" in err
    code = main(["train"])
    assert code == EXIT_USAGE and "--config" in capsys.readouterr().err


def test_a_start_that_fails_before_any_epoch_leaves_no_run_folder(deap, tmp_path, monkeypatch):
    monkeypatch.setenv("MILMER_CACHE_DIR", str(deap["root"] / "cache"))  # shared with the next test

    def crash(*args, **kwargs):
        assert (tmp_path / "run" / "config.json").is_file()  # written when training starts
        raise RuntimeError("out of memory")

    monkeypatch.setattr(experiment, "_run_fold", crash)
    cfg = _config(deap, out_dir=str(tmp_path / "run"))
    with pytest.raises(RuntimeError, match="out of memory"):
        run_experiment(cfg, progress=False)
    assert not (tmp_path / "run").exists()
    assert len(list((deap["root"] / "cache").glob("deap-*/shards/*/eeg.npy"))) == 4  # kept for the rerun
    (tmp_path / "run").mkdir()  # an empty folder given as out_dir stays, emptied again
    with pytest.raises(RuntimeError, match="out of memory"):
        run_experiment(cfg, progress=False)
    assert (tmp_path / "run").is_dir() and not any((tmp_path / "run").iterdir())


def test_a_failure_after_a_finished_epoch_keeps_the_run_to_resume(deap, tmp_path, monkeypatch):
    monkeypatch.setenv("MILMER_CACHE_DIR", str(deap["root"] / "cache"))

    def crash(cfg, fold, index, cache, labels, tokens, ctx, run_dir, progress):
        (run_dir / "fold_00" / "last").mkdir(parents=True)  # as fit() leaves it after an epoch
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "_run_fold", crash)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(_config(deap, out_dir=str(tmp_path / "run")), progress=False)
    assert (tmp_path / "run" / "config.json").is_file() and (tmp_path / "run" / "fold_00" / "last").is_dir()


def test_fold_choices_the_data_cannot_give_are_refused_before_any_cache_is_built(deap, tmp_path, monkeypatch):
    monkeypatch.setenv("MILMER_CACHE_DIR", str(tmp_path / "cache"))
    _forbid(monkeypatch, "build_cache")
    with pytest.raises(MilmerInputError, match=r"'protocol': expected at least 2 subjects \(protocol 'loso'\), got 1: .*1.*; found under data_root"):
        check_run(_config(deap, protocol="loso", out_dir=str(tmp_path / "run")))
    with pytest.raises(MilmerInputError, match=r"'folds_to_run\[\d\]': expected an integer <= 1, got 2; protocol 'trial' gave 2 folds"):
        run_experiment(_config(deap, folds_to_run=[0, 2], out_dir=str(tmp_path / "run")), progress=False)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()
