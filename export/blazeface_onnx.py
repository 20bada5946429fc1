"""BlazeFace short-range (mediapipe's ``face_detection_short_range.tflite``) -> an ONNX graph.

Usage (the model ships in the mediapipe 0.10.21 wheel, Apache-2.0; later wheels do not bundle it)::

    pip download mediapipe==0.10.21 --no-deps -d wheels
    python -m milmer.export.blazeface_onnx --wheel wheels/mediapipe-0.10.21-*.whl \\
        --out runtime/face/models/blazeface_short_range.onnx

The graph is rebuilt op by op from the TFLite flatbuffer (parsed with the ``tflite`` package)
with the ONNX helper API, rather than with ``tflite2onnx`` (0.4.1, last released 2022), whose
graph fixes the batch at 1 in its Reshape constants. The network is the same, laid out NCHW:

- ``input``: (B, 3, 128, 128) float32, RGB in [-1, 1] (the letterboxed frame)
- ``regressors``: (B, 896, 16) float32: per anchor box dx, dy, w, h and 6 keypoints (x, y), in
  128-pixel input units (decoded by :mod:`milmer.runtime.face.blazeface`)
- ``classificators``: (B, 896, 1) float32: per anchor score logit

The TFLite model stores fp16 weights behind DEQUANTIZE ops; they are widened to float32 here
(exactly: every fp16 value is a float32 value), so the ONNX graph is float32 throughout.
``SAME`` padding becomes explicit ``pads`` computed from the static 128x128 shapes (TensorFlow's
rule: the odd pixel goes at the end). Only the ops this model uses are converted; any other op
is an error. The output is deterministic: the same ``.tflite`` gives the same bytes (and
SHA-256, recorded in ``FaceSpec``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..runtime.check import MilmerInputError, check_path_exists, read_error

if TYPE_CHECKING:
    import onnx

__all__ = [
    "TFLITE_MEMBER",
    "OPSET",
    "IR_VERSION",
    "read_tflite_from_wheel",
    "same_pads",
    "convert_tflite",
    "main",
]

#: Where the model lies inside the mediapipe wheel.
TFLITE_MEMBER = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
#: Opset 13: every op used exists there unchanged; ONNX Runtime and TensorRT 8.6+ read it.
OPSET = 13
#: IR version 8 (ONNX 1.10+): old enough for every ONNX Runtime we support.
IR_VERSION = 8
BATCH = "B"

_NOTICE = (
    "BlazeFace short-range face detector (face_detection_short_range.tflite) from MediaPipe "
    "0.10.21, Copyright Google LLC, Apache License 2.0; converted to ONNX by "
    "milmer.export.blazeface_onnx (fp16 weights widened to float32, batch made dynamic)."
)


def read_tflite_from_wheel(wheel: str | os.PathLike[str]) -> bytes:
    """The bytes of ``face_detection_short_range.tflite`` in a mediapipe wheel (a zip)."""
    path = Path(wheel)
    check_path_exists("--wheel", path)
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.read(TFLITE_MEMBER)
    except (zipfile.BadZipFile, KeyError) as err:
        raise read_error(
            "--wheel", path, err, what="mediapipe wheel",
            hint=f"expected one holding {TFLITE_MEMBER}: get one with `pip download mediapipe==0.10.21 --no-deps`",
        ) from None


def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's ``SAME`` padding of one axis: (begin, end), the odd pixel at the end.

    out = ceil(size / stride); total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


@dataclass
class _Graph:
    """ONNX nodes and initializers gathered while walking the TFLite operators."""

    nodes: list[Any] = field(default_factory=list)
    initializers: list[Any] = field(default_factory=list)
    # TFLite tensor index -> (ONNX value name, is 4-D NCHW)
    values: dict[int, tuple[str, bool]] = field(default_factory=dict)
    constants: dict[int, np.ndarray] = field(default_factory=dict)

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output


def _options(op: Any, cls: Any) -> Any:
    table = op.BuiltinOptions()
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _activation(g: _Graph, name: str, value: str, fused: int) -> str:
    import tflite

    if fused == tflite.ActivationFunctionType.NONE:
        return value
    if fused == tflite.ActivationFunctionType.RELU:
        return g.node("Relu", [value], name)
    raise MilmerInputError(f"Unsupported fused activation {fused} in TFLite op {name!r}.")


def convert_tflite(data: bytes) -> onnx.ModelProto:
    """Build the ONNX graph (dynamic batch) from the bytes of BlazeFace short-range's ``.tflite``."""
    import onnx
    import tflite
    from onnx import TensorProto, helper

    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() != 1:
        raise MilmerInputError(f"Expected a TFLite model with one subgraph, got {model.SubgraphsLength()}.")
    sub = model.Subgraphs(0)
    op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    np_types = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
                tflite.TensorType.INT32: np.int32}  # fmt: skip

    def tensor(i: int) -> Any:
        return sub.Tensors(int(i))

    def shape(i: int) -> tuple[int, ...]:
        return tuple(int(d) for d in tensor(i).ShapeAsNumpy())

    def name(i: int) -> str:
        return tensor(i).Name().decode()

    def buffer(i: int) -> np.ndarray | None:
        t = tensor(i)
        buf = model.Buffers(t.Buffer())
        if buf is None or buf.DataLength() == 0:
            return None
        return buf.DataAsNumpy().view(np_types[t.Type()]).reshape(shape(i)).copy()

    g = _Graph()
    (inp,) = sub.InputsAsNumpy()
    if shape(inp) != (1, 128, 128, 3):
        raise MilmerInputError(f"Expected a (1, 128, 128, 3) input, got {shape(inp)}.")
    g.values[int(inp)] = ("input", True)

    for k in range(sub.OperatorsLength()):
        op = sub.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = op_names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins = [int(i) for i in op.InputsAsNumpy()]
        (out,) = (int(i) for i in op.OutputsAsNumpy())
        out_name = name(out)

        if kind == "DEQUANTIZE":
            weights = buffer(ins[0])
            assert weights is not None and weights.dtype == np.float16, name(ins[0])
            g.constants[out] = weights.astype(np.float32)
        elif kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            x, x_nchw = g.values[ins[0]]
            assert x_nchw
            w = g.constants[ins[1]] if ins[1] in g.constants else buffer(ins[1])
            b = g.constants[ins[2]] if ins[2] in g.constants else buffer(ins[2])
            assert w is not None and b is not None
            _, height, width, channels = shape(ins[0])
            if kind == "CONV_2D":
                opts = _options(op, tflite.Conv2DOptions)
                weight = w.transpose(0, 3, 1, 2)  # OHWI -> OIHW
                group = 1
            else:
                opts = _options(op, tflite.DepthwiseConv2DOptions)
                if opts.DepthMultiplier() != 1:
                    raise MilmerInputError(f"Unsupported depth multiplier in {out_name!r}.")
                weight = w.transpose(3, 0, 1, 2)  # (1, H, W, C) -> (C, 1, H, W)
                group = channels
            kh, kw = weight.shape[2:]
            strides = [opts.StrideH(), opts.StrideW()]
            dilations = [opts.DilationHFactor(), opts.DilationWFactor()]
            if opts.Padding() == tflite.Padding.SAME:
                (t, bot), (left, right) = (same_pads(height, kh, strides[0], dilations[0]),
                                           same_pads(width, kw, strides[1], dilations[1]))  # fmt: skip
                pads = [t, left, bot, right]
            else:
                pads = [0, 0, 0, 0]
            conv = g.node(
                "Conv",
                [x, g.const(out_name + "/weight", weight), g.const(out_name + "/bias", b.astype(np.float32))],
                out_name + ("/conv" if opts.FusedActivationFunction() else ""),
                kernel_shape=[kh, kw], strides=strides, dilations=dilations, pads=pads, group=group,
            )  # fmt: skip
            g.values[out] = (_activation(g, out_name, conv, opts.FusedActivationFunction()), True)
        elif kind == "RELU":
            x, x_nchw = g.values[ins[0]]
            g.values[out] = (g.node("Relu", [x], out_name), x_nchw)
        elif kind == "ADD":
            (a, a_nchw), (c, c_nchw) = g.values[ins[0]], g.values[ins[1]]
            assert a_nchw == c_nchw and shape(ins[0]) == shape(ins[1]), out_name
            opts = _options(op, tflite.AddOptions)
            add = g.node("Add", [a, c], out_name + ("/add" if opts.FusedActivationFunction() else ""))
            g.values[out] = (_activation(g, out_name, add, opts.FusedActivationFunction()), a_nchw)
        elif kind == "PAD":
            x, x_nchw = g.values[ins[0]]
            paddings = buffer(ins[1])  # (4, 2): NHWC axes x (begin, end)
            assert x_nchw and paddings is not None and paddings.shape == (4, 2)
            nchw = paddings[[0, 3, 1, 2]]
            pads = np.concatenate([nchw[:, 0], nchw[:, 1]]).astype(np.int64)
            g.values[out] = (g.node("Pad", [x, g.const(out_name + "/pads", pads)], out_name, mode="constant"), True)
        elif kind == "MAX_POOL_2D":
            x, x_nchw = g.values[ins[0]]
            opts = _options(op, tflite.Pool2DOptions)
            _, height, width, _ = shape(ins[0])
            kh, kw, sh, sw = opts.FilterHeight(), opts.FilterWidth(), opts.StrideH(), opts.StrideW()
            if opts.Padding() == tflite.Padding.SAME:
                (t, bot), (left, right) = same_pads(height, kh, sh), same_pads(width, kw, sw)
                pads = [t, left, bot, right]
            else:
                pads = [0, 0, 0, 0]
            pool = g.node(
                "MaxPool", [x], out_name + ("/pool" if opts.FusedActivationFunction() else ""),
                kernel_shape=[kh, kw], strides=[sh, sw], pads=pads,
            )  # fmt: skip
            g.values[out] = (_activation(g, out_name, pool, opts.FusedActivationFunction()), True)
        elif kind == "RESHAPE":
            x, x_nchw = g.values[ins[0]]
            if x_nchw:  # back to TFLite's NHWC element order before flattening
                x = g.node("Transpose", [x], out_name + "/nhwc", perm=[0, 2, 3, 1])
            new_shape = np.array(shape(out), np.int64)
            assert new_shape[0] == 1, out_name
            new_shape[0] = -1  # the batch: dynamic
            g.values[out] = (g.node("Reshape", [x, g.const(out_name + "/shape", new_shape)], out_name), False)
        elif kind == "CONCATENATION":
            opts = _options(op, tflite.ConcatenationOptions)
            parts = [g.values[i] for i in ins]
            assert not any(nchw for _, nchw in parts), out_name
            axis = opts.Axis()
            assert axis != 0, "concatenation along the batch"
            cat = g.node("Concat", [p for p, _ in parts], out_name + ("/cat" if opts.FusedActivationFunction() else ""),
                         axis=axis)  # fmt: skip
            g.values[out] = (_activation(g, out_name, cat, opts.FusedActivationFunction()), False)
        else:
            raise MilmerInputError(f"Unsupported TFLite op {kind} ({out_name!r}) in the BlazeFace model.")

    outputs = []
    for i in sub.OutputsAsNumpy():
        value, nchw = g.values[int(i)]
        assert not nchw and value == name(int(i))
        dims: list[int | str] = [BATCH, *shape(int(i))[1:]]
        outputs.append(helper.make_tensor_value_info(value, TensorProto.FLOAT, dims))
    graph = helper.make_graph(
        g.nodes,
        "blazeface_short_range",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [BATCH, 3, 128, 128])],
        outputs,
        initializer=g.initializers,
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="milmer.export.blazeface_onnx",
        doc_string=_NOTICE,
    )
    onnx_model.ir_version = IR_VERSION
    helper.set_model_props(
        onnx_model,
        {"source": "mediapipe==0.10.21:" + TFLITE_MEMBER, "source_sha256": hashlib.sha256(data).hexdigest(),
         "license": "Apache-2.0"},
    )  # fmt: skip
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m milmer.export.blazeface_onnx", description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--wheel", help="mediapipe-0.10.21-*.whl holding " + TFLITE_MEMBER)
    source.add_argument("--tflite", help="face_detection_short_range.tflite itself")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    args = parser.parse_args(argv)
    try:
        if args.wheel:
            data = read_tflite_from_wheel(args.wheel)
        else:
            path = Path(args.tflite)
            check_path_exists("--tflite", path)
            data = path.read_bytes()
        model = convert_tflite(data)
    except MilmerInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from ..runtime.files import atomic_file

    blob = model.SerializeToString()
    with atomic_file(args.out) as tmp:
        tmp.write_bytes(blob)
    out = Path(args.out)
    print(f"{out}  {len(blob)} bytes  sha256 {hashlib.sha256(blob).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
