"""`milmer demo` end to end at tiny sizes: data -> preprocess -> train -> export -> infer."""

from __future__ import annotations

import json

import pytest

from milmer.runtime.check import MilmerInputError

pytest.importorskip("torch", reason="the demo trains a model (training extra); the runtime env has no torch")


def test_demo_runs_the_whole_path(tmp_path, monkeypatch):
    from milmer.app.demo import run_demo
    from milmer.runtime.demo_model import default_model_dir

    monkeypatch.setenv("MILMER_HOME", str(tmp_path / "home"))
    out = tmp_path / "demo"
    summary = run_demo(out, protocols=("trial",), subjects=1, trials=4, trial_s=9.0, recording_s=12.0, epochs=3,
                       ablations={"concat fusion": {"model": {"fusion": "concat"}}})  # fmt: skip

    for rel in ("data/README.txt", "preprocessed/faces.png", "preprocessed/eeg_ica.png", "preprocessed/windows.npz",
                "runs/trial/report.json", "runs/trial-concat-fusion/report.json", "model/swin.onnx", "model/fusion.onnx", "model/swin.int8.onnx",
                "model/spec.json", "predictions.json", "demo_summary.json"):  # fmt: skip
        assert (out / rel).is_file(), rel
    assert summary["synthetic_data"] is True
    assert set(summary["accuracy_by_protocol"]) == {"trial"}
    acc = summary["accuracy_by_protocol"]["trial"]
    assert 0.0 <= acc["accuracy_mean"] <= 1.0 and acc["chance"] == 0.25
    # Every fold is run (4 trials of one subject: 4 folds) and no validation trial is held out.
    assert acc["folds"] == acc["folds_total"] == 4
    report = json.loads((out / "runs/trial/report.json").read_text())
    assert all(f["sizes"]["val"] == 0 for f in report["per_fold"])
    from milmer.training.train_config import load_train_config

    trained = load_train_config(out / "runs/trial/config.json", [])
    assert trained.eeg_augment == "ft-surrogate"
    model = trained.model_config()
    assert (model.fusion, model.mil, model.visual_integration, model.eeg_tokens) == ("transformer", "topk", "cross-attention", "mlp")
    ablations = summary["ablations"]["models"]
    assert list(ablations) == ["paper (transformer fusion, top-K MIL, cross-attention)", "concat fusion"]
    assert ablations["paper (transformer fusion, top-K MIL, cross-attention)"]["accuracy_mean"] == acc["accuracy_mean"]
    predictions = json.loads((out / "predictions.json").read_text())
    assert len(predictions["windows"]) == 4  # 12 s recording -> four 3 s windows
    # The model says it is the demo model in its own spec (every checkpoint's and the export's).
    assert (predictions["model"]["provenance"], predictions["model"]["provenance_source"]) == ("demo", "spec")
    assert json.loads((out / "model/spec.json").read_text())["provenance"] == "demo"
    assert json.loads((out / "demo_summary.json").read_text())["model_dir"] == str(out / "model")
    # milmer-infer without --model now finds this model.
    assert default_model_dir() == out / "model"


def test_demo_rejects_unknown_protocols(tmp_path):
    from milmer.app.demo import run_demo

    with pytest.raises(MilmerInputError, match=r"'protocol': expected one of 'trial', 'loso', 'segment', got 'kfold'"):
        run_demo(tmp_path / "d", protocols=("kfold",))


def test_every_demo_ablation_is_a_valid_change_of_the_demo_config(tmp_path):
    from milmer.app.demo import DEMO_ABLATIONS, demo_train_config
    from milmer.training.backbone import save_tiny_swin

    swin = save_tiny_swin(tmp_path / "swin")
    base = demo_train_config(tmp_path / "d", tmp_path / "o", None, swin)
    changed = {}
    for name, change in DEMO_ABLATIONS.items():
        cfg = demo_train_config(tmp_path / "d", tmp_path / "o", None, swin, **change)
        changed[name] = sorted(k for k, v in cfg.to_dict().items() if v != base.to_dict()[k])
    assert changed == {
        "no EEG augmentation (paper recipe)": ["eeg_augment"],
        "concat fusion": ["model"], "mean-pooling MIL": ["model"], "EEG only": ["model"],
        "face only": ["model"], "spectral EEG tokens": ["model"],
    }  # fmt: skip
