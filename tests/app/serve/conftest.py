"""The commands against a real ``milmer serve``: the server fixture of tests/runtime/serve/conftest.py
(loaded by path: tests run with --import-mode=importlib). CI runs these in the serve environment
(.ci/run); elsewhere the tests that need a server skip with the reason."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _runtime_serve_conftest():
    name = "milmer_tests_runtime_serve_conftest"
    if name not in sys.modules:
        path = Path(__file__).parents[2] / "runtime" / "serve" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_serve = _runtime_serve_conftest()
# Fixtures (pytest collects them from this module's names).
haar_model = _serve.haar_model
server = _serve.server
