"""`milmer live` at the command line: setup errors exit 2 with the way forward, before loading anything."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from milmer.app.cli import main


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny model directory of tests/runtime/backends/tiny_graphs.py."""
    spec = importlib.util.spec_from_file_location("milmer_tests_live_tiny", Path(__file__).parents[1] / "runtime" / "backends" / "tiny_graphs.py")
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    return tiny.write_model_dir(tmp_path_factory.mktemp("model") / "tiny", tiny.tiny_spec())


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_missing_lsl_library_names_the_live_extra(tiny_model, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pylsl", None)  # import pylsl -> ImportError
    code, err = _run(["live", "--model", tiny_model, "--eeg-stream", "x", "--video", "0"], capsys)
    assert code == 2
    assert "needs the Lab Streaming Layer library pylsl" in err and "pip install 'milmer[live]'" in err


def test_a_stream_that_is_not_there_is_named_with_those_that_are(tiny_model, capsys):
    pytest.importorskip("pylsl")
    code, err = _run(["live", "--model", tiny_model, "--eeg-stream", "no-such-eeg", "--video", "0", "--wait", "0.3"], capsys)
    assert code == 2
    assert "Invalid value for '--eeg-stream': expected one of the stream names on the network (" in err
    assert "got 'no-such-eeg'; no LSL stream with name 'no-such-eeg' answered within 0.3 s" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--hop", "0"], "Invalid value for '--hop': expected seconds > 0, got 0.0; e.g. 3."),
        (["--hop", "-1"], "Invalid value for '--hop': expected seconds > 0, got -1.0; e.g. 3."),
        (["--calibration", "0"], "Invalid value for '--calibration': expected seconds > 0, got 0.0; e.g. 30."),
        (["--max-delay", "-2"], "Invalid value for '--max-delay': expected seconds > 0, got -2.0; e.g. 2."),
        (["--stale", "0"], "Invalid value for '--stale': expected seconds > 0, got 0.0; e.g. 0.5."),
        (["--max-latency", "-1"], "Invalid value for '--max-latency': expected seconds > 0, got -1.0; e.g. 5."),
        (["--duration", "-5"], "Invalid value for '--duration': expected seconds > 0, got -5.0; e.g. 60."),
        (["--out", "/nonexistent-milmer-dir/x.jsonl"], "Invalid value for '--out': directory not found: '/nonexistent-milmer-dir'; create it or give a FILE.jsonl"),
        (["--out", "x.json"], "Invalid value for '--out': unsupported file type '.json' for 'x.json'; expected one of '.jsonl'."),
        (["--eeg-unit", "uv"], "Invalid value for '--eeg-unit'"),
        (["--backend", "tensorrtt"], "Invalid value for '--backend'"),
    ],
)
def test_bad_options_exit_2(tiny_model, capsys, extra, message):
    code, err = _run(["live", "--model", tiny_model, "--eeg-stream", "x", "--video", "0", *extra], capsys)
    assert code == 2
    assert message in err


def test_unwritable_out_is_refused_before_the_lsl_library_or_model(tiny_model, tmp_path, monkeypatch, capsys):
    """An --out folder that does not exist exits 2 naming --out, before the LSL library is looked
    for and before --record is created (nothing partial)."""
    monkeypatch.setitem(sys.modules, "pylsl", None)  # reaching import_pylsl would exit 2 naming the extra
    record = tmp_path / "rec"
    code, err = _run(["live", "--model", tiny_model, "--eeg-stream", "x", "--video", "0",
                      "--out", tmp_path / "nodir" / "x.jsonl", "--record", record], capsys)
    assert code == 2
    assert "Invalid value for '--out': directory not found: " in err and "create it or give a FILE.jsonl" in err
    assert not record.exists()


def test_record_that_is_a_file_is_refused(tiny_model, tmp_path, capsys):
    f = tmp_path / "rec"
    f.write_text("x")
    code, err = _run(["live", "--model", tiny_model, "--eeg-stream", "x", "--video", "0", "--record", f], capsys)
    assert code == 2
    assert f"Invalid value for '--record': '{f}' exists and is not a folder; give a new folder." in err
