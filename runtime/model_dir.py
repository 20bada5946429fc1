"""Open an exported model directory and check that its pieces agree.

A model directory (written by ``milmer export CKPT --out DIR``) holds::

    spec.json                          the input contract (ModelSpec.save)
    swin.onnx                          frames (N, 3, S, S) float32 -> tokens (N, 49, D) float32
    fusion.onnx                        eeg (B, C, T), tokens (B, F, 49, D) float32
                                       -> logits (B, K), probabilities (B, K), mil_weights (B, F),
                                          selected (B, top_k) int64
    swin.fp16.onnx, fusion.fp16.onnx   optional precision variants (float32 inputs/outputs)
    swin.int8.onnx, fusion.int8.onnx
    engines/                           optional TensorRT engine cache

Both graphs carry the spec JSON in their ``metadata_props`` under ``'milmer.spec'``. Loading
refuses a directory whose graphs were exported with another spec than ``spec.json`` or whose
inputs/outputs do not have the names and sizes the spec promises, and says which file disagrees
in which field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .check import MilmerInputError, check_option, check_path_exists
from .choices import check_graph_precision
from .graph_info import SPEC_METADATA_KEY, Dim, GraphInfo, Signature, read_graph_info
from .hints import export_hint
from .backends.base import PRECISIONS, Precision
from .backends.trt_cache import ENGINE_DIRNAME
from .spec import ModelSpec

__all__ = [
    "SPEC_FILE",
    "SPEC_METADATA_KEY",
    "GRAPHS",
    "GraphInfo",
    "ModelBundle",
    "graph_filename",
    "available_precisions",
    "model_dir_hint",
    "read_graph_info",
    "load_model_dir",
    "open_model_dir",
]

SPEC_FILE = "spec.json"
#: The two graphs of a model, by file stem.
GRAPHS: tuple[str, ...] = ("swin", "fusion")

def graph_filename(stem: str, precision: Precision) -> str:
    """``swin.onnx`` for fp32, ``swin.fp16.onnx`` / ``swin.int8.onnx`` for the variants."""
    return f"{stem}.onnx" if precision == "fp32" else f"{stem}.{precision}.onnx"


def model_dir_hint() -> str:
    """What a model directory holds and how to make one: the way forward of every refusal of one."""
    variants = ", ".join(
        f"{graph_filename('swin', p)}/{graph_filename('fusion', p)}" for p in PRECISIONS if p != "fp32"
    )
    return (
        f"a model directory holds {SPEC_FILE}, swin.onnx and fusion.onnx (optionally {variants} "
        "and an engines/ folder); make one with: milmer export CKPT --out DIR, or `milmer demo` for a demo model"
    )


def available_precisions(model_dir: str | os.PathLike[str]) -> tuple[str, ...]:
    """The precisions whose two graphs are both present in ``model_dir``."""
    model_dir = Path(model_dir)
    return tuple(p for p in PRECISIONS if all((model_dir / graph_filename(g, p)).is_file() for g in GRAPHS))


@dataclass(frozen=True)
class ModelBundle:
    """A checked model directory: the spec and the two graphs at the chosen precision."""

    spec: ModelSpec
    swin_path: Path
    fusion_path: Path
    dir: Path
    precision: Precision = "fp32"

    @property
    def engine_dir(self) -> Path:
        """The TensorRT engine cache of this model."""
        return self.dir / ENGINE_DIRNAME


# ---------------------------------------------------------------------- spec comparison
def _spec_diff(graph: Any, reference: Any, prefix: str = "") -> list[str]:
    """Dotted leaf paths where two ``ModelSpec.to_dict()`` trees differ: ``'face.frame_size 224 vs 192'``."""
    if isinstance(graph, dict) and isinstance(reference, dict):
        out: list[str] = []
        for key in sorted(set(graph) | set(reference)):
            name = f"{prefix}{key}"
            if key not in graph or key not in reference:
                out.append(f"{name} {graph.get(key, '(absent)')!r} vs {reference.get(key, '(absent)')!r}")
            else:
                out.extend(_spec_diff(graph[key], reference[key], name + "."))
        return out
    if graph != reference:
        return [f"{prefix.rstrip('.')} {graph!r} vs {reference!r}"]
    return []


def _check_embedded_spec(path: Path, info: GraphInfo, spec: ModelSpec) -> None:
    text = info.metadata.get(SPEC_METADATA_KEY)
    if text is None:
        raise MilmerInputError(
            f"Invalid model directory: {path.name} carries no {SPEC_METADATA_KEY!r} metadata, so it "
            f"cannot be checked against {SPEC_FILE}; re-export with: milmer export CKPT --out DIR."
        )
    try:
        embedded = ModelSpec.from_json(text)
    except MilmerInputError as err:
        raise MilmerInputError(
            f"Invalid model directory: the spec inside {path.name} is unreadable: {err}"
        ) from None
    diff = _spec_diff(embedded.to_dict(), spec.to_dict())
    if diff:
        raise MilmerInputError(f"spec mismatch between {path.name} and {SPEC_FILE}: {'; '.join(diff)}.")


# ---------------------------------------------------------------------- I/O comparison
# Per graph: name -> (dtype, per axis (expected size or None for any, the spec field it comes from)).
Expected = dict[str, tuple[np.dtype, tuple[tuple[int | None, str], ...]]]


def _expected_io(spec: ModelSpec) -> dict[str, tuple[Expected, Expected]]:
    g, f32, i64 = spec.graph, np.dtype(np.float32), np.dtype(np.int64)
    if len(g.fusion_inputs) != 2 or len(g.fusion_outputs) != 4:
        raise MilmerInputError(
            f"Invalid {SPEC_FILE}: graph.fusion_inputs must name 2 inputs (eeg, tokens) and "
            f"graph.fusion_outputs 4 outputs (logits, probabilities, mil_weights, selected), got "
            f"{list(g.fusion_inputs)} and {list(g.fusion_outputs)}."
        )
    batch = (None, "batch")
    size = (spec.face.frame_size, "face.frame_size")
    tpf = (g.tokens_per_frame, "graph.tokens_per_frame")
    dim = (g.token_dim, "graph.token_dim")
    frames = (spec.face.frames_per_window, "face.frames_per_window")
    classes = (spec.n_classes, "class_names (count)")
    eeg, tokens = g.fusion_inputs
    logits, probs, weights, selected = g.fusion_outputs
    return {
        "swin": (
            {g.backbone_input: (f32, (batch, (3, "RGB channels"), size, size))},
            {g.backbone_output: (f32, (batch, tpf, dim))},
        ),
        "fusion": (
            {
                eeg: (
                    f32,
                    (
                        batch,
                        (spec.eeg.n_channels, "eeg.channels (count)"),
                        (spec.eeg.window_samples, "eeg.window_s * eeg.sfreq"),
                    ),
                ),
                tokens: (f32, (batch, frames, tpf, dim)),
            },
            {
                logits: (f32, (batch, classes)),
                probs: (f32, (batch, classes)),
                weights: (f32, (batch, frames)),
                selected: (i64, (batch, (g.top_k, "graph.top_k"))),
            },
        ),
    }


def _fmt_dims(dims: tuple[Dim, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def _io_diff(kind: str, actual: Signature, expected: Expected) -> list[str]:
    if list(actual) != list(expected):
        return [f"{kind} names {list(actual)} vs {list(expected)}"]
    out: list[str] = []
    for name, (dtype, axes) in expected.items():
        got_dtype, got_dims = actual[name]
        if got_dtype != dtype:
            out.append(f"{kind} {name!r} dtype {got_dtype} vs {dtype}")
        if len(got_dims) != len(axes):
            out.append(f"{kind} {name!r} rank {len(got_dims)} {_fmt_dims(got_dims)} vs {len(axes)}")
            continue
        for axis, (got, (want, field)) in enumerate(zip(got_dims, axes)):
            if want is not None and got != want:
                shown = got if isinstance(got, int) else f"dynamic ({got or '?'})"
                out.append(f"{kind} {name!r} axis {axis} is {shown}, {field} is {want}")
    return out


def _check_io(path: Path, info: GraphInfo, expected: tuple[Expected, Expected]) -> None:
    diff = _io_diff("input", info.inputs, expected[0]) + _io_diff("output", info.outputs, expected[1])
    if diff:
        raise MilmerInputError(f"graph I/O mismatch between {path.name} and {SPEC_FILE}: {'; '.join(diff)}.")


# ---------------------------------------------------------------------- entry point
def load_model_dir(
    path: str | os.PathLike[str], *, precision: Precision = "fp32", names: Mapping[str, str] | None = None
) -> ModelBundle:
    """Open a model directory for ``precision`` and check spec and graphs agree (see module doc).

    ``names``: what errors call the arguments, ``{"model_dir": "--model", "precision": "--precision"}``
    from a command line (default: ``'model_dir'`` and ``'precision'``).
    """
    names = names or {}
    check_graph_precision(precision, names.get("precision", "precision"))
    return open_model_dir(path, precision=precision, names=names)


def open_model_dir(
    path: str | os.PathLike[str], *, precision: Precision, names: Mapping[str, str] | None = None
) -> ModelBundle:
    """:func:`load_model_dir` for a ``precision`` the caller's boundary checked (a request object,
    :class:`~.scoring.BagScorer`): the folder, its spec and graphs are checked, not the argument."""
    names = names or {}
    model_name, precision_name = names.get("model_dir", "model_dir"), names.get("precision", "precision")
    model_dir = Path(path)
    check_path_exists(model_name, model_dir, "dir", hint=model_dir_hint())
    available = available_precisions(model_dir)
    missing = [n for n in (SPEC_FILE, "swin.onnx", "fusion.onnx") if not (model_dir / n).is_file()]
    if SPEC_FILE in missing or not available:
        raise MilmerInputError(
            f"Invalid model directory {str(model_dir)!r}: missing {', '.join(missing)}; {model_dir_hint()}."
        )
    if precision not in available:
        absent = [
            graph_filename(g, precision)
            for g in GRAPHS
            if not (model_dir / graph_filename(g, precision)).is_file()
        ]
        check_option(
            precision_name, precision, available, among=f"the precisions exported to {str(model_dir)!r}",
            hint=f"{precision!r} needs {', '.join(absent)}; export it with: {export_hint(precision)}",
        )
    try:
        spec = ModelSpec.load(model_dir / SPEC_FILE)
    except MilmerInputError as err:
        raise MilmerInputError(f"Invalid model directory: {SPEC_FILE} is unreadable: {err}") from None
    expected = _expected_io(spec)
    paths = {g: model_dir / graph_filename(g, precision) for g in GRAPHS}
    for stem, graph_path in paths.items():
        info = read_graph_info(graph_path)
        _check_embedded_spec(graph_path, info, spec)
        _check_io(graph_path, info, expected[stem])
    return ModelBundle(
        spec=spec, swin_path=paths["swin"], fusion_path=paths["fusion"], dir=model_dir, precision=precision
    )
