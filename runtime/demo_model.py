"""Where a model came from (its provenance), and where ``milmer demo`` records the demo model.

Every exported model's spec says where its weights came from (``ModelSpec.provenance``:
``'trained'``, ``'demo'`` or ``'benchmark'``, written by ``milmer export``, ``milmer demo`` and
``milmer bench``). The demo model's predictions say nothing about a real recording and a benchmark
model's weights are random: :func:`model_provenance` tells every output (the printed table, the
CSV and JSON, a warning on stderr), whichever way the folder was given. A spec written before the
field existed is read as it was then, and the outputs say the provenance was inferred: the folder
the demo recorded is the demo model, a folder holding :data:`BENCH_MODEL_MARKER` (which
``milmer bench`` wrote then) a benchmark model, any other a trained one.

``milmer demo`` also records the model folder it exported in ``$MILMER_HOME/demo-model.json``
(``MILMER_HOME`` defaults to ``~/.cache/milmer``) as ``{"model_dir": "/abs/path"}``, through
:func:`record_demo_model`: ``milmer-infer`` without ``--model`` uses that folder
(:func:`default_model_dir`). No trained DEAP weights ship with milmer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .check import MilmerInputError, check_path_exists
from .files import write_json_atomic
from .home import milmer_home

if TYPE_CHECKING:
    from .spec import ModelSpec, Provenance

__all__ = [
    "DEMO_POINTER",
    "DEMO_NOTE",
    "DEMO_WARNING",
    "milmer_home",
    "record_demo_model",
    "recorded_demo_model",
    "default_model_dir",
    "BENCH_MODEL_MARKER",
    "BENCH_MODEL_WARNING",
    "ModelProvenance",
    "model_provenance",
]

#: The file ``milmer bench`` wrote into the model folders it built (paper-size or tiny Swin with
#: RANDOM weights: for timing only) before specs carried ``provenance``; read only for such specs.
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
    check_path_exists("path", model_dir, "dir", hint="give a model directory")
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


@dataclass(frozen=True)
class ModelProvenance:
    """Where a model's weights came from.

    kind:   ``'trained'``, ``'demo'`` (synthetic training data) or ``'benchmark'`` (random weights)
    source: ``'spec'`` (``ModelSpec.provenance``) or ``'inferred'`` (a spec written before the
            field existed: from the demo-model record and the benchmark marker file)
    """

    kind: Provenance
    source: Literal["spec", "inferred"]

    @property
    def demo(self) -> bool:
        return self.kind == "demo"

    @property
    def benchmark(self) -> bool:
        return self.kind == "benchmark"

    def describe(self) -> str:
        """``'demo'``, or ``'demo (inferred: the spec predates provenance)'``."""
        return self.kind if self.source == "spec" else f"{self.kind} (inferred: the spec predates provenance)"


def model_provenance(spec: ModelSpec, model_dir: str | os.PathLike[str] | None) -> ModelProvenance:
    """Where the model in ``model_dir`` (with ``spec``) came from: ``spec.provenance`` when the spec
    states it; else inferred as before the field existed (the folder recorded by
    :func:`record_demo_model` is the demo model, one holding :data:`BENCH_MODEL_MARKER` a benchmark
    model, any other folder, or none, a trained model)."""
    if spec.provenance is not None:
        return ModelProvenance(spec.provenance, "spec")
    if model_dir is not None and _is_recorded_demo_model(model_dir):
        return ModelProvenance("demo", "inferred")
    if model_dir is not None and (Path(model_dir) / BENCH_MODEL_MARKER).is_file():
        return ModelProvenance("benchmark", "inferred")
    return ModelProvenance("trained", "inferred")


def _is_recorded_demo_model(model_dir: str | os.PathLike[str]) -> bool:
    """Whether ``model_dir`` is the folder recorded as the demo model (:func:`record_demo_model`)."""
    demo = recorded_demo_model()
    try:
        return demo is not None and Path(model_dir).resolve() == demo
    except (OSError, RuntimeError):
        return False
