"""``milmer serve`` against hostile requests and shutdown, on one server of its own (this module
crashes it and stops it): ready means ready, a second server on the same ports is refused, the
request data is private to the serving user, NaN/Inf is not scored, a crashing request is followed
by a restart, and SIGTERM under load drains and leaves nothing behind. Tests run in file order;
the SIGTERM test ends the server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

NOBODY = 65534


def _bags(spec, n: int, seed: int, nan_at: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    f, s = spec.face.frames_per_window, spec.face.frame_size
    eeg = rng.normal(0.0, 20.0, (n, spec.eeg.n_channels, spec.eeg.window_samples)).astype(np.float32)
    for i in nan_at:
        eeg[i, 3, 7] = np.nan if i % 2 == 0 else np.inf
    return eeg, rng.integers(0, 256, (n, f, s, s, 3), dtype=np.uint8)


def _raw_infer(url: str, eeg: np.ndarray, frames: np.ndarray) -> dict[str, np.ndarray | None]:
    """One request as any HTTP client sends it (no client-side checks)."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=url.removeprefix("http://"))
    try:
        inputs = []
        for name, array, kind in (("eeg", eeg, "FP32"), ("frames", frames, "UINT8")):
            tensor = httpclient.InferInput(name, list(array.shape), kind)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        result = client.infer("milmer", inputs)
        return {name: result.as_numpy(name) for name in ("logits", "probabilities", "mil_weights", "selected")}
    finally:
        client.close()


def _run_as_nobody(*cmd: str) -> subprocess.CompletedProcess:
    def drop() -> None:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    return subprocess.run(list(cmd), preexec_fn=drop, capture_output=True, text=True, timeout=30)


def _processes_with(marker: str) -> dict[int, str]:
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd:
            found[int(entry.name)] = cmd
    return found


@pytest.fixture(scope="module")
def own_server(start_server, tmp_path_factory):
    """A server started while a client is already waiting for it (the client must get the model,
    not an error, however early it came), with the facts of its start-up recorded."""
    from milmer.runtime.serve.client import RemotePipeline

    proc = start_server(tmp_path_factory.mktemp("own-serve") / "serve.log", delay_us=100_000)
    early: dict[str, object] = {}

    def early_client() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until the port accepts at all
            try:
                with RemotePipeline(proc.url, timeout_s=120) as remote:
                    early["spec"] = remote.spec
                return
            except Exception as err:  # noqa: BLE001 - recorded; connection refused until Triton listens
                early["error"] = err
                if "no Triton server answers" not in str(err):
                    return
                time.sleep(0.05)

    def health_watch() -> None:
        """The first time /v2/health/ready says 200, are the models ready too?"""
        import urllib.request

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{proc.url}/v2/health/ready", timeout=5)
            except Exception:  # noqa: BLE001 - refused or 400 until ready
                time.sleep(0.02)
                continue
            for name in ("milmer", "milmer_spec"):
                try:
                    early[f"{name} ready"] = urllib.request.urlopen(f"{proc.url}/v2/models/{name}/ready", timeout=5).status
                except Exception as err:  # noqa: BLE001 - recorded
                    early[f"{name} ready"] = repr(err)
            return

    threads = [threading.Thread(target=early_client), threading.Thread(target=health_watch)]
    for thread in threads:
        thread.start()
    proc.wait_ready(timeout_s=180)
    for thread in threads:
        thread.join(timeout=120)
    proc.early = early
    yield proc
    proc.stop()


def test_ready_means_the_models_are_ready(own_server):
    import tritonclient.http as httpclient

    assert own_server.early.get("spec") is not None, own_server.early  # a client that came early waited
    assert own_server.early["milmer ready"] == 200 and own_server.early["milmer_spec ready"] == 200, own_server.early
    client = httpclient.InferenceServerClient(url=own_server.url.removeprefix("http://"))
    try:
        assert client.is_model_ready("milmer") and client.is_model_ready("milmer_spec")
    finally:
        client.close()
    assert "(models ready; Ctrl-C stops)" in own_server.output()


def test_second_server_on_used_ports_is_refused(own_server, haar_model):
    cmd = [
        sys.executable, "-m", "milmer.app.cli", "serve", "--model", str(haar_model),
        "--http-port", str(own_server.http_port), "--grpc-port", str(own_server.grpc_port),
        "--metrics-port", str(own_server.metrics_port),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"Invalid value for '--http-port': port {own_server.http_port} on 127.0.0.1 is in use" in done.stderr
    assert "bug in milmer" not in done.stderr


def test_request_data_is_private_to_the_serving_user(own_server):
    regions = sorted(Path("/dev/shm").glob(f"pytrtion{own_server.proc.pid}-*"))
    assert regions, sorted(os.listdir("/dev/shm"))
    (workspace,) = Path.home().joinpath(".cache", "pytriton").glob(f"milmer-{own_server.proc.pid}-*")
    stubs = _processes_with(f"{workspace}/tritonserver/backends/python/triton_python_backend_stub")
    assert len(stubs) == 2 and all(f" {workspace}/model-store/" in cmd for cmd in stubs.values()), stubs  # no /tmp copies
    assert workspace.stat().st_mode & 0o777 == 0o700
    for region in regions:
        assert region.stat().st_mode & 0o777 == 0o600, region
    if os.geteuid() != 0:
        pytest.skip("reading as another user (uid nobody) needs root to switch users; the modes were checked")
    for region in regions:
        seen = _run_as_nobody("head", "-c", "16", str(region))
        assert seen.returncode != 0 and "Permission denied" in seen.stderr, (region, seen)
    seen = _run_as_nobody("ls", str(workspace / "model-store"))
    assert seen.returncode != 0 and "Permission denied" in seen.stderr


def test_the_command_line_opens_no_control_endpoint(own_server):
    """PyTriton puts the control token on tritonserver's command line, which every local user can
    read; milmer serve's restriction there names a header no client can send."""
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    (cmd,) = _processes_with(f"milmer-{own_server.proc.pid}-0/tritonserver/bin/tritonserver").values()
    restrictions = set(re.findall(r"--(?:http-restricted-api|grpc-restricted-protocol) (\S+)", cmd))
    assert restrictions == {"shared-memory,model-repository,trace,logging:milmer:no-client-can-send-this-header=closed"}
    assert "triton-access-token" not in cmd
    # Every header a reader of the command line could make of it, over HTTP and gRPC.
    tries = [{}, {"triton-access-token": "closed"}, {"milmer": "no-client-can-send-this-header=closed"}]
    http = httpclient.InferenceServerClient(url=own_server.url.removeprefix("http://"))
    grpc = grpcclient.InferenceServerClient(url=f"127.0.0.1:{own_server.grpc_port}")
    try:
        for headers in tries:
            for client, refusal in ((http, "This API is restricted"), (grpc, "This protocol is restricted")):
                for call in (client.get_model_repository_index, client.get_log_settings, lambda **kw: client.unload_model("milmer", **kw)):
                    with pytest.raises(InferenceServerException, match=refusal):
                        call(headers=headers)
        assert http.is_model_ready("milmer")
    finally:
        http.close()
        grpc.close()


def _executions(url: str) -> tuple[int, int]:
    """(requests, model executions) of 'milmer' so far, from Triton's statistics endpoint."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{url}/v2/models/milmer/stats", timeout=30) as answer:
        stats = json.load(answer)["model_stats"][0]
    return stats["inference_count"], stats["execution_count"]


def test_nonfinite_eeg_is_refused_with_400_and_the_batch_goes_on(own_server, haar_model):
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    from milmer.runtime.pipeline import Pipeline

    refused = r"Invalid value for input 'eeg': expected finite numbers, got NaN or Inf; the request was not scored\.$"
    with Pipeline(haar_model, backend="ort", device="cpu") as local:
        eeg, crops = _bags(local.spec, 6, seed=3, nan_at=(1, 4))
        reference = local.score_bags(eeg, crops)
    # Alone in its batch: HTTP 400 (gRPC INVALID_ARGUMENT) naming the input, no traceback.
    for i in (1, 4):  # NaN, Inf
        with pytest.raises(InferenceServerException, match=refused) as alone:
            _raw_infer(own_server.url, eeg[i : i + 1], crops[i : i + 1])
        assert alone.value.status() == "400"
    grpc = grpcclient.InferenceServerClient(url=f"127.0.0.1:{own_server.grpc_port}")
    try:
        tensor = grpcclient.InferInput("eeg", [1, *eeg.shape[1:]], "FP32")
        tensor.set_data_from_numpy(eeg[1:2])
        frames = grpcclient.InferInput("frames", [1, *crops.shape[1:]], "UINT8")
        frames.set_data_from_numpy(crops[1:2])
        with pytest.raises(InferenceServerException, match=refused) as over_grpc:
            grpc.infer("milmer", [tensor, frames])
        assert over_grpc.value.status() == "StatusCode.INVALID_ARGUMENT"
    finally:
        grpc.close()
    # Six clients at once (100 ms queue delay): the finite bags get the numbers they get alone, the
    # others their own 400. Repeated (at most 3 rounds) until all six shared one batch.
    for _ in range(3):
        answers: dict[int, object] = {}
        start = threading.Barrier(6)

        def client(i: int) -> None:
            start.wait(timeout=30)
            try:
                answers[i] = _raw_infer(own_server.url, eeg[i : i + 1], crops[i : i + 1])
            except InferenceServerException as err:
                answers[i] = err

        before = _executions(own_server.url)
        threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        requests, executions = (now - then for now, then in zip(_executions(own_server.url), before))
        assert requests == 6
        for i in (0, 2, 3, 5):
            for name in ("logits", "probabilities", "mil_weights"):
                np.testing.assert_allclose(answers[i][name], reference[name][i : i + 1], rtol=0, atol=1e-6)
            np.testing.assert_array_equal(answers[i]["selected"], reference["selected"][i : i + 1])
        for i in (1, 4):
            assert isinstance(answers[i], InferenceServerException), answers[i]
            assert answers[i].status() == "400" and re.search(refused, answers[i].message()), answers[i]
        if executions == 1:
            break
    assert executions == 1, f"6 concurrent requests never shared one batch (last round: {executions} executions)"


def test_a_crashing_request_is_followed_by_a_restart(own_server):
    import urllib.error
    import urllib.request

    from milmer.runtime.serve.client import RemotePipeline

    body = b"[" * 240_000  # overflows the bundled Triton's recursive JSON parser
    connected = RemotePipeline(own_server.url, timeout_s=30)  # a client in the middle of its work
    tick = time.monotonic()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(urllib.request.Request(f"{own_server.url}/v2/models/milmer/infer", data=body), timeout=30)
    eeg, crops = _bags(connected.spec, 1, seed=4)
    answered: list = []

    def newcomer() -> None:  # a client started during the restart waits for the server, within its timeout
        with RemotePipeline(own_server.url, timeout_s=60) as remote:  # (a connection serves one thread)
            answered.append(remote.score_bags(eeg, crops)["probabilities"].shape)

    thread = threading.Thread(target=newcomer)
    thread.start()
    with connected:  # its next request waits out the restart (within its timeout) on a new connection
        assert connected.score_bags(eeg, crops)["probabilities"].shape == (1, connected.spec.n_classes)
    outage = time.monotonic() - tick
    thread.join(timeout=60)
    assert answered == [(1, connected.spec.n_classes)]
    log = own_server.output()
    assert "Warning: tritonserver stopped unexpectedly (killed by SIGSEGV)" in log
    assert re.search(r"Serving again after restart 1: the server was unavailable for \d+\.\d s", log)
    assert own_server.proc.poll() is None
    assert outage < 120
    print(f"outage after the crash: {outage:.1f} s")


def test_sigterm_under_load_drains_and_leaves_nothing(own_server):
    from milmer.runtime.serve.client import RemotePipeline, ServerError

    pid = own_server.proc.pid
    workspaces = list(Path.home().joinpath(".cache", "pytriton").glob(f"milmer-{pid}-*"))
    assert workspaces
    outcomes: list[str] = []
    lock = threading.Lock()
    running = threading.Barrier(9)

    def client(c: int) -> None:
        with RemotePipeline(own_server.url, batch=2, timeout_s=10) as remote:
            eeg, crops = _bags(remote.spec, 2, seed=10 + c)
            running.wait(timeout=60)
            for _ in range(400):  # bounded: the stop ends it long before
                try:
                    remote.score_bags(eeg, crops)
                    outcome = "ok"
                except ServerError as err:
                    outcome = "refused" if "shutting down" in str(err) else f"error: {err}"
                except Exception as err:  # noqa: BLE001 - recorded: a dropped request fails the test
                    outcome = f"dropped: {type(err).__name__}: {err}"
                with lock:
                    outcomes.append(outcome)
                if outcome != "ok":
                    return

    threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
    for t in threads:
        t.start()
    running.wait(timeout=60)
    time.sleep(1.0)
    tick = time.monotonic()
    own_server.proc.send_signal(signal.SIGTERM)
    code = own_server.proc.wait(timeout=90)
    stop_s = time.monotonic() - tick
    for t in threads:
        t.join(timeout=60)
    log = own_server.output()
    assert code == 0, log[-3000:]
    restarted = "; restarted 1 time after a crash" if "Serving again after restart 1:" in log else ""  # the test above
    assert re.search(rf"Server stopped \(drained in \d+\.\d s, \d+ requests refused while stopping{restarted}\)", log)
    assert outcomes.count("ok") > 0
    assert all(o in ("ok", "refused") for o in outcomes), sorted(set(outcomes))
    assert not _processes_with(f"milmer-{pid}-"), "orphaned tritonserver/stub processes"
    assert not list(Path("/dev/shm").glob(f"pytrtion{pid}-*"))
    assert not [w for w in workspaces if w.exists()]
    assert stop_s < 10 + 3 + 30  # drain bound + Triton's exit timeout + clean-up on a busy machine
    print(f"stop under load: {stop_s:.1f} s, {outcomes.count('ok')} answered, {outcomes.count('refused')} refused")
