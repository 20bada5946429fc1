"""The GPU-day script: without a GPU every GPU step is 'skipped: no GPU' and the report is written."""

from __future__ import annotations

import json

import pytest

from milmer.benchmarks import gpu_check


def test_without_a_gpu_every_gpu_step_is_skipped_cleanly(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "_run", lambda command: None)  # no nvidia-smi, as here
    monkeypatch.setattr(gpu_check, "_gpu_steps", lambda *a, **k: pytest.fail("GPU steps ran without a GPU"))
    assert gpu_check.main(["--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / gpu_check.REPORT_JSON).read_text())
    assert [(s["name"], s["status"], s["reason"]) for s in report["steps"]] == [
        (name, "skipped", "no GPU") for name in ("model", "tensorrt_engines", "tensorrt", "ort_cuda", "torch_cuda_fp16")
    ]
    env = report["environment"]
    assert env["nvidia_smi"] is None and env["torch"]["cuda_available"] is False
    assert env["tensorrt"] is None and "tensorrt_absent" in env
    assert "CPUExecutionProvider" in env["onnxruntime"]["providers"]
    md = (tmp_path / gpu_check.REPORT_MD).read_text()
    assert "| tensorrt | skipped: no GPU | 0.0 | - | - |" in md and "- GPU: none found" in md
    assert "wrote" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu_check.json", "gpu_check.md"]  # nothing else


def test_a_failing_step_is_reported_and_the_others_still_run(tmp_path):
    def boom() -> dict:
        raise RuntimeError("engine build failed")

    steps = [gpu_check._step("a", boom, print), gpu_check._step("b", lambda: {"x": 1}, print)]
    assert [(s.status, s.reason) for s in steps] == [("failed", "RuntimeError: engine build failed"), ("ok", "")]


def test_bad_repeats_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        gpu_check.main(["--out", str(tmp_path), "--repeats", "0"])
    assert exit_.value.code == 2
    assert "Invalid value for '--repeats': expected an integer >= 1, got 0." in capsys.readouterr().err


def test_gpu_steps_through_the_tensorrt_stand_ins(tmp_path, monkeypatch):
    """With a GPU and TensorRT 10.3 (stand-ins of tests/runtime/backends), the engines are built,
    TensorRT agrees with ONNX Runtime CPU fp32, and throughput has a row per batch size."""
    pytest.importorskip("torch")
    import importlib.util
    import sys
    from pathlib import Path

    from milmer.benchmarks.model import build_bench_model

    name = "milmer_tests_fake_tensorrt"
    if name not in sys.modules:
        path = Path(__file__).parents[1] / "runtime" / "backends" / "fake_tensorrt.py"
        module_spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(sys.modules[name])
    model_dir, _ = build_bench_model(tmp_path / "tiny", tiny=True, progress=False)  # before the fake: torch probes it
    sys.modules[name].install(monkeypatch, "10.3.0")
    monkeypatch.setattr(gpu_check, "gpu_present", lambda env: True)
    report = gpu_check.run_gpu_check(tmp_path / "out", model_dir=model_dir, bag_sizes=(1, 2), repeats=1)
    steps = {s["name"]: s for s in report["steps"]}
    assert {n: s["status"] for n, s in steps.items()} == {
        "model": "ok", "tensorrt_engines": "ok", "tensorrt": "ok", "ort_cuda": "skipped", "torch_cuda_fp16": "skipped",
    }  # fmt: skip
    parity = steps["tensorrt"]["figures"]["parity_vs_ort_cpu_fp32"]
    assert parity["finite"] and parity["max_abs_probabilities"] < 0.05  # fp16 graphs vs fp32
    assert [r["bags"] for r in steps["tensorrt"]["figures"]["throughput"]] == [1, 2]
    assert steps["torch_cuda_fp16"]["reason"] == "PyTorch without CUDA"
