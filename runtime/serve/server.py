"""``milmer serve --model DIR``: the exported model behind NVIDIA Triton Inference Server.

PyTriton starts a real ``tritonserver`` (HTTP, gRPC, Prometheus metrics) whose Python backend hands
each batch that Triton's dynamic batcher formed to :meth:`~.scoring.BagScorer.score_bags` in this process:
the frames of all bags go through the backbone in one call, then the fusion graph scores the
bags. Requests from many clients are therefore scored together, exactly like the batched bags
of one local recording. Triton checks every request against the declared inputs
(:mod:`.protocol`) and answers a wrong shape or dtype with its own error before the model runs.

Ports (Triton's defaults): HTTP 8000 (KServe v2 API, ``/v2/health/ready``, ``/v2/health/live``,
``/v2/models/milmer/stats``), gRPC 8001, Prometheus metrics 8002 (``/metrics``). The statistics
endpoint is open (batch sizes), model-repository, shared-memory, trace and logging control are not.

Environment: ``nvidia-pytriton`` 0.7's Python-backend stub is compiled against the numpy 1 C ABI
(its pybind11 predates numpy 2) and runs an isolated interpreter: with numpy 2 installed the tensors
it passes are silently corrupted (inputs arrive as zeros, outputs come back empty). The server
therefore refuses to start under numpy >= 2; run it from an environment with ``numpy<2`` (the
``serve`` extra pins it through PyTriton's own requirement; README "Serving"). The stub also loads
``libpython3.X.so``: the interpreter's library folder is added to ``LD_LIBRARY_PATH`` for the
server process here, not in the user's shell.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..check import MilmerInputError, check_int, check_option
from .protocol import MODEL_NAME, OUTPUTS, SPEC_MODEL_NAME, bag_tensors

__all__ = ["ServeConfig", "check_serve_environment", "serve", "python_library_dir"]

_INSTALL_HINT = (
    "install the serve extra into an environment with numpy<2: "
    "pip install 'milmer[cpu,serve]' (see the README section Serving)"
)


@dataclass(frozen=True)
class ServeConfig:
    """Where the server listens and how Triton's dynamic batcher forms batches.

    host:               address for HTTP, gRPC and metrics ('127.0.0.1': this machine only;
                        '0.0.0.0': every interface)
    http_port, grpc_port, metrics_port: Triton's ports (defaults 8000, 8001, 8002)
    max_batch:          most bags Triton puts into one call of the model
    max_queue_delay_us: how long (microseconds) the batcher may hold a request to fill a batch
    """

    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    max_batch: int = 8
    max_queue_delay_us: int = 2000

    def __post_init__(self) -> None:
        for name in ("http_port", "grpc_port", "metrics_port"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
                raise MilmerInputError(f"Invalid value for '--{name.replace('_', '-')}': expected a port 1-65535, got {value!r}.")
        ports = (self.http_port, self.grpc_port, self.metrics_port)
        if len(set(ports)) != 3:
            raise MilmerInputError(
                f"Invalid values for '--http-port'/'--grpc-port'/'--metrics-port': expected three different ports, got {ports}."
            )
        check_int("--max-batch", self.max_batch, low=1)
        check_int("--max-queue-delay-us", self.max_queue_delay_us, low=0)

    def urls(self) -> dict[str, str]:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return {
            "http": f"http://{host}:{self.http_port}",
            "grpc": f"grpc://{host}:{self.grpc_port}",
            "metrics": f"http://{host}:{self.metrics_port}/metrics",
        }


def python_library_dir() -> Path | None:
    """The folder holding this interpreter's shared ``libpython3.X.so``, or None for a static build."""
    import sysconfig

    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        return None
    libdir = sysconfig.get_config_var("LIBDIR")
    return Path(libdir) if libdir else None


def check_serve_environment() -> None:
    """Raise MilmerInputError unless PyTriton can serve correct numbers from this environment.

    Checks: ``pytriton`` importable; numpy < 2 (see the module docstring); a shared libpython,
    whose folder is then added to ``LD_LIBRARY_PATH`` for the Triton process started from here.
    """
    try:
        import pytriton  # noqa: F401
    except ImportError:
        raise MilmerInputError(f"`milmer serve` needs NVIDIA PyTriton (nvidia-pytriton), not installed here; {_INSTALL_HINT}.") from None
    import numpy as np

    if int(np.__version__.split(".")[0]) >= 2:
        raise MilmerInputError(
            f"`milmer serve` needs numpy<2, got numpy {np.__version__}: PyTriton's Python-backend stub is "
            "built for the numpy 1 ABI and would corrupt every tensor silently; "
            f"{_INSTALL_HINT}."
        )
    libdir = python_library_dir()
    if libdir is None:
        raise MilmerInputError(
            f"`milmer serve` needs a Python built with a shared libpython (--enable-shared); {sys.executable} "
            "is static. Use a distribution or pyenv Python built with PYTHON_CONFIGURE_OPTS=--enable-shared."
        )
    paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    if str(libdir) not in paths:
        os.environ["LD_LIBRARY_PATH"] = os.pathsep.join([str(libdir), *paths])


def _bind(triton: Any, pipeline: Any, config: ServeConfig) -> None:
    import numpy as np
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

    inputs, outputs = bag_tensors(pipeline.spec)
    out_dtypes = [t.dtype for t in outputs]

    @batch
    def infer(eeg: np.ndarray, frames: np.ndarray) -> dict[str, np.ndarray]:
        # eeg (B, C, T) float32, frames (B, F, S, S, 3) uint8: Triton checked names, shapes, dtypes
        out = pipeline.score_bags(eeg, frames)
        # ONNX Runtime may return int64 as numpy's 'longlong', which PyTriton does not take for
        # int64 under numpy 1; the view is the same memory with the canonical type.
        return {name: out[name].view(np.dtype(dtype).type) for name, dtype in zip(OUTPUTS, out_dtypes)}

    triton.bind(
        model_name=MODEL_NAME,
        infer_func=infer,
        inputs=[Tensor(name=t.name, dtype=np.dtype(t.dtype).type, shape=t.shape) for t in inputs],
        outputs=[Tensor(name=t.name, dtype=np.dtype(t.dtype).type, shape=t.shape) for t in outputs],
        config=ModelConfig(
            max_batch_size=config.max_batch,
            batcher=DynamicBatcher(max_queue_delay_microseconds=config.max_queue_delay_us),
        ),
        strict=True,
    )
    spec_json = np.array([pipeline.spec.to_json(indent=None).encode()], dtype=np.object_)

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


def serve(
    model_dir: str | os.PathLike[str],
    config: ServeConfig = ServeConfig(),
    *,
    backend: str = "auto",
    device: str = "cpu",
    precision: str = "fp32",
    intra_op_threads: int | None = None,
    on_ready: Callable[[dict[str, str]], None] | None = None,
) -> None:
    """Serve ``model_dir`` until SIGINT/SIGTERM, then stop Triton and return.

    The model is loaded (and checked) before Triton starts; ``on_ready(urls)`` is called once
    Triton reports the model ready. Raises MilmerInputError for a bad model directory, bad
    options or an environment PyTriton cannot serve from (:func:`check_serve_environment`).
    """
    from ..scoring import BagScorer

    check_option("precision", precision, ("fp32", "fp16", "int8"))
    check_serve_environment()
    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

    triton_config = TritonConfig(
        http_address=config.host,
        http_port=config.http_port,
        grpc_address=config.host,
        grpc_port=config.grpc_port,
        metrics_address=config.host,
        metrics_port=config.metrics_port,
        exit_on_error=True,
        exit_timeout_secs=3,  # on stop, wait at most 3 s for open connections and requests
        log_verbose=0,
    )
    # Statistics stay readable (batch sizes); the control endpoints stay token-protected.
    security = TritonSecurityConfig(restricted_endpoints=["shared-memory", "model-repository", "trace", "logging"])
    with BagScorer(model_dir, backend=backend, device=device, precision=precision, intra_op_threads=intra_op_threads) as scorer:  # type: ignore[arg-type]
        with Triton(config=triton_config, security_config=security) as triton:
            _bind(triton, scorer, config)
            triton.run()
            if on_ready is not None:
                on_ready(config.urls())
            _wait_for_stop_signal(triton)


def _wait_for_stop_signal(triton: Any) -> None:
    """Block until SIGINT or SIGTERM (then return: the callers' with-blocks stop Triton and free
    the model), or raise RuntimeError if Triton dies on its own."""
    import signal
    import threading

    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(timeout=1.0):
            if not triton.is_alive():
                raise RuntimeError("Triton Inference Server stopped unexpectedly (see its log above)")
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
