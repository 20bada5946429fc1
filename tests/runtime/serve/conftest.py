"""A real ``milmer serve`` (PyTriton + tritonserver) on free loopback ports, for the serve tests.

The served model is the tiny hand-built pair of ``backends/tiny_graphs.py`` with the opencv-haar
face detector in its spec, so clients can preprocess the test recording end to end. The server
is started once per test session as a subprocess and must stop cleanly (exit 0) at the end.

PyTriton needs numpy<2 (see milmer.runtime.serve.server): tests that start a server skip with
that reason elsewhere; CI runs them in the serve environment (.ci/run).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest


def serve_skip_reason() -> str | None:
    """Why a real server cannot run here, or None."""
    try:
        import pytriton  # noqa: F401
        import tritonclient.http  # noqa: F401
    except ImportError as err:
        return f"needs the serve extra (nvidia-pytriton, tritonclient): {err}"
    if int(np.__version__.split(".")[0]) >= 2:
        return f"PyTriton 0.7 needs numpy<2, this environment has numpy {np.__version__} (CI runs these in .venv-serve)"
    return None


needs_server = pytest.mark.skipif(serve_skip_reason() is not None, reason=str(serve_skip_reason()))


def free_ports(n: int) -> list[int]:
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="session")
def haar_model(tiny_graphs, tmp_path_factory) -> Path:
    """The tiny model with the opencv-haar detector in its spec (the default detector needs a model
    file that is not in the tree yet)."""
    spec = tiny_graphs.tiny_spec()
    spec = spec.replace(face=dataclasses.replace(spec.face, detector="opencv-haar"))
    return tiny_graphs.write_model_dir(tmp_path_factory.mktemp("served") / "tiny-haar", spec)


class ServerProcess:
    def __init__(self, model: Path, log: Path, *, max_batch: int = 8, delay_us: int = 200_000) -> None:
        self.http_port, self.grpc_port, self.metrics_port = free_ports(3)
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.log = log
        cmd = [
            sys.executable, "-m", "milmer.app.cli", "serve", "--model", str(model),
            "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
            "--metrics-port", str(self.metrics_port), "--max-batch", str(max_batch),
            "--max-queue-delay-us", str(delay_us),
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self._log_handle = log.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self._log_handle, stderr=subprocess.STDOUT, env=env)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        import tritonclient.http as httpclient

        client = httpclient.InferenceServerClient(url=f"127.0.0.1:{self.http_port}")
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"milmer serve exited with {self.proc.returncode}:\n{self.output()[-4000:]}")
                try:
                    if client.is_model_ready("milmer") and "Serving" in self.output():
                        return
                except Exception:  # noqa: BLE001 - not up yet
                    pass
                time.sleep(0.5)
        finally:
            client.close()
        self.stop()
        raise AssertionError(f"milmer serve not ready after {timeout_s} s:\n{self.output()[-4000:]}")

    def stop(self, timeout_s: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_handle.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server(haar_model, tmp_path_factory):
    """A running ``milmer serve`` of :func:`haar_model`: max 8 bags per batch, 200 ms queue delay
    (long enough for concurrent test clients to share batches on a busy 2-core machine)."""
    reason = serve_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    proc = ServerProcess(haar_model, tmp_path_factory.mktemp("serve-log") / "serve.log")
    proc.wait_ready()
    yield proc
    code = proc.stop()
    assert code == 0, f"milmer serve did not stop cleanly (exit {code}):\n{proc.output()[-4000:]}"
    assert "Server stopped (drained in" in proc.output()


@pytest.fixture(scope="session")
def start_server(haar_model):
    """``start_server(log_path, **options) -> ServerProcess`` of :func:`haar_model`, not yet ready
    (for tests that need a server of their own: crashing it, stopping it)."""
    reason = serve_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    return lambda log, **options: ServerProcess(haar_model, log, **options)
