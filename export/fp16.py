"""The float16 variant of a float32 graph (``swin.fp16.onnx``, ``fusion.fp16.onnx``).

``onnxruntime.transformers.float16`` with ``keep_io_types=True``, so inputs and outputs stay
float32 and the runtime feeds the same arrays. The ops of :func:`fp16_op_block_list` stay
float32: the converter's default block list (TopK among them) plus LayerNormalization. TensorRT
builds these graphs strongly typed (TensorRT 11 has no other mode), so each layer runs in the
type the graph gives it, and a float16 LayerNormalization would sum squares of the residual
stream in float16, where they overflow (max 65504). Softmax stays float16 so attention remains
one float16 MatMul-Softmax-MatMul block that TensorRT can fuse; its max-subtracted exponentials
cannot overflow. For GPUs (CUDA / TensorRT): on a CPU it runs but is no faster than fp32.

The converter's output is then made valid ONNX (:func:`~.graph_check.check_graph`): it keeps the
weights of blocked ops float32 but rewrites their ``value_info`` to float16, which contradicts
the initializers (``Inferred elem type differs from existing elem type: (1) vs (10)``; 82 of
them in a Swin-T), and it puts a Cast to float32 after each of those float32 weights, which does
nothing. :func:`drop_initializer_noise` removes both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..runtime.spec import ModelSpec
from .onnx_graphs import load_graph, save_with_spec

__all__ = ["FP16_KEEP_FLOAT32", "fp16_op_block_list", "convert_fp16", "drop_initializer_noise"]

#: Op types kept in float32 in the fp16 graphs, besides the converter's own default block list.
FP16_KEEP_FLOAT32: tuple[str, ...] = ("LayerNormalization",)


def fp16_op_block_list() -> list[str]:
    """The converter's default block list (ops without float16 kernels, TopK) + :data:`FP16_KEEP_FLOAT32`."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST

    return list(dict.fromkeys([*DEFAULT_OP_BLOCK_LIST, *FP16_KEEP_FLOAT32]))


def convert_fp16(src: str | os.PathLike[str], dst: str | os.PathLike[str], spec: ModelSpec) -> Path:
    """Write the float16 version of graph ``src`` to ``dst``: float32 I/O, the ops of
    :func:`fp16_op_block_list` (LayerNormalization, TopK, ...) in float32, spec embedded; the
    result passes :func:`~.graph_check.check_graph`."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(load_graph(Path(src)), keep_io_types=True, op_block_list=fp16_op_block_list())
    drop_initializer_noise(model.graph)
    _sort_topologically(model.graph)
    return save_with_spec(model, Path(dst), spec)

def _sort_topologically(graph: Any) -> None:
    """Reorder ``graph.node`` so every node follows its producers, as the ONNX spec requires.

    The fp16 converter appends the Cast nodes it inserts (graph I/O, float32 islands) at the end.
    Stable: nodes already in order keep their order.
    """
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            raise RuntimeError(f"fp16 graph has a cycle or a missing input at node {pending[0].name!r}")
        ids = {id(n) for n in ready}
        for node in ready:
            ordered.append(node)
            known.update(node.output)
        pending = [n for n in pending if id(n) not in ids]
    nodes = [type(n)() for n in ordered]
    for new, old in zip(nodes, ordered):
        new.CopyFrom(old)
    del graph.node[:]
    graph.node.extend(nodes)


def drop_initializer_noise(graph: Any) -> tuple[int, int]:
    """Make ``graph``'s declared types agree with its initializers; returns (value_info entries
    removed, Casts removed).

    - A ``value_info`` entry for an initializer is dropped: the initializer itself declares the
      type and shape (the converter leaves float16 there for the float32 weights it keeps).
    - A ``Cast`` of an initializer to the type it already has is dropped and its consumers read
      the initializer (a graph output keeps its Cast).
    """
    initializers = {t.name: t.data_type for t in graph.initializer}
    kept_names = {o.name for o in graph.output} | _read_by_subgraphs(graph)
    noop = {
        n.output[0]: n.input[0]
        for n in graph.node
        if n.op_type == "Cast" and n.input[0] in initializers and n.output[0] not in kept_names
        and any(a.name == "to" and a.i == initializers[n.input[0]] for a in n.attribute)
    }  # fmt: skip
    kept_nodes = [n for n in graph.node if not (n.op_type == "Cast" and n.output[0] in noop)]
    for node in kept_nodes:
        for i, name in enumerate(node.input):
            node.input[i] = noop.get(name, name)
    removed_casts = len(graph.node) - len(kept_nodes)
    del graph.node[:]
    graph.node.extend(kept_nodes)
    kept_info = [v for v in graph.value_info if v.name not in initializers and v.name not in noop]
    removed_info = len(graph.value_info) - len(kept_info)
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    return removed_info, removed_casts


def _read_by_subgraphs(graph: Any) -> set[str]:
    """Names the nodes of ``graph``'s subgraphs (If/Loop/Scan bodies) read, at any depth."""
    names: set[str] = set()
    for node in graph.node:
        for attr in node.attribute:
            for sub in [attr.g] * attr.HasField("g") + list(attr.graphs):
                names |= {i for n in sub.node for i in n.input} | _read_by_subgraphs(sub)
    return names
