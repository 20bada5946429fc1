"""``milmer serve`` at the command line, without a server: its exit code when the stop was not clean."""

from __future__ import annotations

from milmer.runtime.serve.supervisor import StopReport


def test_serve_exits_1_when_the_stop_was_not_clean(monkeypatch, tmp_path, capsys):
    import milmer.runtime.serve.server as server
    from milmer.app.cli import main

    report = StopReport(clean=False, problems=["tritonserver did not exit cleanly (killed by SIGSEGV, in-flight inferences: 2)"])
    monkeypatch.setattr(server, "serve", lambda *args, **kwargs: report)
    assert main(["serve", "--model", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == (
        "Error: the server did not stop cleanly: tritonserver did not exit cleanly (killed by SIGSEGV, in-flight inferences: 2)."
    )
