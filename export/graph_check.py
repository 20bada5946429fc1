"""Every graph milmer writes is valid ONNX: the checker's full check and strict shape inference.

ONNX Runtime runs graphs that a strict consumer rejects (a ``value_info`` type that contradicts
the tensor's producer, for example); TensorRT's ONNX parser, Polygraphy and ONNX's own tools
need not. :func:`check_graph` runs what the ONNX spec defines as validity
(``onnx.checker.check_model(model, full_check=True)``: the checker plus shape inference in
strict mode) and, in addition, type checking with data propagation
(``onnx.shape_inference.infer_shapes(check_type=True, strict_mode=True, data_prop=True)``), so
every inferred element type and shape must agree with the ones the graph declares.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

__all__ = ["InvalidGraphError", "check_graph", "check_graphs"]


class InvalidGraphError(RuntimeError):
    """A graph milmer wrote fails the ONNX checker or strict shape inference (a milmer bug)."""


def check_graph(model: onnx.ModelProto | str | os.PathLike[str], *, name: str | None = None) -> None:
    """Raise :class:`InvalidGraphError` unless ``model`` (a ModelProto or an .onnx path, < 2 GB)
    passes ``check_model(full_check=True)`` and strict, type-checking shape inference."""
    import onnx

    if not isinstance(model, onnx.ModelProto):
        name = name or Path(model).name
        model = onnx.load(str(model))
    label = name or model.graph.name
    try:
        onnx.checker.check_model(model, full_check=True)
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise InvalidGraphError(f"{label} is not a valid ONNX graph: {err}") from None


def check_graphs(folder: str | os.PathLike[str]) -> list[str]:
    """:func:`check_graph` on every ``*.onnx`` under ``folder``; returns their relative paths."""
    folder = Path(folder)
    checked = []
    for path in sorted(folder.rglob("*.onnx")):
        rel = path.relative_to(folder).as_posix()
        check_graph(path, name=rel)
        checked.append(rel)
    return checked
