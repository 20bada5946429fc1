"""int8 variants of the float32 graphs (``swin.int8.onnx``, ``fusion.int8.onnx``).

- **static** (``milmer export --int8 static``): QDQ graphs from ONNX Runtime's
  ``quantize_static``, int8 weights per output channel, activation ranges calibrated on real face
  crops (:mod:`.calibration`); every product with a constant weight is quantised, attention's
  activation x activation products stay float32. OpenVINO runs these with its int8 kernels.
- **dynamic** (``--int8 dynamic``): ONNX Runtime *dynamic* quantisation of the MatMul/Gemm
  weights (int8, per output channel); activations are quantised per batch at run time, so no
  calibration set is needed. ONNX Runtime runs it (MatMulInteger), OpenVINO too; TensorRT cannot
  (TensorRT uses fp32 or fp16, or the static QDQ graphs). These CPU-only graphs are opset 20
  with ONNX's own ``Gelu`` node where the exporter wrote GELU as five element-wise nodes
  (:func:`with_onnx_gelu`): ONNX Runtime runs one kernel instead of five passes over the MLP
  activations (Swin-T, 10 frames, 2 AVX2 cores: 835 -> 732 ms). The fp32/fp16 graphs stay
  opset 18 for TensorRT.

Both kinds use 7-bit weights (:data:`REDUCE_RANGE_WHY`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..runtime.check import check_compare, check_nonempty
from ..runtime.model_dir import GRAPHS, graph_filename
from ..runtime.spec import ModelSpec
from .onnx_graphs import load_graph, save_with_spec
from .verify import OnnxModel

__all__ = [
    "REDUCE_RANGE_WHY",
    "Int8Method",
    "INT8_METHODS",
    "GELU_OPSET",
    "with_onnx_gelu",
    "quantize_int8",
    "quantize_int8_static",
    "static_calibration_feeds",
    "make_int8_static",
]

#: Why both int8 kinds use 7-bit weights (``reduce_range``): on x86 CPUs without VNNI (AVX2 only,
#: e.g. AMD Zen 3) ONNX Runtime's u8 x s8 kernel (VPMADDUBSW) saturates int16 pair sums
#: (2 x 255 x 127 > 32767) and gets products silently wrong (0.22 off on a 1.5 scale in a tiny
#: test graph); 7-bit weights cannot overflow. A graph is exported once and run on many CPUs.
REDUCE_RANGE_WHY = "7-bit weights: no int16 saturation in ONNX Runtime's u8 x s8 kernel on CPUs without VNNI"
#: How the int8 graphs are quantised: ``static`` (QDQ, calibrated activations) or ``dynamic``.
Int8Method = Literal["static", "dynamic"]
INT8_METHODS: tuple[str, ...] = ("static", "dynamic")


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


#: ONNX Runtime's quantiser advice ("Please consider [to run] pre-processing before quantization"),
#: logged on the root logger by every quantize_* call on a graph without its pre-processing
#: metadata. :func:`_prepare_for_quantization` prepares the graph for what the quantiser gets
#: wrong here; the advice is not a warning about this graph.
_PREPROCESS_ADVICE = ("Please consider", "pre-processing before quantization")


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.getMessage())
        return not (message.startswith(_PREPROCESS_ADVICE[0]) and _PREPROCESS_ADVICE[1] in message)


@contextlib.contextmanager
def _without_preprocess_advice() -> Iterator[None]:
    """Drop only the quantiser's pre-processing advice from the root logger while quantising."""
    root, advice = logging.getLogger(), _DropAdvice()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


#: The opset that has ONNX's ``Gelu`` operator (added in opset 20).
GELU_OPSET = 20


def _erf_gelu_x_half(op: Any, x: Any) -> Any:
    return x * (0.5 * (op.Erf(x / math.sqrt(2)) + 1.0))


def _erf_gelu_half_x(op: Any, x: Any) -> Any:
    return 0.5 * (x * (op.Erf(x / math.sqrt(2)) + 1.0))


def _onnx_gelu(op: Any, x: Any) -> Any:
    return op.Gelu(x)  # approximate='none': the exact erf form, as nn.GELU()


def with_onnx_gelu(model_proto: Any) -> Any:
    """A copy of an ONNX model at opset :data:`GELU_OPSET` in which every exact (erf) GELU written
    as element-wise nodes, ``x * (0.5 * (Erf(x / sqrt 2) + 1))`` (the dynamo exporter's form of
    ``nn.GELU()`` below opset 20) or ``0.5 * (x * (...))``, operands of each Add/Mul in either
    order, is one ``Gelu`` node.

    Source: ONNX operator ``Gelu`` (opset 20), GELU(x) = 0.5 x (1 + erf(x / sqrt 2)). The opset
    is raised with ``onnx.version_converter`` and the nodes are matched with onnxscript's pattern
    rewriter; other nodes are unchanged, so outputs agree with the input graph to float32
    rounding (Swin-T tokens within 4e-6).
    """
    from onnx import version_converter
    from onnxscript.rewriter import pattern, rewrite

    rules = pattern.RewriteRuleSet(  # commute: operands of Add/Mul in either order
        [pattern.RewriteRule(p, _onnx_gelu) for p in (_erf_gelu_x_half, _erf_gelu_half_x)], commute=True
    )
    return rewrite(version_converter.convert_version(model_proto, GELU_OPSET), pattern_rewrite_rules=rules)


def quantize_int8(src: str | os.PathLike[str], dst: str | os.PathLike[str], spec: ModelSpec) -> Path:
    """Write the dynamically int8-quantised version of graph ``src`` to ``dst`` (spec embedded),
    at opset 20 with ONNX ``Gelu`` nodes (:func:`with_onnx_gelu`)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    prepared, quantized = dst.with_name(dst.name + ".in.tmp"), dst.with_name(dst.name + ".tmp")
    try:
        onnx.save_model(_prepare_for_quantization(with_onnx_gelu(load_graph(Path(src)))), str(prepared))
        with _without_preprocess_advice():
            quantize_dynamic(
                prepared, quantized, op_types_to_quantize=["MatMul", "Gemm"], per_channel=True,
                weight_type=QuantType.QInt8, reduce_range=True,  # see REDUCE_RANGE_WHY
            )
        # The quantiser drops metadata_props; the runtime needs the spec in every graph.
        return save_with_spec(load_graph(quantized), dst, spec)
    finally:
        prepared.unlink(missing_ok=True)
        quantized.unlink(missing_ok=True)


class _FeedReader:
    """``onnxruntime.quantization.CalibrationDataReader`` over a list of feeds (duck-typed, so
    this module imports onnxruntime only when quantising)."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self._feeds = iter(list(feeds))

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # pragma: no cover - the MinMax calibrator reads the feeds once
        raise NotImplementedError


def _weight_products(proto: Any) -> tuple[list[str], list[str]]:
    """(names of MatMul/Gemm/Conv nodes with a constant weight, names of MatMuls of two
    activations); unnamed nodes get names first. The activation x activation products
    (attention's Q K^T and softmax x V) stay float32: their ranges change with every input, and
    they are a small share of Swin-T's FLOPs (~10 %)."""
    weights = {t.name for t in proto.graph.initializer}
    weights |= {o for n in proto.graph.node if n.op_type == "Constant" for o in n.output}
    quantised, kept = [], []
    for i, node in enumerate(proto.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
        if node.op_type not in ("MatMul", "Gemm", "Conv"):
            continue
        (quantised if node.input[1] in weights else kept).append(node.name)
    return quantised, kept


def quantize_int8_static(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    spec: ModelSpec,
    feeds: Sequence[dict[str, np.ndarray]],
    *,
    reduce_range: bool = True,
) -> Path:
    """Write the statically int8-quantised (QDQ) version of graph ``src`` to ``dst``.

    ONNX Runtime's ``quantize_static``: ``QuantFormat.QDQ`` (QuantizeLinear/DequantizeLinear
    pairs, which ONNX Runtime, OpenVINO and TensorRT all read), int8 weights per output channel,
    uint8 activations with MinMax ranges calibrated on ``feeds`` (input name -> array, one dict
    per calibration batch; see :func:`static_calibration_feeds`). Only products with a constant
    weight are quantised (:func:`_weight_products`). ``reduce_range``: 7-bit weights
    (:data:`REDUCE_RANGE_WHY`).
    The spec is embedded in ``dst``.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    check_nonempty("feeds", feeds, "calibration batch", hint="static quantisation needs one")
    dst = Path(dst)
    prepared, quantized = dst.with_name(dst.name + ".in.tmp"), dst.with_name(dst.name + ".tmp")
    try:
        proto = _prepare_for_quantization(load_graph(Path(src)))
        quantised, kept = _weight_products(proto)
        onnx.save_model(proto, str(prepared))
        with _without_preprocess_advice():
            quantize_static(
                prepared, quantized, _FeedReader(feeds), quant_format=QuantFormat.QDQ,
                op_types_to_quantize=["MatMul", "Gemm", "Conv"], nodes_to_quantize=quantised,
                nodes_to_exclude=kept, per_channel=True, reduce_range=reduce_range,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )  # fmt: skip
        return save_with_spec(load_graph(quantized), dst, spec)
    finally:
        prepared.unlink(missing_ok=True)
        quantized.unlink(missing_ok=True)


def static_calibration_feeds(
    model_dir: str | os.PathLike[str],
    spec: ModelSpec,
    frames: np.ndarray,
    *,
    eeg: np.ndarray | None = None,
    frames_per_call: int = 4,
    seed: int = 0,
) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    """Calibration feeds for both graphs from face crops ``frames: (N, 3, S, S) float32``.

    Backbone: the frames, ``frames_per_call`` at a time. Fusion: the fp32 backbone's tokens of
    the same frames, F per bag, with ``eeg: (B, C, T)`` microvolts (default: the export's
    synthetic 1/f EEG); one bag per batch. Returns (swin feeds, fusion feeds).
    """
    from .inputs import synthetic_demo_inputs

    model_dir, g = Path(model_dir), spec.graph
    f = spec.face.frames_per_window
    swin_feeds = [{g.backbone_input: frames[i : i + frames_per_call]} for i in range(0, len(frames), frames_per_call)]
    n_bags = len(frames) // f
    check_compare("number of frames", len(frames), ">=", "face.frames_per_window", f, hint="fusion calibration needs one bag")
    with OnnxModel(*(model_dir / graph_filename(stem, "fp32") for stem in GRAPHS), spec) as fp32:
        tokens = fp32.backbone(frames[: n_bags * f].reshape(n_bags, f, *frames.shape[1:]))  # (B*F, P, D)
    tokens = tokens.reshape(n_bags, f, *tokens.shape[1:])  # (B, F, P, D)
    if eeg is None:
        eeg = synthetic_demo_inputs(spec, n_bags, seed=seed).eeg
    eeg_name, tokens_name = g.fusion_inputs
    fusion_feeds = [{eeg_name: eeg[b : b + 1], tokens_name: tokens[b : b + 1]} for b in range(min(n_bags, len(eeg)))]
    return swin_feeds, fusion_feeds


def make_int8_static(
    model_dir: str | os.PathLike[str],
    spec: ModelSpec,
    *,
    windows: str | os.PathLike[str] | None = None,
    n_frames: int = 60,
    reduce_range: bool = True,
    out_dir: str | os.PathLike[str] | None = None,
) -> tuple[Path, Path, dict[str, Any]]:
    """Write static int8 ``swin.int8.onnx`` and ``fusion.int8.onnx`` for the fp32 graphs in
    ``model_dir`` (into ``out_dir``, default ``model_dir``), calibrated on ~``n_frames`` real
    face crops (:func:`~.calibration.calibration_frames`). Returns (swin, fusion, calibration
    facts for the export report: frames per source, skipped sources, bags, reduce_range)."""
    from .calibration import calibration_frames

    model_dir = Path(model_dir)
    out_dir = Path(out_dir) if out_dir is not None else model_dir
    calib = calibration_frames(spec, n_frames, windows=windows)
    swin_feeds, fusion_feeds = static_calibration_feeds(model_dir, spec, calib.frames)
    paths = [
        quantize_int8_static(model_dir / graph_filename(stem, "fp32"), out_dir / graph_filename(stem, "int8"), spec, feeds,
                             reduce_range=reduce_range)
        for stem, feeds in zip(GRAPHS, (swin_feeds, fusion_feeds))
    ]  # fmt: skip
    facts = {
        "method": "static",
        "format": "QDQ, int8 weights per output channel, uint8 activations (MinMax)",
        "calibration_frames": calib.counts,
        "calibration_skipped": calib.skipped,
        "calibration_bags": len(fusion_feeds),
        "reduce_range": reduce_range,
    }
    return paths[0], paths[1], facts
