"""The demo model: where ``milmer demo`` records it, and how every output recognises it.

``milmer demo`` trains the paper's architecture at toy size on SYNTHETIC data and records the
model folder it exported in ``$MILMER_HOME/demo-model.json`` (``MILMER_HOME`` defaults to
``~/.cache/milmer``) as ``{"model_dir": "/abs/path"}``, through :func:`record_demo_model`.
``milmer-infer`` without ``--model`` uses that folder (:func:`default_model_dir`). Its predictions
say nothing about a real recording: :func:`is_demo_model` marks them in the printed table, the
CSV and JSON outputs and a warning on stderr, whether the folder came from the pointer or was
passed as ``--model``. No trained DEAP weights ship with milmer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .check import MilmerInputError
from .files import write_json_atomic
from .home import milmer_home

__all__ = [
    "DEMO_POINTER",
    "DEMO_NOTE",
    "DEMO_WARNING",
    "milmer_home",
    "record_demo_model",
    "recorded_demo_model",
    "default_model_dir",
    "is_demo_model",
    "BENCH_MODEL_MARKER",
    "BENCH_MODEL_WARNING",
    "is_bench_model",
]

#: The file ``milmer bench`` writes into the model folders it builds (paper-size or tiny Swin with
#: RANDOM weights: for timing only); ``milmer-infer`` warns when it is given one.
BENCH_MODEL_MARKER = "bench-model.json"
BENCH_MODEL_WARNING = (
    "Warning: this is a BENCHMARK model (built by `milmer bench` with random weights, for timing): its "
    "predictions mean nothing; pass --model DIR with a model exported from a trained checkpoint."
)

#: What every output of the demo model says about itself.
DEMO_NOTE = "DEMO MODEL, trained on synthetic data: not a prediction about this recording"
#: The stderr line of ``milmer-infer`` with the demo model.
DEMO_WARNING = (
    "Warning: this is the DEMO model (trained by `milmer demo` on synthetic data): its predictions say "
    "nothing about this recording; pass --model DIR with a model exported from a checkpoint trained on real data."
)

#: File in :func:`milmer_home` naming the demo model directory.
DEMO_POINTER = "demo-model.json"

_NO_MODEL_HINT = (
    "make one with `milmer demo --out DIR` (a demo model trained on synthetic data) or "
    "`milmer export CKPT --out DIR` (from a trained checkpoint), then pass --model DIR"
)


def record_demo_model(path: str | os.PathLike[str]) -> Path:
    """Remember ``path`` (a model directory) as the model ``milmer-infer`` uses without --model.

    Writes ``{"model_dir": <absolute path>}`` to ``$MILMER_HOME/demo-model.json`` atomically and
    returns the pointer file's path.
    """
    model_dir = Path(path).expanduser().resolve()
    if not model_dir.is_dir():
        raise MilmerInputError(f"Invalid value for 'path': not a model directory: {str(model_dir)!r}.")
    return write_json_atomic(milmer_home() / DEMO_POINTER, {"model_dir": str(model_dir)})


def default_model_dir() -> Path:
    """The model directory recorded by :func:`record_demo_model`.

    Raises MilmerInputError when no demo model was recorded, the pointer file is unreadable, or
    the directory it names is gone, saying how to make a model.
    """
    pointer = milmer_home() / DEMO_POINTER
    if not pointer.is_file():
        raise MilmerInputError(f"No model given (--model) and no demo model was made; {_NO_MODEL_HINT}.")
    try:
        recorded = _read_pointer(pointer)
    except _POINTER_ERRORS as err:
        raise MilmerInputError(
            f"No model given (--model) and the demo-model record {str(pointer)!r} is unreadable "
            f"({err}); {_NO_MODEL_HINT}."
        ) from None
    model_dir = Path(recorded)
    if not model_dir.is_dir():
        raise MilmerInputError(
            f"No model given (--model) and the demo model recorded in {str(pointer)!r} is gone "
            f"({recorded!r}); {_NO_MODEL_HINT}."
        )
    return model_dir


#: What reading an unreadable pointer file raises (missing, not JSON, no or a non-string model_dir).
_POINTER_ERRORS = (OSError, ValueError, KeyError, TypeError)


def _read_pointer(pointer: Path) -> str:
    """The ``model_dir`` string of the pointer file; raises one of :data:`_POINTER_ERRORS`."""
    recorded = json.loads(pointer.read_text())["model_dir"]
    if not isinstance(recorded, str):
        raise TypeError(f"model_dir is {type(recorded).__name__}")
    return recorded


def recorded_demo_model() -> Path | None:
    """The model folder the pointer names (resolved), or None when there is no readable pointer."""
    try:
        return Path(_read_pointer(milmer_home() / DEMO_POINTER)).resolve()
    except _POINTER_ERRORS:
        return None


def is_bench_model(model_dir: str | os.PathLike[str] | None) -> bool:
    """Whether ``model_dir`` holds :data:`BENCH_MODEL_MARKER` (a random-weight benchmark model)."""
    return model_dir is not None and (Path(model_dir) / BENCH_MODEL_MARKER).is_file()


def is_demo_model(model_dir: str | os.PathLike[str] | None) -> bool:
    """Whether ``model_dir`` is the folder recorded as the demo model (:func:`record_demo_model`)."""
    if model_dir is None:
        return False
    demo = recorded_demo_model()
    try:
        return demo is not None and Path(model_dir).resolve() == demo
    except (OSError, RuntimeError):
        return False
