"""``milmer serve --model DIR``: the exported model behind NVIDIA Triton Inference Server.

PyTriton starts a real ``tritonserver`` (HTTP, gRPC, Prometheus metrics) whose Python backend hands
each batch that Triton's dynamic batcher formed to :meth:`~.scoring.BagScorer.score_bags` in this process:
the frames of all bags go through the backbone in one call, then the fusion graph scores the
bags. Requests from many clients are therefore scored together, exactly like the batched bags
of one local recording. Triton checks every request against the declared inputs
(:mod:`.protocol`) and answers a wrong shape or dtype with its own error before the model runs;
NaN/Inf in ``eeg`` is refused by the model (:mod:`.binding`).

The models are written to the workspace's model repository before ``tritonserver`` starts
(PyTriton's local model store), so Triton loads them before it opens its ports and
``/v2/health/ready`` means the models are ready. :mod:`.supervisor` restarts a crashed
``tritonserver`` and drains on SIGINT/SIGTERM; :mod:`.hygiene` refuses ports in use, keeps the
request data private to the serving user and removes what each run (and a killed server) left.

Ports (Triton's defaults): HTTP 8000 (KServe v2 API, ``/v2/health/ready``, ``/v2/health/live``,
``/v2/models/milmer/stats``), gRPC 8001, Prometheus metrics 8002 (``/metrics``). The statistics
endpoint is open (batch sizes), model-repository, shared-memory, trace and logging control are not.

Environment: ``nvidia-pytriton`` 0.7's Python-backend stub is compiled against the numpy 1 C ABI
(its pybind11 predates numpy 2) and runs an isolated interpreter: with numpy 2 installed the tensors
it passes are silently corrupted (inputs arrive as zeros, outputs come back empty). The server
therefore refuses to start under numpy >= 2; run it from an environment with ``numpy<2`` (the
``serve`` extra pins it through PyTriton's own requirement; docs/serving.md). The stub also loads
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

from ..check import MilmerInputError, check_int, check_number, check_option, check_unique
from .binding import Gate, bind_models
from .lockdown import locked_triton
from .hygiene import Leftovers, check_ports_free, private_umask, remove_stale, workspace_path
from .protocol import MODEL_NAME, SPEC_MODEL_NAME
from .supervisor import StopReport, StopSignals, Supervisor

__all__ = ["ServeConfig", "StopReport", "check_serve_environment", "serve", "python_library_dir", "wait_models_ready"]

_INSTALL_HINT = (
    "install the serve extra into an environment with numpy<2: "
    "pip install 'milmer[cpu,serve]' (see docs/serving.md)"
)


@dataclass(frozen=True)
class ServeConfig:
    """Where the server listens and how Triton's dynamic batcher forms batches.

    host:               address for HTTP, gRPC and metrics ('127.0.0.1': this machine only;
                        '0.0.0.0': every interface)
    http_port, grpc_port, metrics_port: Triton's ports (defaults 8000, 8001, 8002)
    max_batch:          most bags Triton puts into one call of the model
    max_queue_delay_us: how long (microseconds) the batcher may hold a request to fill a batch
    drain_timeout_s:    on SIGINT/SIGTERM, how long batches in progress may take to finish
    """

    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    max_batch: int = 8
    max_queue_delay_us: int = 2000
    drain_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("http_port", "grpc_port", "metrics_port"):
            check_int(f"--{name.replace('_', '-')}", getattr(self, name), low=1, high=65535, hint="a TCP port")
        ports = (self.http_port, self.grpc_port, self.metrics_port)
        check_unique(("--http-port", "--grpc-port", "--metrics-port"), ports, "port")
        check_int("--max-batch", self.max_batch, low=1)
        check_int("--max-queue-delay-us", self.max_queue_delay_us, low=0)
        check_number("drain_timeout_s", self.drain_timeout_s, low=0, high=3600, low_open=True, high_open=True, unit="seconds")

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


def serve(
    model_dir: str | os.PathLike[str],
    config: ServeConfig = ServeConfig(),
    *,
    backend: str = "auto",
    device: str = "cpu",
    precision: str = "fp32",
    intra_op_threads: int | None = None,
    on_ready: Callable[[dict[str, str]], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> StopReport:
    """Serve ``model_dir`` until SIGINT/SIGTERM, then drain, stop Triton and return how it went.

    Before anything starts: the ports must be free and leftovers of servers killed earlier are
    removed (:func:`~.hygiene.remove_stale`). The model is loaded (and checked) once;
    ``on_ready(urls)`` is called when Triton answers *and* both models report ready. A crash of
    tritonserver is followed by a restart (:mod:`.supervisor`); ``log`` (default: stderr) gets
    one line per restart, cleanup and stop. Everything the server creates is private to the
    serving user (umask 077). Raises MilmerInputError for a bad model directory, bad options,
    ports in use or an environment PyTriton cannot serve from (:func:`check_serve_environment`);
    KeyboardInterrupt for a stop signal during start-up (after cleaning up).
    """
    from ..scoring import BagScorer

    check_option("precision", precision, ("fp32", "fp16", "int8"))
    check_serve_environment()
    ports = {"--http-port": config.http_port, "--grpc-port": config.grpc_port, "--metrics-port": config.metrics_port}
    check_ports_free(config.host, ports)
    from pytriton.constants import PYTRITON_HOME
    from pytriton.triton import TritonConfig, TritonLifecyclePolicy, TritonSecurityConfig

    # The models are written to the workspace's repository before tritonserver starts, which loads
    # them before it opens its ports: /v2/health/ready is 200 only once they are ready.
    policy = TritonLifecyclePolicy(launch_triton_on_startup=False, local_model_store=True)
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    triton_config = TritonConfig(
        http_address=config.host,
        http_port=config.http_port,
        grpc_address=config.host,
        grpc_port=config.grpc_port,
        metrics_address=config.host,
        metrics_port=config.metrics_port,
        exit_on_error=True,
        exit_timeout_secs=3,  # after the drain; Triton waits this long for clients' open connections
        log_verbose=0,
    )
    # Statistics stay readable (batch sizes); the control endpoints are closed (.lockdown).
    security = TritonSecurityConfig(restricted_endpoints=["shared-memory", "model-repository", "trace", "logging"])
    with StopSignals() as signals, private_umask():
        for path in remove_stale(PYTRITON_HOME):
            say(f"Removed what a server killed earlier left behind: {path}")
        scorer_options = dict(backend=backend, device=device, precision=precision, intra_op_threads=intra_op_threads)
        with BagScorer(model_dir, **scorer_options) as scorer:  # type: ignore[arg-type]

            def start_run(run: int) -> tuple[Any, Gate, Leftovers]:
                leftovers = Leftovers(workspace_path(PYTRITON_HOME, run))
                gate = Gate()
                triton = locked_triton()(
                    config=triton_config, workspace=leftovers.workspace, security_config=security, triton_lifecycle_policy=policy
                )
                try:
                    bind_models(triton, scorer, max_batch=config.max_batch, max_queue_delay_us=config.max_queue_delay_us, gate=gate)
                    triton.run()
                    wait_models_ready(config.urls()["http"], (MODEL_NAME, SPEC_MODEL_NAME), triton)
                    leftovers.make_private()
                except BaseException:
                    triton.stop()
                    leftovers.clean()
                    raise
                return triton, gate, leftovers

            supervisor = Supervisor(signals, drain_timeout_s=config.drain_timeout_s, log=say)
            return supervisor.run(start_run, lambda: on_ready(config.urls()) if on_ready is not None else None)


def wait_models_ready(url: str, models: tuple[str, ...], triton: Any, timeout_s: float = 120.0) -> None:
    """Block until every model in ``models`` answers ready at ``url`` (Triton's own
    ``/v2/health/ready`` says 200 before models loaded through the API are), or raise RuntimeError."""
    import time

    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=url.removeprefix("http://"), connection_timeout=5.0, network_timeout=5.0)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if not triton.is_alive():
                raise RuntimeError("Triton Inference Server stopped while loading the models (see its log above)")
            try:
                if all(client.is_model_ready(name) for name in models):
                    return
            except Exception:  # noqa: BLE001 - not answering yet
                pass
            time.sleep(0.1)
    finally:
        client.close()
    raise RuntimeError(f"models {', '.join(models)} not ready after {timeout_s:g} s (see Triton's log above)")
