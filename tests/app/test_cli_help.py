"""`milmer train --help` and `milmer bench --help`: plain text, required options marked, every
config key and every default listed, readable at 80 columns; neither help loads numpy."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from milmer.app.cli import main
from milmer.app.errors import EXIT_OK


def _help(command: str, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TERMINAL_WIDTH", "80")
    code = main([command, "--help"])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    return out


def test_train_help_is_plain_text_with_required_config_and_every_key(capsys, monkeypatch):
    from milmer.training.model_config import SPEC_FIELDS, ModelConfig
    from milmer.training.train_config import TrainConfig

    out = _help("train", capsys, monkeypatch)
    lines = out.splitlines()
    assert "``" not in out and ":data:" not in out and ":class:" not in out  # no raw RST
    assert max(map(len, lines)) <= 80
    config_line = next(line for line in lines if "--config" in line)
    assert config_line.lstrip("│ ").startswith("*") and "[required]" in out  # marked required
    # Every key with its default, one per line: generated from the dataclasses.
    for f in dataclasses.fields(TrainConfig):
        assert any(line.strip().startswith(f"{f.name} ") and " = " in line for line in lines), f.name
    for f in dataclasses.fields(ModelConfig):
        if f.name not in SPEC_FIELDS:
            assert any(line.strip().startswith(f"model.{f.name} ") for line in lines), f.name
    assert any(line.split() == ["epochs", "=", "100"] for line in lines)
    assert any(line.split() == ["data_root", "=", "(required)"] for line in lines)
    flat = " ".join(out.split())
    assert "Relative paths in the config file are read from the config file's folder" in flat
    assert "epochs=5 protocol=loso model.d_model=64" in flat


def test_bench_help_shows_the_defaults(capsys, monkeypatch):
    from milmer.benchmarks.command import BenchSettings

    out = _help("bench", capsys, monkeypatch)
    full, quick = BenchSettings.defaults(quick=False), BenchSettings.defaults(quick=True)
    lines = [line.split() for line in out.splitlines()]
    assert ["--repeats", str(full.repeats), "|", str(quick.repeats)] in lines
    assert ["--warmup", str(full.warmup), "|", str(quick.warmup)] in lines
    assert ["--batch-sizes", ",".join(map(str, full.batch_sizes)), "|", ",".join(map(str, quick.batch_sizes))] in lines
    assert ["--lengths", "60,600", "|", "12,24"] in lines
    flat = " ".join(out.split())
    assert "--pipeline-batch: the pipeline's default for the device (cpu 1, GPU 16)" in flat
    assert "--max-rss-mb: half the memory available at the start" in flat
    assert max(map(len, out.splitlines())) <= 80


def test_demo_help_names_every_ablation_the_demo_trains(capsys, monkeypatch):
    from milmer.app.demo import DEMO_ABLATIONS

    flat = " ".join(_help("demo", capsys, monkeypatch).replace("│", " ").split())
    assert len(DEMO_ABLATIONS) == 6
    assert f"Also train the 6 ablations ({', '.join(DEMO_ABLATIONS)}) under the trial protocol" in flat
    assert "(24 more fold trainings: about a minute per ablation on 2 cores)" in flat


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["bench", "--help"], ["demo", "--help"]])
def test_help_loads_neither_torch_nor_numpy_unless_shown(argv):
    code = (
        "import sys\nfrom milmer.app.cli import main\n"
        f"main({argv!r})\n"
        "print('LOADED', sorted(m for m in ('torch', 'numpy', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = out.split("LOADED")[-1].strip()
    # train/bench help build their key and default lists from config modules that need numpy.
    assert loaded == ("[]" if argv in (["--help"], ["demo", "--help"]) else "['numpy']"), out[-300:]


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err


def test_export_errors_name_the_command_line_arguments(tmp_path, capsys):
    """``milmer export`` names CKPT and --out, not export_command's parameters."""
    pytest.importorskip("torch", reason="export needs the export extra")
    missing = tmp_path / "no-ckpt"
    code, err = _run(["export", missing, "--out", tmp_path / "m"], capsys)
    assert code == 2
    assert err.startswith(f"Error: Invalid value for 'CKPT': directory not found: {str(missing)!r}; expected a checkpoint folder written by milmer train")
    empty = tmp_path / "empty-ckpt"
    empty.mkdir()
    code, err = _run(["export", empty, "--out", tmp_path / "m"], capsys)
    assert code == 2
    error = err.splitlines()[-1]  # after the "[export] loading" progress line
    assert error.startswith(f"Error: Invalid value for 'CKPT': {str(empty)!r} needs the files of a Milmer checkpoint (")
    assert "), got a folder without " in error
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("1")
    code, err = _run(["export", empty, "--out", taken], capsys)
    assert (code, err) == (
        2, f"Error: Invalid value for '--out': folder {str(taken)!r} is not empty; choose another folder or pass --overwrite.\n"
    )
    code, err = _run(["export", empty, "--out", tmp_path / "m", "--int8", "fast"], capsys)
    assert code == 2 and "Invalid value for '--int8': expected one of 'static', 'dynamic', None, got 'fast'." in err
    code, err = _run(["export", empty, "--out", tmp_path / "m", "--workspace-gb", "2000"], capsys)
    assert code == 2 and "Invalid value for '--workspace-gb': expected a number in (0, 1024), got 2000.0." in err
    assert not (tmp_path / "m").exists()


def test_export_triton_names_the_model_argument(tmp_path, capsys):
    missing = tmp_path / "no-model"
    code, err = _run(["export-triton", missing, "--out", tmp_path / "repo"], capsys)
    assert code == 2
    assert err.startswith(f"Error: Invalid value for 'MODEL': directory not found: {str(missing)!r}; ")


def test_bench_auto_keeps_its_main_tables_on_onnx_runtime_on_a_cpu(capsys):
    """bench --backend auto: one rule with or without --model. Where milmer-infer would take
    OpenVINO (or passes it over for int8), bench's stage/throughput/end-to-end tables use ONNX
    Runtime and say why; OpenVINO is measured side by side. GPU choices are left alone."""
    from milmer.app.bench import BENCH_OPENVINO_NOTE, _bench_choice, _resolve_auto
    from milmer.runtime.backends.openvino import OpenVinoRunner
    from milmer.runtime.backends.registry import Choice

    if OpenVinoRunner.unavailable_reason("m", device="cpu", precision="fp32") is not None:
        pytest.skip("OpenVINO cannot run here")
    skipped_trt = (("trt", "cuda"), "TensorRT is not available")
    picked_ov = Choice("openvino", "cpu", (skipped_trt,))
    assert _bench_choice(picked_ov, "auto") == Choice("ort", "cpu", (skipped_trt, (("openvino", "cpu"), BENCH_OPENVINO_NOTE)))
    passed_ov = Choice("ort", "cpu", (skipped_trt, (("openvino", "cpu"), "auto leaves int8 graphs to ONNX Runtime")))
    assert _bench_choice(passed_ov, "auto").skipped[-1] == (("openvino", "cpu"), BENCH_OPENVINO_NOTE)
    assert _bench_choice(picked_ov, "openvino") is picked_ov  # asked for by name
    on_gpu = Choice("trt", "cuda")
    assert _bench_choice(on_gpu, "auto") is on_gpu
    assert _resolve_auto(None, "auto", "auto", "fp32") == ("ort", "cpu")
    note = capsys.readouterr().err
    assert note.startswith("Using ONNX Runtime on cpu (--backend auto --device auto)")
    assert "skipped openvino on cpu: bench's stage, throughput and end-to-end tables use ONNX Runtime" in note
    assert "OpenVINO runs in the side-by-side table (--backend openvino for its own tables)." in note  # printed whole
