"""Reduced-precision variants of the fp32 graphs, and how well they agree with fp32.

- **fp16** (``swin.fp16.onnx``, ``fusion.fp16.onnx``): ``onnxruntime.transformers.float16``
  with ``keep_io_types=True``, so inputs and outputs stay float32 and the runtime feeds the same
  arrays. The ops of :func:`fp16_op_block_list` stay float32: the converter's default block list
  (TopK among them) plus LayerNormalization. TensorRT builds these graphs strongly typed
  (TensorRT 11 has no other mode), so each layer runs in the type the graph gives it, and a
  float16 LayerNormalization would sum squares of the residual stream in float16, where they
  overflow (max 65504).
  Softmax stays float16 so attention remains one float16 MatMul-Softmax-MatMul block that
  TensorRT can fuse; its max-subtracted exponentials cannot overflow. For GPUs (CUDA /
  TensorRT): on a CPU it runs but is no faster than fp32.
- **int8** (``swin.int8.onnx``, ``fusion.int8.onnx``): ONNX Runtime *dynamic* quantisation of
  the MatMul/Gemm weights (int8, per output channel); activations are quantised per batch at
  run time, so no calibration set is needed. Chosen for CPUs over static QDQ quantisation
  (calibrated on demo frames): on a full-size Swin-T dynamic int8 ran ~1.9x faster than fp32 on
  this project's 2-core AVX-512 CPU and stayed closer to fp32 (tokens max abs 0.15 vs 0.38,
  cosine 0.9995 vs 0.999); static QDQ was slower than dynamic. TensorRT cannot run these graphs
  (no MatMulInteger): TensorRT uses fp32 or fp16.

Agreement is measured end to end (swin -> fusion) against the fp32 graphs in ONNX Runtime on
the same bags: top-1 agreement, ``selected`` agreement and max abs differences.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..runtime.model_dir import GRAPHS, graph_filename
from ..runtime.spec import ModelSpec
from .inputs import InputSet
from .onnx_graphs import embed_spec
from .verify import OnnxModel

__all__ = [
    "Variant",
    "VARIANTS",
    "FP16_KEEP_FLOAT32",
    "Agreement",
    "fp16_op_block_list",
    "convert_fp16",
    "quantize_int8",
    "make_variant",
    "agreement",
]

Variant = Literal["fp16", "int8"]
VARIANTS: tuple[str, ...] = ("fp16", "int8")


def _load(path: Path):  # type: ignore[no-untyped-def]
    import onnx

    return onnx.load(str(path))


def _save_with_spec(model_proto: object, path: Path, spec: ModelSpec) -> Path:
    import onnx

    embed_spec(model_proto, spec)  # type: ignore[arg-type]
    onnx.save_model(model_proto, str(path), save_as_external_data=False)  # type: ignore[arg-type]
    return path


#: Op types kept in float32 in the fp16 graphs, besides the converter's own default block list.
FP16_KEEP_FLOAT32: tuple[str, ...] = ("LayerNormalization",)


def fp16_op_block_list() -> list[str]:
    """The converter's default block list (ops without float16 kernels, TopK) + :data:`FP16_KEEP_FLOAT32`."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST

    return list(dict.fromkeys([*DEFAULT_OP_BLOCK_LIST, *FP16_KEEP_FLOAT32]))


def convert_fp16(src: str | os.PathLike[str], dst: str | os.PathLike[str], spec: ModelSpec) -> Path:
    """Write the float16 version of graph ``src`` to ``dst``: float32 I/O, the ops of
    :func:`fp16_op_block_list` (LayerNormalization, TopK, ...) in float32, spec embedded."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(_load(Path(src)), keep_io_types=True, op_block_list=fp16_op_block_list())
    _sort_topologically(model.graph)
    return _save_with_spec(model, Path(dst), spec)


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


def _prepare_for_quantization(model_proto: Any) -> Any:
    """A copy of the graph that ONNX Runtime's dynamic quantiser handles correctly.

    - No ``value_info``: the quantiser rewrites Gemm as MatMul with transposed weights under the
      same names and then re-runs shape inference, which the exporter's stale shapes contradict.
    - No initializer used by two nodes: the exporter merges identical weights (e.g. the cloned
      layers of an untrained encoder), and the quantiser would transpose a shared weight once
      per Gemm, silently giving one of them the wrong matrix.
    """
    import copy

    proto = copy.deepcopy(model_proto)
    del proto.graph.value_info[:]
    initializers = {t.name: t for t in proto.graph.initializer}
    seen: dict[str, int] = {}
    for node in proto.graph.node:
        for i, name in enumerate(node.input):
            if name not in initializers:
                continue
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                clone = copy.deepcopy(initializers[name])
                clone.name = f"{name}.use{seen[name]}"
                proto.graph.initializer.append(clone)
                node.input[i] = clone.name
    return proto


def quantize_int8(src: str | os.PathLike[str], dst: str | os.PathLike[str], spec: ModelSpec) -> Path:
    """Write the dynamically int8-quantised version of graph ``src`` to ``dst`` (spec embedded)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    prepared, quantized = dst.with_name(dst.name + ".in.tmp"), dst.with_name(dst.name + ".tmp")
    try:
        onnx.save_model(_prepare_for_quantization(_load(Path(src))), str(prepared))
        quantize_dynamic(
            prepared, quantized, op_types_to_quantize=["MatMul", "Gemm"], per_channel=True, weight_type=QuantType.QInt8
        )
        # The quantiser drops metadata_props; the runtime needs the spec in every graph.
        return _save_with_spec(_load(quantized), dst, spec)
    finally:
        prepared.unlink(missing_ok=True)
        quantized.unlink(missing_ok=True)


def make_variant(model_dir: str | os.PathLike[str], precision: Variant, spec: ModelSpec) -> tuple[Path, Path]:
    """Write both graphs of ``precision`` next to the fp32 ones in ``model_dir``; returns their paths."""
    model_dir = Path(model_dir)
    convert = convert_fp16 if precision == "fp16" else quantize_int8
    paths = [
        convert(model_dir / graph_filename(g, "fp32"), model_dir / graph_filename(g, precision), spec) for g in GRAPHS
    ]
    return paths[0], paths[1]


@dataclass(frozen=True)
class Agreement:
    """A variant vs fp32 on the same bags (both in ONNX Runtime on the CPU).

    top1_agreement:     fraction of bags with the same arg-max class
    selected_agreement: fraction of bags with the same selected frames
    max_abs_*:          largest absolute difference of that output
    finite:             every variant output is finite (no fp16 overflow)
    """

    precision: str
    inputs: str
    n_bags: int
    top1_agreement: float
    selected_agreement: float
    max_abs_probabilities: float
    max_abs_logits: float
    max_abs_tokens: float
    finite: bool


def agreement(
    model_dir: str | os.PathLike[str], precisions: list[Variant], spec: ModelSpec, input_sets: list[InputSet]
) -> list[Agreement]:
    """One :class:`Agreement` per precision and input set for the graphs in ``model_dir``."""
    model_dir = Path(model_dir)
    logits, probs, _, selected = spec.graph.fusion_outputs

    def graphs(precision: str) -> list[Path]:
        return [model_dir / graph_filename(g, precision) for g in GRAPHS]

    with OnnxModel(*graphs("fp32"), spec) as ref_model:
        references = [ref_model.run(inputs) for inputs in input_sets]
    results = []
    for precision in precisions:
        with OnnxModel(*graphs(precision), spec, precision=precision) as model:
            for inputs, (ref_tokens, ref) in zip(input_sets, references):
                tokens, out = model.run(inputs)
                finite = all(np.isfinite(a).all() for a in (tokens, out[logits], out[probs]))
                results.append(
                    Agreement(
                        precision=precision,
                        inputs=inputs.name,
                        n_bags=inputs.n_bags,
                        top1_agreement=float(np.mean(out[probs].argmax(1) == ref[probs].argmax(1))),
                        selected_agreement=float(np.mean((out[selected] == ref[selected]).all(1))),
                        max_abs_probabilities=float(np.abs(out[probs] - ref[probs]).max()),
                        max_abs_logits=float(np.abs(out[logits] - ref[logits]).max()),
                        max_abs_tokens=float(np.abs(tokens - ref_tokens).max()),
                        finite=bool(finite),
                    )
                )
    return results
