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

from ..check import MilmerExternalError, MilmerInputError, check_array, check_number
from ..check import check_int, check_type, read_error, requires_error
from ..pipeline import Pipeline
from ..scoring import BAG_OUTPUTS
from ..spec import ModelSpec
from .protocol import INPUTS, MODEL_NAME, OUTPUTS, SPEC_MODEL_NAME, SPEC_PARAMETER, bag_tensors

__all__ = [
    "DEFAULT_REQUEST_BAGS", "DEFAULT_TIMEOUT_S", "RemotePipeline", "RemoteScorer", "ServerError", "ServerConnectionError",
    "parse_server_url", "connect",
]

_CLIENT_HINT = "install tritonclient: pip install 'tritonclient[http]' (or the serve extra; docs/serving.md)"


#: Bags per request when none is given.
DEFAULT_REQUEST_BAGS = 4
#: Seconds to wait for the connection, for each answer and for the model to become ready.
DEFAULT_TIMEOUT_S = 60.0


class ServerError(MilmerExternalError):
    """The server answered a request with an error (Triton's message is kept verbatim)."""


class ServerConnectionError(MilmerExternalError):
    """The server went away or did not answer within the timeout."""


def _transport_errors() -> tuple[type[BaseException], ...]:
    """What tritonclient's HTTP client raises when the connection fails or times out: socket errors,
    a connection closed mid-answer (an http.client.HTTPException) and gevent's Timeout (a BaseException)."""
    import http.client

    import gevent

    return (OSError, http.client.HTTPException, gevent.Timeout)


def _why(err: BaseException, timeout_s: float) -> str:
    import gevent

    if isinstance(err, (gevent.Timeout, TimeoutError)):
        return f"no answer within {timeout_s:g} s (--timeout)"
    return f"{type(err).__name__}: {err}".rstrip(": ")


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


#: First and largest pause between tries while the server is unreachable (s): it is starting or
#: restarting after a crash (a restart takes seconds; docs/serving.md).
_RETRY_FIRST_S, _RETRY_MAX_S = 0.1, 1.0


def _unreachable(err: BaseException) -> bool:
    """A connection refused, reset or closed mid-answer: the server is down or (re)starting. A
    timeout is not: the server is there and slow, and the timeout is the user's limit."""
    import http.client

    return isinstance(err, (ConnectionError, http.client.HTTPException)) or (
        isinstance(err, OSError) and not isinstance(err, TimeoutError)
    )


def _until(deadline: float, call: Any, *, reconnect: Any = None) -> Any:
    """``call()``, tried again after a short backoff while the server is unreachable (see
    :func:`_unreachable`) and ``deadline`` (time.monotonic) is ahead; ``reconnect()``, when given,
    runs before each new try. The last error propagates."""
    import time

    pause = _RETRY_FIRST_S
    while True:
        try:
            return call()
        except _transport_errors() as err:
            left = deadline - time.monotonic()
            if not _unreachable(err) or left <= 0:
                raise
            time.sleep(min(pause, left))
            pause = min(2 * pause, _RETRY_MAX_S)
            if reconnect is not None:
                reconnect()


def _client(address: str, timeout_s: float) -> Any:
    import tritonclient.http as httpclient

    return httpclient.InferenceServerClient(url=address, connection_timeout=timeout_s, network_timeout=timeout_s)


def connect(url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Any:
    """A ``tritonclient.http.InferenceServerClient`` for ``url``, with the server checked live
    (connection and each answer bounded by ``timeout_s``). A refused or dropped connection, or a
    server not yet live, is tried again until ``timeout_s`` has passed: the server may be starting
    or restarting after a crash. Raises MilmerInputError (exit 2) when no server answered by then."""
    import time

    try:
        from tritonclient.utils import InferenceServerException
    except ImportError:
        raise MilmerInputError(f"`--server` needs tritonclient, not installed here; {_CLIENT_HINT}.") from None
    address = parse_server_url(url)
    check_number("--timeout", timeout_s, low=0, low_open=True, unit="seconds")
    deadline = time.monotonic() + timeout_s
    client = _client(address, timeout_s)

    def fresh() -> None:
        nonlocal client
        client.close()
        client = _client(address, timeout_s)

    def live() -> bool:
        while not client.is_server_live():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_RETRY_MAX_S / 4)
        return True

    try:
        is_live = _until(deadline, live, reconnect=fresh)
    except (InferenceServerException, *_transport_errors()) as err:
        client.close()
        why = err if isinstance(err, InferenceServerException) else _why(err, timeout_s)
        raise MilmerInputError(f"Invalid value for '--server': no Triton server answers at {url!r} ({why}).") from None
    if not is_live:
        client.close()
        raise MilmerInputError(f"Invalid value for '--server': the Triton server at {url!r} is not live.")
    return client


def _wait_model_ready(client: Any, model_name: str, timeout_s: float) -> bool:
    """Poll until ``model_name`` is ready, at most ``timeout_s``: a server just started answers
    live (and even ``/v2/health/ready``) before its models have loaded, and a restarting one
    refuses connections for a few seconds."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        if _until(deadline, lambda: client.is_model_ready(model_name)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.25)


def _read_spec(client: Any, url: str, model_name: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[ModelSpec, int]:
    """The served model's spec and its max_batch_size (bags per request it accepts)."""
    from tritonclient.utils import InferenceServerException

    try:
        ready = _wait_model_ready(client, model_name, timeout_s)
        config = client.get_model_config(model_name) if ready else None
    except _transport_errors() as err:  # it answered live, then went away for longer than the timeout
        raise ServerConnectionError(f"the server at {url} stopped answering ({_why(err, timeout_s)}); check that it is running and rerun") from None
    except InferenceServerException as err:
        raise read_error("--server", url, err, what=f"config of model {model_name!r} at") from None
    if config is None:
        raise requires_error(
            "--server", url, f"model {model_name!r} loaded and ready", f"none ready after {timeout_s:g} s",
            hint="a server still loading it may need a longer --timeout",
        )
    text = config.get("parameters", {}).get(SPEC_PARAMETER, {}).get("string_value") or _ask_spec_model(client, timeout_s)
    if not text:
        raise requires_error(
            "--server", url, f"a milmer model: {model_name!r} with a {SPEC_PARAMETER!r} parameter, or a {SPEC_MODEL_NAME!r} model",
            "neither", hint="serve a milmer model (milmer serve, or a repository from milmer export-triton)",
        )
    return ModelSpec.from_json(text), int(config.get("max_batch_size", 0))


def _ask_spec_model(client: Any, timeout_s: float) -> str | None:
    """The spec JSON from the companion model of ``milmer serve`` (waiting up to ``timeout_s`` for
    it to load: it may come up after ``milmer``), or None when the server has no such model."""
    import time

    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    deadline = time.monotonic() + timeout_s
    while not client.is_model_ready(SPEC_MODEL_NAME):
        try:
            client.get_model_metadata(SPEC_MODEL_NAME)
        except InferenceServerException as err:
            if "is not found" in str(err):  # Triton: "Request for unknown model: 'NAME' is not found"
                return None
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.25)
    try:
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
    timeout_s:  connection and per-request timeout, and how long to wait for the model to be ready

    The spec comes from the server. Raises MilmerInputError when no server answers, the model is
    missing or is no milmer model.
    """

    def __init__(
        self, url: str, *, batch: int | None = None, model_name: str = MODEL_NAME, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        wanted = check_int("batch", batch, low=1) if batch is not None else DEFAULT_REQUEST_BAGS
        self.url = url
        self.model_name = model_name
        self.timeout_s = timeout_s
        self._client = connect(url, timeout_s=timeout_s)
        try:
            self.spec, max_batch = _read_spec(self._client, url, model_name, timeout_s)
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

    def _reconnect(self) -> None:
        self._client.close()
        self._client = _client(parse_server_url(self.url), self.timeout_s)

    @property
    def settings(self) -> dict[str, Any]:
        return {"server": self.url, "model_name": self.model_name, "batch": self.batch}

    def score_bags(self, eeg: np.ndarray, crops: np.ndarray, *, timings: dict[str, float] | None = None) -> dict[str, np.ndarray]:
        """Score ``B`` bags on the server: same arguments and results as :meth:`BagScorer.score_bags`.

        eeg (B, C, T) float32, crops (B, F, S, S, 3) uint8 -> logits, probabilities (B, K) float32,
        mil_weights (B, F) float32, selected (B, top_k) int64. Request time is added to
        ``timings['backbone']`` (the server's whole model time, with the network). A wrong dtype
        or NaN/Inf in ``eeg`` is a MilmerInputError here; shapes are Triton's to check:
        :class:`ServerError` carries Triton's message when the server refuses the request,
        :class:`ServerConnectionError` says the server went away (and did not come back within the
        timeout: a refused or dropped connection is tried again until then) or did not answer in time.
        """
        import time

        import tritonclient.http as httpclient
        from tritonclient.utils import InferenceServerException

        inputs, _ = bag_tensors(self.spec)
        arrays = dict(zip(INPUTS, (eeg, crops)))
        request = []
        for info in inputs:
            array = arrays[info.name]
            check_array(info.name, array, dtype=info.dtype, finite=info.name == "eeg",
                        what=f"{info.dtype} ({', '.join(str(x) for x in ('B', *info.shape))})")
            array = np.ascontiguousarray(array)
            tensor = httpclient.InferInput(info.name, list(array.shape), info.triton_dtype)
            tensor.set_data_from_numpy(array, binary_data=True)
            request.append(tensor)
        wanted = [httpclient.InferRequestedOutput(name, binary_data=True) for name in OUTPUTS]
        tick = time.perf_counter()
        # A dropped or refused connection (the server restarting after a crash) is tried again on a
        # new connection until the timeout; the request has no side effects on the server.
        deadline = time.monotonic() + self.timeout_s
        try:
            result = _until(deadline, lambda: self._client.infer(self.model_name, request, outputs=wanted), reconnect=self._reconnect)
        except InferenceServerException as err:
            raise ServerError(f"the server at {self.url} refused the request: {err.message()}") from None
        except _transport_errors() as err:
            raise ServerConnectionError(
                f"lost the connection to the server at {self.url} ({_why(err, self.timeout_s)}); "
                "check that it is running and rerun"
            ) from None
        missing = [name for name in OUTPUTS if result.as_numpy(name) is None]
        if missing:  # milmer serve answers a non-finite request that shared a batch without outputs
            raise ServerError(f"the server at {self.url} did not score the request (no {', '.join(missing)} in its answer)")
        if timings is not None:
            timings["backbone"] = timings.get("backbone", 0.0) + time.perf_counter() - tick
        return {key: result.as_numpy(name) for key, name in zip(BAG_OUTPUTS, OUTPUTS)}


class RemotePipeline(Pipeline):
    """A :class:`~milmer.runtime.pipeline.Pipeline` holding a :class:`RemoteScorer`: preprocessing
    here, scoring on the server at ``url``. ``batch``, ``model_name``, ``timeout_s``: as for
    :class:`RemoteScorer`; ``overlap``: as for :class:`~milmer.runtime.pipeline.Pipeline`."""

    def __init__(
        self, url: str, *, batch: int | None = None, model_name: str = MODEL_NAME, timeout_s: float = DEFAULT_TIMEOUT_S,
        overlap: bool = True,
    ) -> None:
        check_type("overlap", overlap, bool)
        super().__init__(RemoteScorer(url, batch=batch, model_name=model_name, timeout_s=timeout_s), overlap=overlap)
