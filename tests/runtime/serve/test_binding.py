"""The bound ``milmer`` model without a server: which requests of a batch are scored, which are
refused and with what code, and that binding adapts the proxy model in the repository."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from milmer.runtime.serve.binding import NONFINITE_MESSAGE, SHUTTING_DOWN_MESSAGE, Gate, bind_models
from milmer.runtime.serve.request_errors import ERROR_OUTPUT


class FakeTriton:
    """Records bind() and writes the proxy model where PyTriton's local model store would."""

    def __init__(self, store: Path) -> None:
        import pytriton.proxy

        self._workspace = SimpleNamespace(model_store_path=store)
        self.bound: dict[str, object] = {}
        self._proxy = Path(pytriton.proxy.__path__[0])

    def bind(self, *, model_name, infer_func, **_) -> None:
        shutil.copytree(self._proxy, self._workspace.model_store_path / model_name / "1", ignore=shutil.ignore_patterns("__pycache__"))
        self.bound[model_name] = infer_func


class FakeScorer:
    """score_bags: probabilities[b] = (mean of eeg[b]) in every column; records the batch sizes."""

    def __init__(self, spec) -> None:
        self.spec, self.calls = spec, []

    def score_bags(self, eeg: np.ndarray, frames: np.ndarray) -> dict[str, np.ndarray]:
        self.calls.append(len(eeg))
        b, k, f = len(eeg), self.spec.n_classes, self.spec.face.frames_per_window
        mean = eeg.mean(axis=(1, 2))[:, None]
        return {
            "logits": np.repeat(mean, k, axis=1).astype(np.float32),
            "probabilities": np.repeat(mean, k, axis=1).astype(np.float32),
            "mil_weights": np.full((b, f), 1.0 / f, np.float32),
            "selected": np.zeros((b, self.spec.graph.top_k), np.int64),
        }


@pytest.fixture
def bound(tiny_graphs, tmp_path):
    pytest.importorskip("pytriton")
    triton, scorer, gate = FakeTriton(tmp_path), FakeScorer(tiny_graphs.tiny_spec()), Gate()
    bind_models(triton, scorer, max_batch=8, max_queue_delay_us=0, gate=gate)
    return triton.bound["milmer"], scorer, gate, tmp_path


def _request(spec, value: float, n: int = 1) -> dict[str, np.ndarray]:
    f, s = spec.face.frames_per_window, spec.face.frame_size
    eeg = np.full((n, spec.eeg.n_channels, spec.eeg.window_samples), value, np.float32)
    return {"eeg": eeg, "frames": np.zeros((n, f, s, s, 3), np.uint8)}


def test_binding_adapts_the_proxy_in_the_repository(bound):
    _, _, _, store = bound
    assert "_wrap_response = _milmer_wrap_response" in (store / "milmer" / "1" / "model.py").read_text()
    assert "_milmer" not in (store / "milmer_spec" / "1" / "model.py").read_text()


def test_nonfinite_requests_are_refused_and_the_others_scored_together(bound):
    infer, scorer, _, _ = bound
    spec = scorer.spec
    requests = [_request(spec, 1.0, n=2), _request(spec, np.nan), _request(spec, 3.0), _request(spec, np.inf)]
    answers = infer(requests)
    assert scorer.calls == [3]  # the finite bags, in one call
    np.testing.assert_array_equal(answers[0]["probabilities"][:, 0], [1.0, 1.0])
    np.testing.assert_array_equal(answers[2]["probabilities"][:, 0], [3.0])
    for i in (1, 3):
        assert list(answers[i]) == [ERROR_OUTPUT]
        assert answers[i][ERROR_OUTPUT].item(0).decode() == f"INVALID_ARG {NONFINITE_MESSAGE}"
    # Only non-finite requests: nothing is scored.
    answers = infer([_request(spec, np.nan)])
    assert scorer.calls == [3] and answers[0][ERROR_OUTPUT].item(0).decode() == f"INVALID_ARG {NONFINITE_MESSAGE}"


def test_a_draining_server_refuses_with_unavailable(bound):
    infer, scorer, gate, _ = bound
    assert gate.close(timeout_s=1.0)
    answers = infer([_request(scorer.spec, 1.0), _request(scorer.spec, np.nan)])
    assert scorer.calls == [] and gate.refused == 2  # requests, not model calls
    assert [a[ERROR_OUTPUT].item(0).decode() for a in answers] == [f"UNAVAILABLE {SHUTTING_DOWN_MESSAGE}"] * 2
