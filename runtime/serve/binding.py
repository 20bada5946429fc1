"""The ``milmer`` and ``milmer_spec`` models as PyTriton binds them, with the request checks Triton
cannot make and the gate that drains them on shutdown.

Triton checks names, shapes and dtypes (:mod:`.protocol`) before the model runs; a finite-value
check is ours: a bag whose ``eeg`` holds NaN or Inf would come back as a prediction of NaN
probabilities. Such a request is not scored and is answered with its own error naming the input
(``INVALID_ARG``: HTTP 400, gRPC ``INVALID_ARGUMENT``), alone in its batch or batched with other
clients' requests, which are scored as if it had not been there (:mod:`.request_errors`). A request
arriving while the server drains is refused the same way with ``UNAVAILABLE`` (HTTP 503). The
client (:class:`~.client.RemoteScorer`, held by ``RemotePipeline``) refuses non-finite bags
before sending.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .protocol import MODEL_NAME, OUTPUTS, SPEC_MODEL_NAME, bag_tensors
from .request_errors import install, refusal

__all__ = ["Gate", "bind_models", "NONFINITE_MESSAGE", "SHUTTING_DOWN_MESSAGE"]

NONFINITE_MESSAGE = "Invalid value for input 'eeg': expected finite numbers, got NaN or Inf; the request was not scored."
SHUTTING_DOWN_MESSAGE = "the server is shutting down: the request was not scored; retry it on a running server."


class Gate:
    """Counts model calls in progress; once closed, refuses new ones (drain on shutdown).
    ``refused`` counts the client requests refused, not the calls: one call carries a batch of them."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._active = 0
        self._closed = False
        self.refused = 0

    def enter(self, requests: int = 1) -> bool:
        """Start a model call carrying ``requests`` client requests; False (and the requests counted
        as refused) once closed."""
        with self._cv:
            if self._closed:
                self.refused += requests
                return False
            self._active += 1
            return True

    def leave(self) -> None:
        with self._cv:
            self._active -= 1
            self._cv.notify_all()

    def close(self, timeout_s: float) -> bool:
        """Refuse new calls and wait up to ``timeout_s`` for those in progress; True when none is left."""
        with self._cv:
            self._closed = True
            return self._cv.wait_for(lambda: self._active == 0, timeout=timeout_s)


def _finite(request: dict[str, np.ndarray]) -> bool:
    return bool(np.isfinite(request["eeg"]).all())


def bind_models(triton: Any, scorer: Any, *, max_batch: int, max_queue_delay_us: int, gate: Gate) -> None:
    """Bind ``milmer`` (``scorer.score_bags`` on the batches Triton forms) and ``milmer_spec``."""
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

    inputs, outputs = bag_tensors(scorer.spec)
    out_dtypes = [np.dtype(t.dtype).type for t in outputs]

    def infer(requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        # each request: eeg (b, C, T) float32, frames (b, F, S, S, 3) uint8, b >= 1 bags
        if not gate.enter(len(requests)):
            return [refusal(SHUTTING_DOWN_MESSAGE, "UNAVAILABLE") for _ in requests]
        try:
            answers = [{} if _finite(r) else refusal(NONFINITE_MESSAGE) for r in requests]
            keep = [i for i, answer in enumerate(answers) if not answer]
            if not keep:
                return answers
            sizes = [len(requests[i]["eeg"]) for i in keep]
            eeg = np.concatenate([requests[i]["eeg"] for i in keep])
            frames = np.concatenate([requests[i]["frames"] for i in keep])
            scored = scorer.score_bags(eeg, frames)
            # ONNX Runtime may return int64 as numpy's 'longlong', which PyTriton does not take for
            # int64 under numpy 1; the view is the same memory with the canonical type.
            columns = {name: scored[name].view(dtype) for name, dtype in zip(OUTPUTS, out_dtypes)}
            start = 0
            for i, n in zip(keep, sizes):
                answers[i] = {name: column[start : start + n] for name, column in columns.items()}
                start += n
            return answers
        finally:
            gate.leave()

    spec_json = np.array([scorer.spec.to_json(indent=None).encode()], dtype=np.object_)

    # PyTriton's Python backend does not keep custom model-configuration parameters, so the spec is
    # served by a companion model: any request -> the spec JSON (one BYTES element).
    triton.bind(
        model_name=SPEC_MODEL_NAME,
        infer_func=lambda requests: [{"spec": spec_json} for _ in requests],
        inputs=[Tensor(name="request", dtype=np.uint8, shape=(1,))],
        outputs=[Tensor(name="spec", dtype=bytes, shape=(1,))],
        config=ModelConfig(batching=False),
        strict=True,
    )
    # Bound (= loaded) after the spec model: once 'milmer' is ready, a client can read the spec.
    triton.bind(
        model_name=MODEL_NAME,
        infer_func=infer,
        inputs=[Tensor(name=t.name, dtype=np.dtype(t.dtype).type, shape=t.shape) for t in inputs],
        outputs=[Tensor(name=t.name, dtype=np.dtype(t.dtype).type, shape=t.shape) for t in outputs],
        config=ModelConfig(max_batch_size=max_batch, batcher=DynamicBatcher(max_queue_delay_microseconds=max_queue_delay_us)),
        # strict output checks would refuse a refusal's undeclared output
        strict=False,
    )
    # Written by the local model store at bind time, before tritonserver starts and loads it.
    install(triton._workspace.model_store_path / MODEL_NAME / "1")
