"""Score bags on a Triton server: :class:`RemoteScorer`, held by a :class:`RemotePipeline` (the
local pipeline with remote scoring).

``milmer-infer VIDEO EEG --server URL`` reads and preprocesses the recording here exactly as a
local run does (the spec comes from the server's model configuration, ``parameters["milmer.spec"]``),
sends each batch of bags to the server's ``milmer`` model and writes the same predictions. Works
against ``milmer serve`` and against the stock Triton server running the repository written by
``milmer export-triton`` (same model name and tensors; :mod:`.protocol`).

``tritonclient`` (HTTP) is imported lazily. One :class:`RemotePipeline` holds one HTTP
connection: use one per thread.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..check import MilmerInputError
from ..check import check_int, check_type
from ..pipeline import Pipeline
from ..scoring import BAG_OUTPUTS
from ..spec import ModelSpec
from .protocol import INPUTS, MODEL_NAME, OUTPUTS, SPEC_MODEL_NAME, SPEC_PARAMETER, bag_tensors

__all__ = ["DEFAULT_REQUEST_BAGS", "RemotePipeline", "RemoteScorer", "ServerError", "parse_server_url", "connect"]

_CLIENT_HINT = "install tritonclient: pip install 'tritonclient[http]' (or the serve extra; README: Serving)"


#: Bags per request when none is given.
DEFAULT_REQUEST_BAGS = 4


class ServerError(RuntimeError):
    """The server answered a request with an error (Triton's message is kept verbatim)."""


def parse_server_url(url: str) -> str:
    """``http://HOST:PORT`` (or ``HOST:PORT``) -> ``'HOST:PORT'``; anything else is a MilmerInputError."""
    text = url.strip()
    parts = urlsplit(text if "://" in text else f"http://{text}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise MilmerInputError(
            f"Invalid value for '--server': expected http://HOST:PORT (Triton's HTTP port, 8000 by default), got {url!r}."
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}"


def connect(url: str, *, timeout_s: float = 60.0) -> Any:
    """A ``tritonclient.http.InferenceServerClient`` for ``url``, with the server checked live."""
    try:
        import tritonclient.http as httpclient
        from tritonclient.utils import InferenceServerException
    except ImportError:
        raise MilmerInputError(f"`--server` needs tritonclient, not installed here; {_CLIENT_HINT}.") from None
    address = parse_server_url(url)
    client = httpclient.InferenceServerClient(url=address, connection_timeout=timeout_s, network_timeout=timeout_s)
    try:
        live = client.is_server_live()
    except (InferenceServerException, OSError) as err:
        client.close()
        raise MilmerInputError(f"Invalid value for '--server': no Triton server answers at {url!r} ({err}).") from None
    if not live:
        client.close()
        raise MilmerInputError(f"Invalid value for '--server': the Triton server at {url!r} is not live.")
    return client


def _read_spec(client: Any, url: str, model_name: str) -> tuple[ModelSpec, int]:
    """The served model's spec and its max_batch_size (bags per request it accepts)."""
    from tritonclient.utils import InferenceServerException

    try:
        ready = client.is_model_ready(model_name)
        config = client.get_model_config(model_name) if ready else None
    except InferenceServerException as err:
        raise MilmerInputError(f"Invalid value for '--server': {url!r} cannot describe model {model_name!r}: {err}") from None
    if config is None:
        raise MilmerInputError(f"Invalid value for '--server': the server at {url!r} has no ready model {model_name!r}.")
    text = config.get("parameters", {}).get(SPEC_PARAMETER, {}).get("string_value") or _ask_spec_model(client)
    if not text:
        raise MilmerInputError(
            f"Invalid value for '--server': model {model_name!r} at {url!r} carries no {SPEC_PARAMETER!r} "
            f"parameter and the server has no {SPEC_MODEL_NAME!r} model; serve a milmer model (milmer serve, "
            "or a repository from milmer export-triton)."
        )
    return ModelSpec.from_json(text), int(config.get("max_batch_size", 0))


def _ask_spec_model(client: Any) -> str | None:
    """The spec JSON from the companion model of ``milmer serve``, or None when there is none."""
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    try:
        if not client.is_model_ready(SPEC_MODEL_NAME):
            return None
        request = httpclient.InferInput("request", [1], "UINT8")
        request.set_data_from_numpy(np.zeros(1, np.uint8))
        answer = client.infer(SPEC_MODEL_NAME, [request]).as_numpy("spec")
    except InferenceServerException:
        return None
    return answer[0].decode() if answer is not None and answer.size == 1 else None


class RemoteScorer:
    """A :class:`~milmer.runtime.scoring.Scorer` whose :meth:`score_bags` runs on a Triton server.

    url:        the server's HTTP endpoint, ``http://HOST:PORT``
    batch:      bags per request (default :data:`DEFAULT_REQUEST_BAGS`, at most the server's
                max_batch_size); the server may batch requests of many clients further
    model_name: the served model (default ``milmer``)
    timeout_s:  connection and per-request timeout

    The spec comes from the server. Raises MilmerInputError when no server answers, the model is
    missing or is no milmer model.
    """

    def __init__(self, url: str, *, batch: int | None = None, model_name: str = MODEL_NAME, timeout_s: float = 60.0) -> None:
        wanted = check_int("batch", batch, low=1) if batch is not None else DEFAULT_REQUEST_BAGS
        self.url = url
        self.model_name = model_name
        self._client = connect(url, timeout_s=timeout_s)
        try:
            self.spec, max_batch = _read_spec(self._client, url, model_name)
        except BaseException:
            self._client.close()
            raise
        # Requests larger than the server's max_batch_size are refused by Triton: stay within it.
        self.batch = min(wanted, max_batch) if max_batch > 0 else wanted

    @property
    def location(self) -> str:
        """The server's URL (written with the predictions where a model folder would be)."""
        return self.url

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._client.close()

    @property
    def settings(self) -> dict[str, Any]:
        return {"server": self.url, "model_name": self.model_name, "batch": self.batch}

    def score_bags(self, eeg: np.ndarray, crops: np.ndarray, *, timings: dict[str, float] | None = None) -> dict[str, np.ndarray]:
        """Score ``B`` bags on the server: same arguments and results as :meth:`BagScorer.score_bags`.

        eeg (B, C, T) float32, crops (B, F, S, S, 3) uint8 -> logits, probabilities (B, K) float32,
        mil_weights (B, F) float32, selected (B, top_k) int64. Request time is added to
        ``timings['backbone']`` (the server's whole model time, with the network). A wrong dtype
        is a MilmerInputError here; shapes are Triton's to check: :class:`ServerError` carries
        Triton's message when the server refuses the request.
        """
        import time

        import tritonclient.http as httpclient
        from tritonclient.utils import InferenceServerException

        inputs, _ = bag_tensors(self.spec)
        arrays = dict(zip(INPUTS, (eeg, crops)))
        request = []
        for info in inputs:
            array = arrays[info.name]
            if not isinstance(array, np.ndarray) or array.dtype != np.dtype(info.dtype):
                got = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
                shape = ", ".join(str(x) for x in ("B", *info.shape))
                raise MilmerInputError(f"Invalid value for {info.name!r}: expected {info.dtype} ({shape}), got {got}.")
            array = np.ascontiguousarray(array)
            tensor = httpclient.InferInput(info.name, list(array.shape), info.triton_dtype)
            tensor.set_data_from_numpy(array, binary_data=True)
            request.append(tensor)
        wanted = [httpclient.InferRequestedOutput(name, binary_data=True) for name in OUTPUTS]
        tick = time.perf_counter()
        try:
            result = self._client.infer(self.model_name, request, outputs=wanted)
        except InferenceServerException as err:
            raise ServerError(f"the server at {self.url} refused the request: {err.message()}") from None
        if timings is not None:
            timings["backbone"] = timings.get("backbone", 0.0) + time.perf_counter() - tick
        return {key: result.as_numpy(name) for key, name in zip(BAG_OUTPUTS, OUTPUTS)}


class RemotePipeline(Pipeline):
    """A :class:`~milmer.runtime.pipeline.Pipeline` holding a :class:`RemoteScorer`: preprocessing
    here, scoring on the server at ``url``. ``batch``, ``model_name``, ``timeout_s``: as for
    :class:`RemoteScorer`; ``overlap``: as for :class:`~milmer.runtime.pipeline.Pipeline`."""

    def __init__(
        self, url: str, *, batch: int | None = None, model_name: str = MODEL_NAME, timeout_s: float = 60.0,
        overlap: bool = True,
    ) -> None:
        check_type("overlap", overlap, bool)
        super().__init__(RemoteScorer(url, batch=batch, model_name=model_name, timeout_s=timeout_s), overlap=overlap)
