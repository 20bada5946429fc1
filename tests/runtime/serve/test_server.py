"""``milmer serve``: concurrent clients get the local numbers, Triton batches them, bad requests
get Triton's error and the server goes on; the server stops cleanly (the fixture checks that)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.pipeline import Pipeline
from milmer.runtime.serve.client import RemotePipeline, ServerError

N_CLIENTS, REQUESTS_PER_CLIENT = 6, 3


def _bags(spec, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    f, s = spec.face.frames_per_window, spec.face.frame_size
    eeg = rng.normal(0.0, 20.0, (n, spec.eeg.n_channels, spec.eeg.window_samples)).astype(np.float32)
    crops = rng.integers(0, 256, (n, f, s, s, 3), dtype=np.uint8)
    return eeg, crops


def _batch_sizes(url: str) -> dict[int, int]:
    """Triton's own statistics: batch size -> number of model executions of that size."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=url.removeprefix("http://"))
    try:
        stats = client.get_inference_statistics("milmer")
    finally:
        client.close()
    (model,) = stats["model_stats"]
    return {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in model.get("batch_stats", [])}


def test_concurrent_clients_get_local_probabilities_in_shared_batches(server, haar_model):
    n_bags = N_CLIENTS * REQUESTS_PER_CLIENT
    with Pipeline(haar_model, backend="ort", device="cpu") as local:
        eeg, crops = _bags(local.spec, n_bags, seed=0)
        reference = local.score_bags(eeg, crops)
    results: dict[int, dict[str, np.ndarray]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(N_CLIENTS)

    def client(c: int) -> None:
        try:
            with RemotePipeline(server.url, batch=1) as remote:
                start.wait(timeout=30)
                for r in range(REQUESTS_PER_CLIENT):
                    i = c * REQUESTS_PER_CLIENT + r
                    results[i] = remote.score_bags(eeg[i : i + 1], crops[i : i + 1])  # one bag per request
        except BaseException as err:  # noqa: BLE001 - re-raised below
            errors.append(err)

    before = _batch_sizes(server.url)
    threads = [threading.Thread(target=client, args=(c,)) for c in range(N_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(results) == list(range(n_bags))
    for key in ("logits", "probabilities", "mil_weights"):
        got = np.concatenate([results[i][key] for i in range(n_bags)])
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, reference[key], rtol=0, atol=1e-6, err_msg=key)
    selected = np.concatenate([results[i]["selected"] for i in range(n_bags)])
    assert selected.dtype == np.int64
    np.testing.assert_array_equal(selected, reference["selected"])
    # Triton's dynamic batcher put bags of different clients into one model call.
    after = _batch_sizes(server.url)
    new = {b: after.get(b, 0) - before.get(b, 0) for b in after}
    assert sum(b * n for b, n in new.items()) == n_bags, new
    assert max(b for b, n in new.items() if n > 0) > 1, new


def test_metrics_endpoint_counts_inferences(server):
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10).read().decode()
    assert 'nv_inference_count{model="milmer"' in text
    assert 'nv_inference_exec_count{model="milmer"' in text


def _raw_infer(url: str, eeg: np.ndarray, frames: np.ndarray) -> None:
    """A request sent as is, declaring each array's own dtype (the client does not check it)."""
    import tritonclient.http as httpclient
    from tritonclient.utils import np_to_triton_dtype

    client = httpclient.InferenceServerClient(url=url.removeprefix("http://"))
    try:
        inputs = []
        for name, array in (("eeg", eeg), ("frames", frames)):
            tensor = httpclient.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        client.infer("milmer", inputs)
    finally:
        client.close()


def test_bad_requests_get_tritons_error_and_the_server_goes_on(server, haar_model):
    from tritonclient.utils import InferenceServerException

    with RemotePipeline(server.url) as remote:
        eeg, crops = _bags(remote.spec, 1, seed=1)
        with pytest.raises(ServerError, match=r"unexpected shape for input 'eeg' for model 'milmer'"):
            remote.score_bags(eeg[:, :, :100], crops)
        with pytest.raises(ServerError, match=r"unexpected shape for input 'frames' for model 'milmer'"):
            remote.score_bags(eeg, crops[:, :, :112])
        with pytest.raises(ServerError, match=r"inference request batch-size must be <= 8 for 'milmer'"):
            remote.score_bags(np.repeat(eeg, 9, axis=0), np.repeat(crops, 9, axis=0))
        with pytest.raises(InferenceServerException, match=r"input 'eeg' data-type is 'FP64', but model 'milmer' expects 'FP32'"):
            _raw_infer(server.url, eeg.astype(np.float64), crops)
        with pytest.raises(InferenceServerException, match=r"input 'frames' data-type is 'FP32', but model 'milmer' expects 'UINT8'"):
            _raw_infer(server.url, eeg, crops.astype(np.float32))
        good = remote.score_bags(eeg, crops)  # still serving
        # The client itself refuses a wrong dtype before sending, naming the input.
        with pytest.raises(MilmerInputError, match=r"Invalid value for 'eeg': expected float32 \(B, 32, 384\), got float64"):
            remote.score_bags(eeg.astype(np.float64), crops)
        # ... and NaN or Inf in the EEG (the server would refuse it too, with HTTP 400).
        bad = eeg.copy()
        bad[0, 3, 7], bad[0, 5, 9] = np.nan, np.inf
        with pytest.raises(MilmerInputError, match=r"Invalid value for 'eeg': expected finite numbers, got NaN or Inf in 2 values\.$"):
            remote.score_bags(bad, crops)
    with Pipeline(haar_model, backend="ort", device="cpu") as local:
        np.testing.assert_allclose(good["probabilities"], local.score_bags(eeg, crops)["probabilities"], rtol=0, atol=1e-6)


def test_client_reads_the_spec_and_batch_limit_from_the_server(server, haar_model):
    from milmer.runtime.spec import ModelSpec

    with RemotePipeline(server.url, batch=32) as remote:
        assert remote.spec == ModelSpec.load(haar_model / "spec.json")
        assert remote.batch == 8  # the server's --max-batch
        assert remote.settings == {"server": server.url, "model_name": "milmer", "batch": 8}
