"""The commands' server options (``milmer-infer --server/--timeout``, ``milmer score-study``) and
how the commands report faults outside milmer, without a server (tests/app/serve: against one)."""

from __future__ import annotations

import pytest

from milmer.app.infer import main as infer_main


def test_infer_refuses_model_and_server_together(tmp_path, capsys):
    code = infer_main(["v.mp4", "e.edf", "--model", str(tmp_path), "--server", "http://127.0.0.1:1"])
    assert code == 2
    assert "'--model' and '--server' exclude each other" in capsys.readouterr().err


def test_no_server_answering_is_a_usage_error(recording, capsys):
    pytest.importorskip("tritonclient.http", reason="needs tritonclient (serve extra)")
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    video, eeg = recording
    assert infer_main([str(video), str(eeg), "--server", f"http://127.0.0.1:{port}", "--timeout", "1"]) == 2
    assert f"Invalid value for '--server': no Triton server answers at 'http://127.0.0.1:{port}' (ConnectionRefusedError" in capsys.readouterr().err


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
    assert "Invalid value for '--timeout': 5.0 needs --server (it applies to a server only), got no --server." in capsys.readouterr().err


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
