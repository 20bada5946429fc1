"""Export verification: comparison rules, the report's parity figures, failures leave no folder."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from milmer.export import command
from milmer.export.inputs import load_demo_windows, synthetic_demo_inputs
from milmer.export.verify import ExportParityError, compare_float, compare_selected
from milmer.runtime.check import MilmerInputError
from milmer.runtime.spec import ModelSpec


def test_compare_float_uses_atol_plus_rtol_and_rejects_nonfinite():
    ref = np.array([0.0, 1.0, 100.0], np.float32)
    ok = compare_float("x", ref + np.array([5e-5, 1.5e-4, 1e-2], np.float32), ref, atol=1e-4, rtol=1e-4)
    assert ok.passed and ok.max_abs == pytest.approx(1e-2, rel=1e-3)
    assert ok.max_rel == pytest.approx(0.5, rel=1e-3)  # 5e-5 / atol: near-zero values use the floor
    bad = compare_float("x", ref + np.array([0, 0, 2e-2], np.float32), ref, atol=1e-4, rtol=1e-4)
    assert not bad.passed
    nan = compare_float("x", np.array([np.nan, 1, 100], np.float32), ref, atol=1e-4, rtol=1e-4)
    assert not nan.passed and nan.max_abs == float("inf")
    assert not compare_float("x", ref[:2], ref, atol=1, rtol=1).passed


def test_compare_selected_allows_only_ties():
    weights = np.array([[0.4, 0.3, 0.2, 0.1], [0.4, 0.25, 0.25 - 5e-6, 0.1]])  # K = 2
    ref = np.array([[0, 1], [0, 1]])
    same = compare_selected("selected", ref.copy(), ref, weights, atol=1e-4, rtol=1e-4)
    assert same.passed and same.mismatched_rows == 0
    tie = compare_selected("selected", np.array([[0, 1], [0, 2]]), ref, weights, atol=1e-4, rtol=1e-4)
    assert tie.passed and (tie.mismatched_rows, tie.tied_rows) == (1, 1)
    wrong = compare_selected("selected", np.array([[0, 2], [0, 1]]), ref, weights, atol=1e-4, rtol=1e-4)
    assert not wrong.passed and (wrong.mismatched_rows, wrong.tied_rows) == (1, 0)


def test_report_records_parity_per_output(exported):
    report = json.loads((exported / "export_report.json").read_text())
    assert report["exporter"] == "torch.onnx.export(dynamo=True)" and report["opset"] == 18
    assert report["tolerance"] == {"atol": 1e-4, "rtol": 1e-4}
    checks = {(c["graph"], c["inputs"]): c for c in report["parity"]}
    assert set(checks) == {(g, i) for g in ("swin", "fusion", "end-to-end") for i in ("random", "demo")}
    assert all(c["passed"] for c in checks.values())
    assert checks["swin", "random"]["n_bags"] == 3 and checks["swin", "demo"]["n_bags"] == 2
    errors = {(c["graph"], o["name"]): o["max_abs"] for c in report["parity"] for o in c["outputs"]}
    # Pinned figures for the tiny model (measured ~2e-6 tokens, ~4e-7 logits, 0 selected).
    assert 0 < errors["swin", "tokens"] < 1e-5
    assert errors["end-to-end", "logits"] < 1e-5 and errors["end-to-end", "probabilities"] < 1e-5
    assert errors["fusion", "selected"] == 0
    assert {"swin.onnx", "fusion.onnx", "spec.json", "trtexec.txt"} <= set(report["files"])
    assert report["files"]["swin.onnx"]["bytes"] == (exported / "swin.onnx").stat().st_size


@pytest.fixture
def fast_export(exported, monkeypatch):
    """export_command with the (slow) exporters replaced by copies of the session's graphs;
    ``corrupt`` perturbs one weight of the copied fusion graph."""

    def copier(name, corrupt=None):
        def export(model, path, spec):
            proto = onnx.load(str(exported / name))
            for i, t in enumerate(proto.graph.initializer):
                if corrupt is not None and t.name == corrupt:
                    array = numpy_helper.to_array(t) + np.float32(0.05)
                    proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(array, t.name))
            onnx.save(proto, str(path))
            return path

        return export

    def setup(corrupt=None):
        monkeypatch.setattr(command, "export_backbone", copier("swin.onnx"))
        monkeypatch.setattr(command, "export_fusion", copier("fusion.onnx", corrupt))

    return setup


def test_over_tolerance_export_fails_and_leaves_no_model_dir(tiny_ckpt, fast_export, tmp_path):
    fast_export(corrupt="model.fusion.head.1.bias")
    out = tmp_path / "model"
    with pytest.raises(ExportParityError, match=r"(?s)beyond tolerance.*fusion +random +logits .*FAIL"):
        command.export_command(tiny_ckpt, out, progress=False)
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a partial one


def test_fast_export_path_is_sound(tiny_ckpt, fast_export, tmp_path):
    """The same monkeypatched path without the corruption succeeds (so the failure above is the weight)."""
    fast_export()
    out = command.export_command(tiny_ckpt, tmp_path / "model", progress=False)
    assert (out / "spec.json").is_file() and (out / "export_report.json").is_file()


def test_missing_or_corrupt_checkpoint_is_an_input_error(tiny_ckpt, tmp_path):
    out = tmp_path / "model"
    with pytest.raises(MilmerInputError, match="'ckpt': directory not found: .*; expected a checkpoint folder written by milmer train"):
        command.export_command(tmp_path / "nope", out, progress=False)
    broken = shutil.copytree(tiny_ckpt, tmp_path / "broken")
    (broken / "model.safetensors").write_bytes((tiny_ckpt / "model.safetensors").read_bytes()[:1000])
    with pytest.raises(MilmerInputError, match="the checkpoint .* could not be read .*; corrupt or truncated weights"):
        command.export_command(broken, out, progress=False)
    (broken / "config.json").unlink()
    with pytest.raises(MilmerInputError, match=r"needs the files of a Milmer checkpoint \(.*\), got a folder without config\.json\.$"):
        command.export_command(broken, out, progress=False)
    assert not out.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"trt_profile": (8, 1, 32)}, r"'--trt-profile': expected \(min, opt, max\) bags .* got \(8, 1, 32\)"),
        ({"workspace_gb": 0}, "'workspace_gb': expected a number in"),
        ({"fp16": "yes"}, "'fp16': expected True or False"),
    ],
)
def test_bad_options_fail_before_exporting(tiny_ckpt, tmp_path, kwargs, message):
    with pytest.raises(MilmerInputError, match=message):
        command.export_command(tiny_ckpt, tmp_path / "model", progress=False, **kwargs)
    assert not (tmp_path / "model").exists()


def test_demo_windows_from_a_preprocess_output(tmp_path):
    spec = ModelSpec()
    crops = np.random.default_rng(0).integers(0, 256, (3, 10, 224, 224, 3), dtype=np.uint8)
    eeg = np.ones((3, 32, 384), np.float32)
    np.savez(tmp_path / "windows.npz", eeg=eeg, faces=crops)
    inputs = load_demo_windows(tmp_path, spec, max_bags=2)
    assert inputs.name == "windows" and inputs.frames.shape == (2, 10, 3, 224, 224)
    expected = (crops[1, 4, 7, 9] / 255 - np.array(spec.face.mean)) / np.array(spec.face.std)
    np.testing.assert_allclose(inputs.frames[1, 4, :, 7, 9], expected, rtol=1e-6)
    np.savez(tmp_path / "bad.npz", eeg=eeg[:, :16], faces=crops)
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'demo_windows': expected eeg of shape \(W, 32, 384\), got float32 \(2, 16, 384\); the windows must be made for this model's spec\.$"):
        load_demo_windows(tmp_path / "bad.npz", spec, max_bags=2)


def test_synthetic_demo_inputs_are_realistic_and_seeded():
    spec = ModelSpec()
    a, b = synthetic_demo_inputs(spec, 2, seed=4), synthetic_demo_inputs(spec, 2, seed=4)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert a.eeg.shape == (2, 32, 384) and a.frames.shape == (2, 10, 3, 224, 224)
    assert 10 < a.eeg.std() < 30  # microvolts
    assert -2.2 < a.frames.min() and a.frames.max() < 2.7  # normalised 0..255 pixels
    assert np.abs(a.frames[0, 0] - a.frames[0, 1]).mean() < np.abs(a.frames[0, 0] - a.frames[1, 0]).mean()
