"""The serve modules import without PyTriton, tritonclient, torch or the heavy runtime libraries."""

import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    [
        f"milmer.runtime.serve.{name}"
        for name in ("protocol", "server", "client", "study", "binding", "hygiene", "supervisor", "lockdown", "request_errors")
    ],
)
def test_serve_module_imports_lazily(module):
    code = f"import {module}, sys, json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout.strip().splitlines()[-1])}
    heavy = {"pytriton", "tritonclient", "torch", "cv2", "mne", "onnxruntime", "onnx", "gevent", "grpc"}
    assert not heavy & loaded, sorted(heavy & loaded)
