"""Clients wait out a server that is starting or restarting (runtime/serve/client.py): a refused or
dropped connection is tried again until --timeout; after it, a server that never answered is a
usage error (exit 2) and one that answered and went away is an external fault (exit 1). Fake
servers on loopback ports: no Triton needed."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("tritonclient.http", reason="needs tritonclient (serve extra)")

from milmer.runtime.check import MilmerInputError  # noqa: E402
from milmer.runtime.serve import client as client_module  # noqa: E402
from milmer.runtime.serve.client import RemoteScorer, ServerConnectionError, connect  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:  # closed at once: connections to it are refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Live(http.server.BaseHTTPRequestHandler):
    """Answers /v2/health/live with 200; anything else 404. Once ``server.vanish`` is set, the
    server closes itself after its first answer (it was there and went away)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200 if self.path == "/v2/health/live" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if getattr(self.server, "vanish", False):
            threading.Thread(target=self.server.shutdown, daemon=True).start()

    def log_message(self, *args) -> None:
        pass


def _serve_later(port: int, delay_s: float, *, vanish: bool = False) -> list:
    """A live-only HTTP server on ``port`` after ``delay_s``; the returned list receives it."""
    holder: list = []

    def run() -> None:
        time.sleep(delay_s)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Live)
        server.vanish = vanish
        holder.append(server)
        server.serve_forever(poll_interval=0.05)
        server.server_close()

    threading.Thread(target=run, daemon=True).start()
    return holder


def _stop(holder: list) -> None:
    for server in holder:
        server.shutdown()


def test_connect_waits_for_a_server_that_starts_within_the_timeout():
    port = _free_port()
    holder = _serve_later(port, 1.0)
    try:
        tick = time.monotonic()
        client = connect(f"http://127.0.0.1:{port}", timeout_s=15)
        client.close()
        assert 0.9 < time.monotonic() - tick < 10
    finally:
        _stop(holder)


def test_connect_refused_until_the_timeout_is_a_usage_error():
    port = _free_port()
    tick = time.monotonic()
    with pytest.raises(MilmerInputError, match=rf"no Triton server answers at 'http://127.0.0.1:{port}' \(ConnectionRefusedError"):
        connect(f"http://127.0.0.1:{port}", timeout_s=1.5)
    assert 1.4 < time.monotonic() - tick < 10  # it kept trying until --timeout, not longer


def test_a_server_that_answered_and_went_away_is_an_external_fault():
    port = _free_port()
    holder = _serve_later(port, 0.0, vanish=True)
    time.sleep(0.3)
    with pytest.raises(ServerConnectionError, match=rf"the server at http://127.0.0.1:{port} stopped answering"):
        RemoteScorer(f"http://127.0.0.1:{port}", timeout_s=1.5)
    _stop(holder)


class _Flaky:
    """A tritonclient stand-in whose infer drops the connection until ``drops`` calls were made
    (counted over every connection), then answers with zeros."""

    def __init__(self, drops: int, calls: list) -> None:
        self.drops, self.calls = drops, calls

    def infer(self, model_name, inputs, outputs=None):
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.drops:
            raise ConnectionResetError(104, "Connection reset by peer")
        n = inputs[0].shape()[0]
        shapes = {"logits": (n, 4), "probabilities": (n, 4), "mil_weights": (n, 10), "selected": (n, 3)}
        return type("Result", (), {"as_numpy": lambda self, name: np.zeros(shapes[name])})()

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("drops", "answered"), [(3, True), (10_000, False)])
def test_a_request_whose_connection_drops_is_retried_within_its_timeout(spec, monkeypatch, drops, answered):
    calls: list = []
    monkeypatch.setattr(client_module, "_client", lambda address, timeout_s: _Flaky(drops, calls))
    scorer = RemoteScorer.__new__(RemoteScorer)  # as connected: a live server, this spec
    scorer.url, scorer.model_name, scorer.timeout_s, scorer.spec = "http://127.0.0.1:1", "milmer", 1.0, spec
    scorer._client = _Flaky(drops, calls)
    eeg = np.zeros((2, spec.eeg.n_channels, spec.eeg.window_samples), np.float32)
    crops = np.zeros((2, spec.face.frames_per_window, spec.face.frame_size, spec.face.frame_size, 3), np.uint8)
    if answered:
        assert scorer.score_bags(eeg, crops)["probabilities"].shape == (2, 4)
        assert len(calls) == 4  # three drops, each followed by a new connection, then the answer
    else:
        with pytest.raises(ServerConnectionError, match="lost the connection .* Connection reset by peer"):
            scorer.score_bags(eeg, crops)
        assert 0.9 < calls[-1] - calls[0] < 1.5  # tried again until its timeout, not longer
