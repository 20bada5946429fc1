"""Triton's control endpoints closed to every client, so there is no secret on a command line.

PyTriton 0.7 protects Triton's control endpoints (model repository, shared memory, trace, logging)
with a token it passes on tritonserver's command line
(``--http-restricted-api=APIS:triton-access-token=TOKEN``), which every local user can read in
``/proc/PID/cmdline``: whoever reads it may unload the models, register shared memory or change
logging. ``milmer serve`` needs none of these endpoints once its models are in the repository
(Triton loads them from there at start-up), so tritonserver is given a restriction no request can
meet instead: the header it demands is named with a ``:``, which ends a header name in HTTP/1.1
and is not allowed in an HTTP/2 (gRPC) header name (RFC 9110 §5.1, RFC 9113 §8.2.1). The command
line then holds nothing worth reading. PyTriton's own start-up call to the logging endpoint (it
only warns about verbose logging) is skipped: the server runs with ``log_verbose`` 0.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LOCKED_HEADER", "locked_triton"]

#: The header name tritonserver demands for its control endpoints: no client can send it.
LOCKED_HEADER = "milmer:no-client-can-send-this-header"


def locked_triton() -> type:
    """PyTriton's ``Triton`` with the control endpoints closed to all (see the module docstring)."""
    from pytriton.triton import Triton

    class LockedTriton(Triton):  # type: ignore[misc, valid-type]
        def _prepare_triton_config(self, workspace: Any) -> None:
            super()._prepare_triton_config(workspace)
            for option in ("http-restricted-api", "grpc-restricted-protocol"):
                apis = str(self._triton_server_config[option]).split(":", 1)[0]
                self._triton_server_config[option] = f"{apis}:{LOCKED_HEADER}=closed"

        def _initialize_server(self) -> None:
            super()._initialize_server()
            self._log_level_checker._log_settings = {"log_verbose_level": "0"}

    return LockedTriton
