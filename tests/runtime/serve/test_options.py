"""Checks that need no running server: manifest, server URL, server options, environment, CLI."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.app.infer import main as infer_main
from milmer.runtime.serve.client import parse_server_url
from milmer.runtime.serve.protocol import bag_tensors
from milmer.runtime.serve.server import ServeConfig, check_serve_environment, python_library_dir
from milmer.runtime.serve.study import read_manifest


def test_bag_tensors_follow_the_spec(spec):
    inputs, outputs = bag_tensors(spec)
    assert [(t.name, t.shape, t.triton_dtype) for t in inputs] == [
        ("eeg", (32, 384), "FP32"),
        ("frames", (10, 224, 224, 3), "UINT8"),
    ]
    assert [(t.name, t.shape, t.triton_dtype) for t in outputs] == [
        ("logits", (4,), "FP32"),
        ("probabilities", (4,), "FP32"),
        ("mil_weights", (10,), "FP32"),
        ("selected", (3,), "INT64"),
    ]


@pytest.mark.parametrize(
    ("url", "address"),
    [("http://127.0.0.1:8000", "127.0.0.1:8000"), ("localhost:9000", "localhost:9000"), ("http://[::1]:8000/", "[::1]:8000")],
)
def test_server_url(url, address):
    assert parse_server_url(url) == address


@pytest.mark.parametrize("url", ["grpc://127.0.0.1:8001", "http://127.0.0.1", "http://host:port", "http://h:8000/v2", ""])
def test_bad_server_url_names_the_option(url):
    with pytest.raises(MilmerInputError, match=r"Invalid value for '--server': expected http://HOST:PORT .*got"):
        parse_server_url(url)


def test_serve_config_checks_ports_and_batcher():
    assert ServeConfig().urls() == {
        "http": "http://127.0.0.1:8000",
        "grpc": "grpc://127.0.0.1:8001",
        "metrics": "http://127.0.0.1:8002/metrics",
    }
    with pytest.raises(MilmerInputError, match=r"expected three different ports, got \(8000, 8000, 8002\)"):
        ServeConfig(grpc_port=8000)
    with pytest.raises(MilmerInputError, match=r"Invalid value for '--http-port': expected a port 1-65535, got 70000"):
        ServeConfig(http_port=70000)
    with pytest.raises(MilmerInputError, match=r"Invalid value for '--max-batch': expected an integer >= 1, got 0"):
        ServeConfig(max_batch=0)
    with pytest.raises(MilmerInputError, match=r"Invalid value for '--max-queue-delay-us': expected an integer >= 0, got -1"):
        ServeConfig(max_queue_delay_us=-1)


def test_serve_environment_check(monkeypatch):
    """Refuses exactly the environments where PyTriton would fail or corrupt tensors."""
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/x")
    try:
        import pytriton  # noqa: F401
    except ImportError:
        with pytest.raises(MilmerInputError, match=r"needs NVIDIA PyTriton \(nvidia-pytriton\), not installed here"):
            check_serve_environment()
        return
    if int(np.__version__.split(".")[0]) >= 2:
        with pytest.raises(MilmerInputError, match=rf"needs numpy<2, got numpy {np.__version__}: .*corrupt every tensor"):
            check_serve_environment()
        return
    check_serve_environment()
    assert os.environ["LD_LIBRARY_PATH"] == f"{python_library_dir()}{os.pathsep}/opt/x"


def test_infer_refuses_model_and_server_together(tmp_path, capsys):
    code = infer_main(["v.mp4", "e.edf", "--model", str(tmp_path), "--server", "http://127.0.0.1:1"])
    assert code == 2
    assert "--model and --server exclude each other" in capsys.readouterr().err


def test_no_server_answering_is_a_usage_error(recording, capsys):
    pytest.importorskip("tritonclient.http", reason="needs tritonclient (serve extra)")
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    video, eeg = recording
    assert infer_main([str(video), str(eeg), "--server", f"http://127.0.0.1:{port}", "--timeout", "1"]) == 2
    assert f"Invalid value for '--server': no Triton server answers at 'http://127.0.0.1:{port}' (ConnectionRefusedError" in capsys.readouterr().err


def test_manifest(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("id,video,eeg,offset\na1,v/a.mp4,e/a.edf,1.5\nb_2,/abs/b.mp4,/abs/b.edf,\n")
    entries = read_manifest(path)
    assert [(e.id, e.video, e.eeg, e.offset_s, e.baseline_s) for e in entries] == [
        ("a1", tmp_path / "v/a.mp4", tmp_path / "e/a.edf", 1.5, 0.0),
        ("b_2", Path("/abs/b.mp4"), Path("/abs/b.edf"), 0.0, 0.0),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("video,eeg\nv.mp4,e.edf\n", r"expected columns id, video, eeg \(and optionally offset, baseline\), got \['video', 'eeg'\]"),
        ("id,video,eeg,fps\n", r"got \['id', 'video', 'eeg', 'fps'\]"),
        ("id,video,eeg\n", r"no recordings listed"),
        ("id,video,eeg\na b,v,e\n", r"row 2, column 'id': expected a letter or digit first, then letters, digits, '\.', '_' or '-' .*got 'a b'"),
        ("id,video,eeg\n_failures,v,e\n", r"row 2, column 'id': expected a letter or digit first, .*got '_failures'"),
        ("id,video,eeg\na,v,e\na,v,e\n", r"row 3, column 'id': 'a' appears twice"),
        ("id,video,eeg\na,,e\n", r"row 2, column 'video' is empty"),
        ("id,video,eeg,offset\na,v,e,soon\n", r"row 2, column 'offset': expected a number of seconds, got 'soon'"),
    ],
)
def test_bad_manifest_names_row_and_column(tmp_path, text, message):
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(MilmerInputError, match=message):
        read_manifest(path)


@pytest.fixture()
def silent_port():
    """A loopback port that accepts connections and never answers (bounded: closed after the test)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


@pytest.mark.parametrize("command", ["infer", "score-study"])
def test_timeout_bounds_the_wait_for_a_server_that_never_answers(command, silent_port, recording, tmp_path, capsys):
    pytest.importorskip("tritonclient.http", reason="needs tritonclient (serve extra)")
    import time

    from milmer.app.cli import main

    video, eeg = recording
    url = f"http://127.0.0.1:{silent_port}"
    if command == "infer":
        argv = ["infer", str(video), str(eeg), "--server", url, "--timeout", "1.5"]
    else:
        manifest = tmp_path / "m.csv"
        manifest.write_text(f"id,video,eeg\na,{video},{eeg}\n")
        argv = ["score-study", str(manifest), "--server", url, "--out", str(tmp_path / "out"), "--timeout", "1.5"]
    tick = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - tick < 30  # was 60 s per attempt without --timeout
    assert f"no Triton server answers at '{url}' (no answer within 1.5 s (--timeout))" in capsys.readouterr().err


def test_timeout_applies_to_server_only(recording, capsys):
    video, eeg = recording
    assert infer_main([str(video), str(eeg), "--timeout", "5"]) == 2
    assert "Invalid value for '--timeout': it applies to --server only, got 5.0 without --server." in capsys.readouterr().err


def test_faults_outside_milmer_are_named_not_called_bugs(capsys):
    import errno

    import typer

    from milmer.app.errors import handle_errors, run_app
    from milmer.runtime.serve.client import ServerConnectionError

    app = typer.Typer()

    @app.command()
    @handle_errors
    def fail(kind: str) -> None:
        if kind == "lost":
            raise ServerConnectionError("lost the connection to the server at http://h:1 (HTTPConnectionClosed: connection closed.)")
        raise OSError(errno.ENOSPC, "No space left on device", "/out/a.json")

    assert run_app(app, ["lost"]) == 1
    assert capsys.readouterr().err.strip() == "Error: lost the connection to the server at http://h:1 (HTTPConnectionClosed: connection closed.)"
    assert run_app(app, ["full"]) == 1
    assert capsys.readouterr().err.strip() == "Error: no space left on device writing /out/a.json; free some space and rerun."
