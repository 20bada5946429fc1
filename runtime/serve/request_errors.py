"""One request of a batch refused with its own error (HTTP 400), the others answered.

PyTriton 0.7 can fail a whole batch only: an exception raised by the bound function becomes one
``TritonModelException`` (HTTP 500, with a traceback) for every request Triton's dynamic batcher put
into the call, and its proxy model (``pytriton/proxy/model.py``, run by Triton's Python backend)
builds each response from the outputs alone. Triton's Python backend itself takes a response that
carries an error, ``InferenceResponse(error=TritonError(message, code))``, and Triton's HTTP and
gRPC front ends answer it with the status of the code (``INVALID_ARG``: HTTP 400 and gRPC
``INVALID_ARGUMENT``; ``UNAVAILABLE``: HTTP 503), for that request only.

This module bridges the two: the bound function answers a refused request with :func:`refusal`,
an output named :data:`ERROR_OUTPUT` holding the error code and message, and
:func:`install` appends to the proxy model copied into the model repository a wrapper of its
response builder that turns such an answer into that error response. The proxy source must be the
one this was written against (PyTriton 0.7): :func:`install` checks for the builder's definition
and its call site and refuses to start the server otherwise, rather than serve refusals as empty
answers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..check import check_option

__all__ = ["ERROR_OUTPUT", "CODES", "refusal", "install"]

#: Output name of a refusal; not a declared output of the model, so no client asks for it.
ERROR_OUTPUT = "milmer.error"
#: Error codes of Triton's Python backend (``pb_utils.TritonError``) a refusal may carry.
CODES = ("INVALID_ARG", "UNAVAILABLE")

# The definition and the call site in pytriton/proxy/model.py (0.7) the wrapper replaces.
_BUILDER = "def _wrap_response(response: Response, requested_outputs_names, model_outputs_dict):"
_CALL = "_wrap_response(response, request.requested_output_names(), self._model_outputs_dict)"

# Appended to the copied proxy model (it runs inside Triton's Python-backend stub, where
# triton_python_backend_utils is importable). The handler looks the builder up by its global name
# at call time, so rebinding the name is enough.
_WRAPPER = f'''

# Added by milmer (milmer/runtime/serve/request_errors.py): an answer holding only the output
# {ERROR_OUTPUT!r} ("CODE message") becomes an error response of that code for its request alone.
def _milmer_wrap_response(response, requested_outputs_names, model_outputs_dict, _wrap=_wrap_response):
    refusal = None if response.data is None else response.data.get({ERROR_OUTPUT!r})
    if refusal is None:
        return _wrap(response, requested_outputs_names, model_outputs_dict)
    code, _, message = refusal.item(0).decode("utf-8").partition(" ")
    error = pb_utils.TritonError(message, getattr(pb_utils.TritonError, code))  # pytype: disable=module-attr
    return pb_utils.InferenceResponse(output_tensors=[], error=error)  # pytype: disable=module-attr


_wrap_response = _milmer_wrap_response
'''


def refusal(message: str, code: str = "INVALID_ARG") -> dict[str, np.ndarray]:
    """The bound function's answer refusing one request: ``{ERROR_OUTPUT: (1,) bytes "CODE message"}``.

    ``code`` is one of :data:`CODES` (``INVALID_ARG``: the client's input is wrong, HTTP 400;
    ``UNAVAILABLE``: retry elsewhere or later, HTTP 503). Served only where :func:`install` adapted
    the model's proxy; elsewhere it would come back as an answer without outputs.
    """
    check_option("code", code, CODES)
    return {ERROR_OUTPUT: np.array([f"{code} {message}".encode()], dtype=np.object_)}


def install(model_version_dir: str | Path) -> None:
    """Adapt the proxy model in ``model_version_dir`` (``<repository>/<model>/<version>``, written
    by PyTriton's local model store before tritonserver starts) so :func:`refusal` answers become
    per-request errors. Idempotent. Raises RuntimeError when the proxy is not PyTriton 0.7's."""
    path = Path(model_version_dir) / "model.py"
    source = path.read_text(encoding="utf-8")
    if "_milmer_wrap_response" in source:
        return
    if _BUILDER not in source or _CALL not in source:
        import pytriton

        raise RuntimeError(
            f"`milmer serve` adapts PyTriton 0.7's proxy model to refuse one request of a batch, but {path} "
            f"(nvidia-pytriton {getattr(pytriton, '__version__', '?')}) has no '_wrap_response' as 0.7 wrote it; "
            "install the serve extra's PyTriton: pip install 'nvidia-pytriton>=0.7,<0.8'."
        )
    path.write_text(source + _WRAPPER, encoding="utf-8")
