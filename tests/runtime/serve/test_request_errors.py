"""The adaptation of PyTriton's proxy model that refuses one request of a batch (without a server:
the proxy's source is checked and its response builder run with a stand-in of Triton's Python
backend; the real server's answers are tested in test_resilience.py)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import types

import numpy as np
import pytest

from milmer.runtime.serve.request_errors import ERROR_OUTPUT, install, refusal


def test_refusal_holds_the_code_and_message():
    answer = refusal("Invalid value for input 'eeg': x")
    assert list(answer) == [ERROR_OUTPUT]
    assert answer[ERROR_OUTPUT].tolist() == [b"INVALID_ARG Invalid value for input 'eeg': x"]
    assert refusal("later", "UNAVAILABLE")[ERROR_OUTPUT].item(0) == b"UNAVAILABLE later"
    with pytest.raises(ValueError, match=r"Invalid value for 'code': expected one of 'INVALID_ARG', 'UNAVAILABLE', got 'INTERNAL'"):
        refusal("x", "INTERNAL")


def test_install_refuses_a_proxy_it_was_not_written_for(tmp_path):
    pytest.importorskip("pytriton")
    (tmp_path / "model.py").write_text("def _wrap_response(response, names, outputs):\n    return None\n")
    with pytest.raises(RuntimeError, match=r"has no '_wrap_response' as 0.7 wrote it; install the serve extra's PyTriton"):
        install(tmp_path)
    assert "_milmer" not in (tmp_path / "model.py").read_text()


def _stub_pb_utils() -> types.ModuleType:
    """What the wrapper uses of ``triton_python_backend_utils``, recording its arguments."""

    class TritonError:
        INVALID_ARG, UNAVAILABLE = "code-invalid-arg", "code-unavailable"

        def __init__(self, message, code=None):
            self.message, self.code = message, code

    class InferenceResponse:
        def __init__(self, output_tensors, error=None):
            self.output_tensors, self.error = output_tensors, error

    class Tensor:
        def __init__(self, name, value):
            self.name, self.value = name, value

    module = types.ModuleType("triton_python_backend_utils")
    module.TritonError, module.InferenceResponse, module.Tensor = TritonError, InferenceResponse, Tensor
    module.triton_string_to_numpy = lambda name: {"TYPE_FP32": np.float32}[name]
    return module


def test_installed_proxy_turns_a_refusal_into_its_requests_error(tmp_path, monkeypatch):
    pytest.importorskip("pytriton")
    import pytriton.proxy

    proxy = tmp_path / "proxy1"
    shutil.copytree(pytriton.proxy.__path__[0], proxy, ignore=shutil.ignore_patterns("__pycache__"))
    install(proxy)
    install(proxy)  # idempotent
    assert (proxy / "model.py").read_text().count("_wrap_response = _milmer_wrap_response") == 1
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _stub_pb_utils())
    spec = importlib.util.spec_from_file_location("proxy1.model", proxy / "model.py", submodule_search_locations=None)
    monkeypatch.setitem(sys.modules, "proxy1", types.ModuleType("proxy1"))
    sys.modules["proxy1"].__path__ = [str(proxy)]
    model = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "proxy1.model", model)
    spec.loader.exec_module(model)

    outputs = {"probabilities": {"data_type": "TYPE_FP32"}}
    refused = model._wrap_response(model.Response(data=refusal("bad eeg")), ["probabilities"], outputs)
    assert refused.output_tensors == [] and refused.error.message == "bad eeg" and refused.error.code == "code-invalid-arg"
    later = model._wrap_response(model.Response(data=refusal("later", "UNAVAILABLE")), ["probabilities"], outputs)
    assert later.error.code == "code-unavailable"
    scored = model._wrap_response(model.Response(data={"probabilities": np.ones((1, 4))}), ["probabilities"], outputs)
    assert scored.error is None and [t.name for t in scored.output_tensors] == ["probabilities"]
    assert scored.output_tensors[0].value.dtype == np.float32
