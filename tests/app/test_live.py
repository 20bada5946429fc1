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
    assert "Invalid value for '--eeg-stream': no LSL stream with name 'no-such-eeg' answered within 0.3 s" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--hop", "0"], "Invalid value for '--hop': expected seconds > 0, got 0.0."),
        (["--out", "x.json"], "Invalid value for '--out': expected a FILE.jsonl, got 'x.json'."),
        (["--eeg-unit", "uv"], "Invalid value for '--eeg-unit'"),
        (["--backend", "tensorrtt"], "Invalid value for '--backend'"),
    ],
)
def test_bad_options_exit_2(tiny_model, capsys, extra, message):
    code, err = _run(["live", "--model", tiny_model, "--eeg-stream", "x", "--video", "0", *extra], capsys)
    assert code == 2
    assert message in err
