"""``milmer-infer``: option checks, the demo-model pointer, and the command end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from milmer.runtime.check import MilmerInputError
from milmer.app.infer import main as infer_main
from milmer.app.infer import check_infer_options, run_infer_cli
from milmer.runtime.demo_model import (
    BENCH_MODEL_MARKER,
    BENCH_MODEL_WARNING,
    DEMO_POINTER,
    DEMO_WARNING,
    default_model_dir,
    milmer_home,
    record_demo_model,
)

NO_MODEL = (
    "No model given (--model) and no demo model was made; make one with `milmer demo --out DIR` "
    "(a demo model trained on synthetic data) or `milmer export CKPT --out DIR` (from a trained "
    "checkpoint), then pass --model DIR."
)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty MILMER_HOME for every test."""
    path = tmp_path / "home"
    monkeypatch.setenv("MILMER_HOME", str(path))
    return path


def test_milmer_home_default(monkeypatch, tmp_path):
    monkeypatch.delenv("MILMER_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert milmer_home() == tmp_path / ".cache" / "milmer"


def test_no_demo_model(home):
    with pytest.raises(MilmerInputError, match=f"^{re.escape(NO_MODEL)}$"):
        default_model_dir()


def test_record_and_find_demo_model(home, tmp_path):
    model = tmp_path / "demo-model"
    model.mkdir()
    pointer = record_demo_model(model)
    assert pointer == home / DEMO_POINTER
    assert json.loads(pointer.read_text()) == {"model_dir": str(model.resolve())}
    assert default_model_dir() == model.resolve()
    model.rmdir()
    with pytest.raises(MilmerInputError, match=r"the demo model recorded in .* is gone .*milmer demo --out DIR"):
        default_model_dir()
    pointer.write_text("{not json")
    with pytest.raises(MilmerInputError, match=r"demo-model record .* is unreadable .*milmer export CKPT --out DIR"):
        default_model_dir()
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'path': directory not found: '.*missing'; give a model directory\.$"):
        record_demo_model(tmp_path / "missing")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"backend": "tensorrtt"}, "Invalid value for '--backend': expected one of 'auto', 'ort', 'trt', 'openvino', got 'tensorrtt'."),
        ({"device": "gpu"}, "Invalid value for '--device': expected one of 'auto', 'cpu', 'cuda', 'tensorrt', got 'gpu'."),
        ({"precision": "bfloat16"}, "Invalid value for '--precision': expected one of 'auto', 'fp32', 'bf16', 'fp16', 'int8', got 'bfloat16'."),
        ({"batch": 0}, "Invalid value for '--batch': expected an integer >= 1, got 0."),
        ({"batch": True}, "Invalid value for '--batch': expected an integer >= 1, got True."),
    ],
)
def test_bad_options(options, message):
    kwargs = {"backend": "auto", "device": "cpu", "precision": "fp32", "batch": 8, **options}
    with pytest.raises(MilmerInputError, match=f"^{re.escape(message)}$"):
        check_infer_options(**kwargs)


def test_cheap_checks_come_first(tmp_path, recording):
    """Options, --out, the input files, the model's location, then the model itself."""
    missing = tmp_path / "nothing"
    kwargs = dict(video=missing / "v.avi", eeg=missing / "e.edf", model=None)
    with pytest.raises(MilmerInputError, match="'--backend'"):
        run_infer_cli(**kwargs, backend="tensorrtt", out=tmp_path / "p.txt")
    with pytest.raises(MilmerInputError, match="'--out': unsupported file type '.txt'"):
        run_infer_cli(**kwargs, out=tmp_path / "p.txt")
    # An output whose folder is a file: refused here, before the inputs are read, not after the run.
    (tmp_path / "F").write_text("a file")
    with pytest.raises(MilmerInputError, match=re.escape(
        f"Invalid value for '--out': cannot create {str(tmp_path / 'F' / 'x.json')!r}: {str(tmp_path / 'F')!r} is a "
        "file, not a folder; give a FILE.json or FILE.csv in a writable folder."
    )):
        run_infer_cli(**kwargs, out=tmp_path / "F" / "x.json")
    with pytest.raises(MilmerInputError, match=re.escape(
        f"Invalid value for '--faces': cannot create {str(tmp_path / 'F' / 'f.png')!r}: {str(tmp_path / 'F')!r} is a "
        "file, not a folder; give a FILE.png in a writable folder."
    )):
        run_infer_cli(video=recording[0], eeg=recording[1], model=None, faces=tmp_path / "F" / "f.png")
    with pytest.raises(MilmerInputError, match="'video': file not found"):
        run_infer_cli(**kwargs, out=tmp_path / "p.json")
    with pytest.raises(MilmerInputError, match="^No model given"):
        run_infer_cli(video=recording[0], eeg=recording[1], model=None, out=tmp_path / "p.json")
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid value for '--model': directory not found: '.*m'; a model directory "
        r"holds spec\.json, swin\.onnx and fusion\.onnx .*make one with: milmer export CKPT --out DIR, or `milmer demo`",
    ):
        run_infer_cli(video=recording[0], eeg=recording[1], model=missing / "m")


# --------------------------------------------------------------------------- end to end
def _run(capsys, argv):
    code = infer_main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _model_with_provenance(tiny_graphs, folder: Path, provenance: str | None) -> Path:
    """The tiny model whose spec (spec.json and both graphs) states ``provenance``; None writes a
    spec.json without the key, as before the field existed."""
    model = tiny_graphs.write_model_dir(folder, tiny_graphs.tiny_spec().replace(provenance=provenance))
    if provenance is None:
        doc = json.loads((model / "spec.json").read_text())
        del doc["provenance"]
        (model / "spec.json").write_text(json.dumps(doc))
    return model


def test_cli_end_to_end_json_with_the_demo_model(capsys, tiny_graphs, recording, tmp_path):
    video, eeg = recording
    demo_model = _model_with_provenance(tiny_graphs, tmp_path / "demo", "demo")
    record_demo_model(demo_model)
    out = tmp_path / "pred.json"
    code, stdout, stderr = _run(capsys, [video, eeg, "--out", out, "--batch", "3", "--device", "cpu"])
    assert code == 0, stderr
    assert "Predictions per 3 s window" in stdout and "real-time factor" in stdout
    assert f"Wrote 4 predictions to {out}" in stdout.replace("\n", "")
    doc = json.loads(out.read_text())
    assert doc["model"]["dir"] == str(demo_model.resolve())
    # The demo model says so: one line on stderr, above the table, in the JSON.
    assert DEMO_WARNING in stderr.replace("\n", "")
    assert stderr.count("DEMO") == 1
    assert "DEMO MODEL, trained on synthetic data: not a prediction about this recording" in stdout
    assert (doc["model"]["demo"], doc["model"]["provenance"], doc["model"]["provenance_source"]) == (True, "demo", "spec")
    assert [w["start"] for w in doc["windows"]] == [0.0, 3.0, 6.0, 9.0]
    assert [w["faces_found"] for w in doc["windows"]] == [10, 7, 10, 10]
    assert doc["settings"]["batch"] == 3 and doc["summary"]["n_batches"] == 2
    assert doc["summary"]["coverage"]["n_covered"] == 4


def test_cli_csv_quiet_with_unequal_lengths(capsys, tiny_model, recording, short_video, tmp_path):
    _, eeg = recording
    out = tmp_path / "pred.csv"
    code, stdout, stderr = _run(capsys, [short_video, eeg, "--model", tiny_model, "--out", out, "--quiet"])
    assert code == 0, stderr
    assert "Predictions per" not in stdout and "real-time factor" in stdout
    assert re.search(r"Warning: The video \(8\.0 s, offset \+0\.0 s\) and the EEG \(12\.0 s\) differ", stderr)
    assert "dropped 2 windows (6 s) at the end" in stderr.replace("\n", "")
    lines = out.read_text().splitlines()
    assert lines[0] == (
        "start,end,label,p_HAHV,p_HALV,p_LAHV,p_LALV,selected,mil_weights,faces_found,quality,demo_model,video_start,alignment"
    )
    assert all(line.split(",")[-3] == "false" for line in lines[1:])
    assert all(line.endswith(",+0.000 s (assumed)") for line in lines[1:])
    assert "DEMO" not in stdout + stderr
    assert [line.split(",")[:2] for line in lines[1:]] == [["0.000", "3.000"], ["3.000", "6.000"]]


def _corrupt_edf(path: Path) -> Path:
    path.write_bytes(b"0       this is not an EDF header" + bytes(300))
    return path


@pytest.mark.parametrize(
    "case, pattern",
    [
        ("missing video", r"Error: Invalid value for 'video': file not found"),
        ("missing eeg", r"Error: Invalid value for 'eeg': file not found"),
        ("corrupt eeg", r"Error: Invalid value for 'eeg': the \.edf file .* could not be read"),
        ("bad backend", r"Error: Invalid value for '--backend': expected one of 'auto', 'ort', 'trt', 'openvino', got 'tensorrtt'\."),
        ("bad batch", r"Error: Invalid value for '--batch': expected an integer >= 1, got 0\."),
        ("precision not exported", r"Error: Invalid value for '--precision': expected one of the precisions exported to .* \('fp32'\), "
         r"got 'int8'; 'int8' needs swin\.int8\.onnx, fusion\.int8\.onnx; export it with: milmer export CKPT --out DIR --int8 static\."),
        ("trt without device", r"Error: No backend can run .*swin\.onnx.* with --backend trt --device auto --precision fp32: "
         r"trt on cuda: TensorRT is not available"),
        ("no model", rf"Error: {re.escape(NO_MODEL)}"),
        ("bad out", r"Error: Invalid value for '--out': unsupported file type '\.xlsx'"),
        ("out under a file", r"Error: Invalid value for '--out': cannot create '.*F/pred\.json': '.*F' is a file, not a folder"),
        ("offset out of range", r"Error: Invalid value for '--offset': got 100 s, which puts the video \(12\.0 s\) beside no 3 s "
         r"EEG window \(EEG 12\.0 s\); offsets from about -9\.0 to \+9\.0 s cover at least one window; --offset is the "
         r"video time \(s\) at EEG t = 0, or leave it out to use the recordings' evidence\.$"),
    ],
)
def test_cli_bad_input_exits_2_and_leaves_no_file(capsys, tiny_model, recording, tmp_path, case, pattern):
    video, eeg = recording
    out = tmp_path / "out" / "pred.json"
    model = ["--model", tiny_model]
    argv = {
        "missing video": [tmp_path / "none.avi", eeg, *model],
        "missing eeg": [video, tmp_path / "none.edf", *model],
        "corrupt eeg": [video, _corrupt_edf(tmp_path / "bad.edf"), *model],
        "bad backend": [video, eeg, *model, "--backend", "tensorrtt"],
        "bad batch": [video, eeg, *model, "--batch", "0"],
        "precision not exported": [video, eeg, *model, "--precision", "int8"],
        "trt without device": [video, eeg, *model, "--backend", "trt"],  # the README's line, minus fp16
        "no model": [video, eeg],
        "bad out": [video, eeg, *model],
        "out under a file": [video, eeg, *model],
        "offset out of range": [video, eeg, *model, "--offset", "100"],
    }[case]
    if case == "out under a file":
        (tmp_path / "F").write_text("a file")
        out = tmp_path / "F" / "pred.json"
    argv += ["--out", out.with_suffix(".xlsx") if case == "bad out" else out]
    code, stdout, stderr = _run(capsys, argv)
    assert code == 2, (stdout, stderr)
    assert re.search(pattern, stderr.replace("\n", "")), stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_device_defaults_to_auto_with_a_note(capsys, tiny_model, recording, monkeypatch):
    """No --device: the best backend here is picked, said in one line with why better ones were
    skipped, and handed to the pipeline as a concrete backend and device."""
    import sys as _sys

    from milmer.runtime import pipeline

    monkeypatch.setitem(_sys.modules, "tensorrt", None)  # as on this CI machine, whatever is installed
    monkeypatch.setitem(_sys.modules, "openvino", None)  # the ONNX Runtime fallback (the Python 3.10 env)
    seen = {}

    class Stop(Exception):
        pass

    def fake_pipeline(model, **kwargs):
        seen.update(kwargs, precision=model.precision)
        raise Stop  # the choice is what this test is about, not the inference

    monkeypatch.setattr(pipeline, "Pipeline", fake_pipeline)
    video, eeg = recording
    with pytest.raises(Stop):
        run_infer_cli(video=video, eeg=eeg, model=tiny_model)
    assert seen == {"backend": "ort", "device": "cpu", "batch": None, "precision": "fp32", "backend_options": {}}
    note = capsys.readouterr().err.replace("\n", "")
    assert "Using ONNX Runtime on cpu (--backend auto --device auto); skipped trt on cuda: TensorRT is not available" in note
    assert "| skipped ort on cuda: 'cuda' needs onnxruntime's CUDAExecutionProvider" in note
    with pytest.raises(Stop):
        run_infer_cli(video=video, eeg=eeg, model=tiny_model, backend="ort", device="cpu")
    assert capsys.readouterr().err == ""  # nothing was chosen for the user: no note
    help_text = _run(capsys, ["--help"])[1].replace("\n", " ")
    assert "auto, cpu, cuda, tensorrt" in " ".join(help_text.replace("│", " ").split())


def test_modules_import_without_heavy_libraries():
    import subprocess
    import sys

    script = (
        "import sys, json\n"
        "import milmer.runtime.pipeline, milmer.app.infer, milmer.runtime.report\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    heavy = {"torch", "mne", "cv2", "mediapipe", "onnxruntime", "onnx", "matplotlib", "sklearn", "rich"}
    assert not heavy & loaded, sorted(heavy & loaded)


def test_demo_warning_text_is_pinned():
    assert DEMO_WARNING == (
        "Warning: this is the DEMO model (trained by `milmer demo` on synthetic data): its predictions say "
        "nothing about this recording; pass --model DIR with a model exported from a checkpoint trained on real data."
    )


def test_ica_non_convergence_is_one_warning_line(capsys, tiny_model, recording, monkeypatch):
    """FastICA stopping at max_iter shows as one stderr line and a summary row, not only in JSON."""
    import milmer.runtime.pipeline as pipeline_mod

    video, eeg = recording

    original = pipeline_mod.Pipeline.predict

    def predict(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        result.stats.eeg_info["ica_converged"] = False
        return result

    monkeypatch.setattr(pipeline_mod.Pipeline, "predict", predict)
    code, stdout, stderr = _run(capsys, [video, eeg, "--model", tiny_model, "--device", "cpu", "--quiet"])
    assert code == 0, stderr
    warning = (
        "Warning: ICA (Picard) did not converge: the eye-artefact removal may be incomplete "
        "(ica_converged: false in the report); check the EEG's quality, e.g. with `milmer preprocess` and its eeg_ica.png."
    )
    assert warning in stderr.replace("\n", "")
    assert stderr.count("did not converge") == 1


def test_a_benchmark_model_is_flagged(capsys, tiny_graphs, recording, tmp_path):
    """A model milmer bench built (random weights, spec provenance 'benchmark'): one warning line,
    even under --quiet, so nobody reads its predictions as real. One exported before specs carried
    provenance is recognised by the marker file milmer bench wrote then; without it: no warning."""
    video, eeg = recording
    argv = [video, eeg, "--device", "cpu", "--quiet", "--model"]
    model = _model_with_provenance(tiny_graphs, tmp_path / "bench", "benchmark")
    code, _, stderr = _run(capsys, [*argv, model])
    assert code == 0, stderr
    assert BENCH_MODEL_WARNING in stderr.replace("\n", "") and stderr.count("BENCHMARK model") == 1
    legacy = _model_with_provenance(tiny_graphs, tmp_path / "legacy", None)
    (legacy / BENCH_MODEL_MARKER).write_text('{"tiny": true, "seed": 0}\n')
    code, stdout, stderr = _run(capsys, [*argv, legacy])
    assert code == 0 and stderr.count("BENCHMARK model") == 1, stderr
    assert "(inferred: the spec predates provenance)" in stdout
    (legacy / BENCH_MODEL_MARKER).unlink()
    code, _, stderr = _run(capsys, [*argv, legacy])
    assert code == 0 and "BENCHMARK" not in stderr


def test_warning_notes_are_one_line_each_on_stderr_without_mne_log(capfd, tiny_model, recording, gap_eeg):
    """A NaN dropout: its warning notes are stderr lines (even under --quiet), MNE's log is not."""
    video, _ = recording
    code = infer_main([str(video), str(gap_eeg), "--model", str(tiny_model), "--device", "cpu", "--quiet"])
    out, err = capfd.readouterr()
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("Warning: ")]
    assert lines[:2] == [
        "Warning: 1 NaN run(s) (dropouts) treated as recording gaps (BAD_ACQ_SKIP): 4.20-5.00 s",
        "Warning: dropped 1 window(s) that cross a recording gap (EEG starts 3 s)",
    ]
    assert not re.search(r"\d+ of \d+ \([\d.]+%\) samples", out + err)


def test_the_request_checks_backend_device_and_precision_once(tiny_model, recording, monkeypatch):
    """InferRequest.parse is the one place milmer-infer's --backend, --device and --precision are
    checked; the model folder, the precision plan and the backend choice below trust them."""
    from collections import Counter

    from milmer.app.infer import InferRequest
    from milmer.runtime import choices, model_dir, precision, scoring
    from milmer.runtime.backends import base, registry
    from milmer.runtime.check import check_option

    calls: Counter[str] = Counter()
    for module in (choices, scoring, precision, model_dir, registry, base):
        def counted(name, value, allowed, _module=module.__name__.rsplit(".", 1)[-1]):
            calls[f"{_module}:{name}"] += 1
            return check_option(name, value, allowed)

        monkeypatch.setattr(module, "check_option", counted, raising=False)
    request = InferRequest.parse(
        video=recording[0], eeg=recording[1], model=tiny_model, backend="ort", device="cpu", precision="fp32", quiet=True
    )
    assert (request.choice.backend, request.choice.device, request.bundle.precision) == ("ort", "cpu", "fp32")
    assert calls == {"choices:--backend": 1, "choices:--device": 1, "choices:--precision": 1}
