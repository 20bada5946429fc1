"""BlazeFace TFLite -> ONNX conversion (export/blazeface_onnx.py) and the graph it shipped.

The converter is tested on a tiny TFLite model written here with the flatbuffers builder (the
ops BlazeFace uses: DEQUANTIZE of fp16 weights, CONV_2D and DEPTHWISE_CONV_2D with SAME padding
and stride 2, fused RELU, ADD, channel PAD, MAX_POOL_2D, RESHAPE, CONCATENATION), against a numpy
NHWC reference of the same ops. The real model's conversion is checked by the shipped graph's
SHA-256 (when a mediapipe 0.10.21 wheel is at hand, ``MILMER_MEDIAPIPE_WHEEL``) and, end to end,
by the parity tests with mediapipe in tests/runtime/face/.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

tflite = pytest.importorskip("tflite")
flatbuffers = pytest.importorskip("flatbuffers")

from milmer.export import blazeface_onnx  # noqa: E402
from milmer.export.blazeface_onnx import convert_tflite, main, same_pads  # noqa: E402
from milmer.runtime.check import MilmerInputError  # noqa: E402
from milmer.runtime.face.detect import BLAZEFACE_MODEL  # noqa: E402
from milmer.runtime.spec import DETECTOR_SHA256  # noqa: E402

# ----------------------------------------------------------------------------- a tiny TFLite model
T = tflite.TensorType


class _Model:
    """Collects tensors, buffers and operators, then writes a TFLite flatbuffer."""

    def __init__(self) -> None:
        self.tensors: list[tuple[str, tuple[int, ...], int, int]] = []  # name, shape, type, buffer
        self.buffers: list[bytes] = [b""]
        self.ops: list[tuple[str, list[int], list[int], int, object]] = []
        self.arrays: dict[int, np.ndarray] = {}

    def tensor(self, name: str, shape: tuple[int, ...], data: np.ndarray | None = None, ttype: int = T.FLOAT32) -> int:
        buffer = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data).tobytes())
            buffer = len(self.buffers) - 1
            self.arrays[len(self.tensors)] = data
        self.tensors.append((name, tuple(shape), ttype, buffer))
        return len(self.tensors) - 1

    def op(self, kind: str, ins: list[int], outs: list[int], options: tuple[int, object] = (0, None)) -> None:
        self.ops.append((kind, ins, outs, *options))

    def build(self, inputs: list[int], outputs: list[int]) -> bytes:
        b = flatbuffers.Builder(1024)

        def offsets(start, items):
            start(b, len(items))
            for item in reversed(items):
                b.PrependUOffsetTRelative(item)
            return b.EndVector()

        buffers = []
        for data in self.buffers:
            vec = b.CreateNumpyVector(np.frombuffer(data, np.uint8)) if data else None
            tflite.BufferStart(b)
            if vec is not None:
                tflite.BufferAddData(b, vec)
            buffers.append(tflite.BufferEnd(b))
        tensors = []
        for name, shape, ttype, buffer in self.tensors:
            name_off, shape_off = b.CreateString(name), b.CreateNumpyVector(np.array(shape, np.int32))
            tflite.TensorStart(b)
            tflite.TensorAddShape(b, shape_off)
            tflite.TensorAddType(b, ttype)
            tflite.TensorAddBuffer(b, buffer)
            tflite.TensorAddName(b, name_off)
            tensors.append(tflite.TensorEnd(b))
        kinds = sorted({k for k, *_ in self.ops})
        codes = []
        for kind in kinds:
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, getattr(tflite.BuiltinOperator, kind))
            tflite.OperatorCodeAddBuiltinCode(b, getattr(tflite.BuiltinOperator, kind))
            tflite.OperatorCodeAddVersion(b, 1)
            codes.append(tflite.OperatorCodeEnd(b))
        ops = []
        for kind, ins, outs, opt_type, make_options in self.ops:
            opt = make_options(b) if make_options is not None else None
            ins_off = b.CreateNumpyVector(np.array(ins, np.int32))
            outs_off = b.CreateNumpyVector(np.array(outs, np.int32))
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, kinds.index(kind))
            tflite.OperatorAddInputs(b, ins_off)
            tflite.OperatorAddOutputs(b, outs_off)
            if opt is not None:
                tflite.OperatorAddBuiltinOptionsType(b, opt_type)
                tflite.OperatorAddBuiltinOptions(b, opt)
            ops.append(tflite.OperatorEnd(b))
        tensors_vec = offsets(tflite.SubGraphStartTensorsVector, tensors)
        ops_vec = offsets(tflite.SubGraphStartOperatorsVector, ops)
        in_vec = b.CreateNumpyVector(np.array(inputs, np.int32))
        out_vec = b.CreateNumpyVector(np.array(outputs, np.int32))
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tensors_vec)
        tflite.SubGraphAddInputs(b, in_vec)
        tflite.SubGraphAddOutputs(b, out_vec)
        tflite.SubGraphAddOperators(b, ops_vec)
        subgraph = tflite.SubGraphEnd(b)
        codes_vec = offsets(tflite.ModelStartOperatorCodesVector, codes)
        subgraphs_vec = offsets(tflite.ModelStartSubgraphsVector, [subgraph])
        buffers_vec = offsets(tflite.ModelStartBuffersVector, buffers)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, codes_vec)
        tflite.ModelAddSubgraphs(b, subgraphs_vec)
        tflite.ModelAddBuffers(b, buffers_vec)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _conv_options(stride: int, padding: int, relu: bool, depthwise: bool = False):
    act = tflite.ActivationFunctionType.RELU if relu else tflite.ActivationFunctionType.NONE

    def make(b):
        prefix = "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions"
        getattr(tflite, prefix + "Start")(b)
        getattr(tflite, prefix + "AddPadding")(b, padding)
        getattr(tflite, prefix + "AddStrideW")(b, stride)
        getattr(tflite, prefix + "AddStrideH")(b, stride)
        getattr(tflite, prefix + "AddDilationWFactor")(b, 1)
        getattr(tflite, prefix + "AddDilationHFactor")(b, 1)
        if depthwise:
            tflite.DepthwiseConv2DOptionsAddDepthMultiplier(b, 1)
        getattr(tflite, prefix + "AddFusedActivationFunction")(b, act)
        return getattr(tflite, prefix + "End")(b)

    kind = tflite.BuiltinOptions.DepthwiseConv2DOptions if depthwise else tflite.BuiltinOptions.Conv2DOptions
    return kind, make


def _pool_options(size: int, padding: int):
    def make(b):
        tflite.Pool2DOptionsStart(b)
        tflite.Pool2DOptionsAddPadding(b, padding)
        tflite.Pool2DOptionsAddStrideW(b, size)
        tflite.Pool2DOptionsAddStrideH(b, size)
        tflite.Pool2DOptionsAddFilterWidth(b, size)
        tflite.Pool2DOptionsAddFilterHeight(b, size)
        return tflite.Pool2DOptionsEnd(b)

    return tflite.BuiltinOptions.Pool2DOptions, make


def _simple_options(name: str, **fields: int):
    def make(b):
        getattr(tflite, name + "Start")(b)
        for field, value in fields.items():
            getattr(tflite, f"{name}Add{field}")(b, value)
        return getattr(tflite, name + "End")(b)

    return getattr(tflite.BuiltinOptions, name), make


def _tiny_blazeface() -> tuple[bytes, dict[str, np.ndarray]]:
    """A 128x128 model with every op BlazeFace uses; returns the flatbuffer and its weights."""
    rng = np.random.default_rng(0)
    SAME, VALID = tflite.Padding.SAME, tflite.Padding.VALID
    m = _Model()
    w: dict[str, np.ndarray] = {
        "k0": rng.normal(0, 0.3, (4, 5, 5, 3)).astype(np.float16), "b0": rng.normal(0, 0.1, 4).astype(np.float16),
        "k1": rng.normal(0, 0.3, (1, 3, 3, 4)).astype(np.float32), "b1": rng.normal(0, 0.1, 4).astype(np.float32),
        "k2": rng.normal(0, 0.3, (6, 1, 1, 6)).astype(np.float32), "b2": rng.normal(0, 0.1, 6).astype(np.float32),
        "k3": rng.normal(0, 0.3, (2, 1, 1, 6)).astype(np.float32), "b3": rng.normal(0, 0.1, 2).astype(np.float32),
        "k4": rng.normal(0, 0.3, (16, 1, 1, 6)).astype(np.float32), "b4": rng.normal(0, 0.1, 16).astype(np.float32),
        "pads": np.array([[0, 0], [0, 0], [0, 0], [0, 2]], np.int32),
    }  # fmt: skip
    x = m.tensor("input", (1, 128, 128, 3))
    k0q = m.tensor("k0", (4, 5, 5, 3), w["k0"], T.FLOAT16)
    b0q = m.tensor("b0", (4,), w["b0"], T.FLOAT16)
    k0, b0 = m.tensor("k0_dq", (4, 5, 5, 3)), m.tensor("b0_dq", (4,))
    m.op("DEQUANTIZE", [k0q], [k0])
    m.op("DEQUANTIZE", [b0q], [b0])
    c0 = m.tensor("conv0", (1, 64, 64, 4))
    m.op("CONV_2D", [x, k0, b0], [c0], _conv_options(2, SAME, relu=True))
    d1 = m.tensor("dw1", (1, 32, 32, 4))
    m.op("DEPTHWISE_CONV_2D", [c0, m.tensor("k1", (1, 3, 3, 4), w["k1"]), m.tensor("b1", (4,), w["b1"])], [d1],
         _conv_options(2, SAME, relu=False, depthwise=True))  # fmt: skip
    p1 = m.tensor("pool1", (1, 32, 32, 4))
    m.op("MAX_POOL_2D", [c0], [p1], _pool_options(2, VALID))
    a1 = m.tensor("add1", (1, 32, 32, 4))
    m.op("ADD", [p1, d1], [a1], _simple_options("AddOptions"))
    r1 = m.tensor("relu1", (1, 32, 32, 4))
    m.op("RELU", [a1], [r1])
    pad1 = m.tensor("pad1", (1, 32, 32, 6))
    m.op("PAD", [r1, m.tensor("paddings", (4, 2), w["pads"], T.INT32)], [pad1], _simple_options("PadOptions"))
    c2 = m.tensor("conv2", (1, 32, 32, 6))
    m.op("CONV_2D", [pad1, m.tensor("k2", (6, 1, 1, 6), w["k2"]), m.tensor("b2", (6,), w["b2"])], [c2],
         _conv_options(1, SAME, relu=True))  # fmt: skip
    p2 = m.tensor("pool2", (1, 16, 16, 6))
    m.op("MAX_POOL_2D", [c2], [p2], _pool_options(2, SAME))
    h3 = m.tensor("head3", (1, 32, 32, 2))
    m.op("CONV_2D", [c2, m.tensor("k3", (2, 1, 1, 6), w["k3"]), m.tensor("b3", (2,), w["b3"])], [h3],
         _conv_options(1, SAME, relu=False))  # fmt: skip
    h4 = m.tensor("head4", (1, 16, 16, 16))
    m.op("CONV_2D", [p2, m.tensor("k4", (16, 1, 1, 6), w["k4"]), m.tensor("b4", (16,), w["b4"])], [h4],
         _conv_options(1, SAME, relu=False))  # fmt: skip
    s3, s4 = m.tensor("reshape3", (1, 256, 8)), m.tensor("reshape4", (1, 512, 8))
    m.op("RESHAPE", [h3], [s3])
    m.op("RESHAPE", [h4], [s4])
    out = m.tensor("regressors", (1, 768, 8))
    m.op("CONCATENATION", [s3, s4], [out], _simple_options("ConcatenationOptions", Axis=1))
    return m.build([x], [out]), w


# ----------------------------------------------------------------------------- numpy NHWC reference
# TensorFlow's SAME padding for the tiny model's square convolutions: (size, kernel, stride) ->
# (begin, end); the odd pixel goes at the end.
_SAME = {(128, 5, 2): (1, 2), (64, 3, 2): (0, 1), (32, 1, 1): (0, 0), (16, 1, 1): (0, 0)}


def _pad_same(x: np.ndarray, k: int, s: int) -> np.ndarray:
    pads = _SAME[(x.shape[1], k, s)]
    return np.pad(x, ((0, 0), pads, pads, (0, 0)))


def _conv(x: np.ndarray, k: np.ndarray, bias: np.ndarray, s: int, depthwise: bool = False) -> np.ndarray:
    kh, kw = k.shape[1:3]
    xp = _pad_same(x, kh, s)
    oh, ow = -(-x.shape[1] // s), -(-x.shape[2] // s)
    out = np.zeros((x.shape[0], oh, ow, k.shape[3] if depthwise else k.shape[0]))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i : i + s * oh : s, j : j + s * ow : s, :]
            out += patch * k[0, i, j] if depthwise else patch @ k[:, i, j, :].T
    return out + bias


def _pool(x: np.ndarray, size: int) -> np.ndarray:
    n, h, w, c = x.shape
    return x.reshape(n, h // size, size, w // size, size, c).max(axis=(2, 4))


def _reference(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """x: (N, 128, 128, 3) -> (N, 768, 8), the tiny model in float64, NHWC like TFLite."""
    f = {k: v.astype(np.float64) for k, v in w.items()}
    c0 = np.maximum(_conv(x, f["k0"], f["b0"], 2), 0)
    a1 = np.maximum(_pool(c0, 2) + _conv(c0, f["k1"], f["b1"], 2, depthwise=True), 0)
    c2 = np.maximum(_conv(np.pad(a1, w["pads"]), f["k2"], f["b2"], 1), 0)
    h3 = _conv(c2, f["k3"], f["b3"], 1)
    h4 = _conv(_pool(c2, 2), f["k4"], f["b4"], 1)
    n = x.shape[0]
    return np.concatenate([h3.reshape(n, -1, 8), h4.reshape(n, -1, 8)], axis=1)


@pytest.fixture(scope="module")
def tiny() -> tuple[bytes, dict[str, np.ndarray]]:
    return _tiny_blazeface()


def test_same_pads_follow_tensorflow() -> None:
    assert same_pads(128, 5, 2) == (1, 2)  # out 64: total (63 * 2 + 5 - 128) = 3, the odd one at the end
    assert same_pads(64, 3, 2) == (0, 1)
    assert same_pads(16, 3, 1) == (1, 1)
    assert same_pads(16, 1, 1) == (0, 0)
    assert same_pads(15, 2, 2) == (0, 1)


def test_tiny_model_matches_the_numpy_reference_at_any_batch(tiny: tuple[bytes, dict[str, np.ndarray]]) -> None:
    data, weights = tiny
    model = convert_tflite(data)
    (inp,) = model.graph.input
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["B", 3, 128, 128]
    (out,) = model.graph.output
    assert out.name == "regressors"
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["B", 768, 8]
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in model.graph.initializer if t.dims and "pads" not in t.name
               and "shape" not in t.name)  # fmt: skip
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).uniform(-1, 1, (3, 128, 128, 3)).astype(np.float32)
    (got,) = session.run(None, {"input": x.transpose(0, 3, 1, 2).copy()})
    want = _reference(x.astype(np.float64), weights)
    assert got.shape == (3, 768, 8)
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)
    (single,) = session.run(None, {"input": x[1:2].transpose(0, 3, 1, 2).copy()})
    np.testing.assert_allclose(single[0], got[1], atol=1e-6)


def test_conversion_is_deterministic(tiny: tuple[bytes, dict[str, np.ndarray]]) -> None:
    data, _ = tiny
    a, b = convert_tflite(data).SerializeToString(), convert_tflite(data).SerializeToString()
    assert a == b
    props = {p.key: p.value for p in convert_tflite(data).metadata_props}
    assert props["source_sha256"] == hashlib.sha256(data).hexdigest() and props["license"] == "Apache-2.0"


def test_unsupported_op_is_an_error() -> None:
    m = _Model()
    x = m.tensor("input", (1, 128, 128, 3))
    y = m.tensor("y", (1, 128, 128, 3))
    m.op("TANH", [x], [y])
    with pytest.raises(MilmerInputError, match=r"Unsupported TFLite op TANH \('y'\)"):
        convert_tflite(m.build([x], [y]))


def test_cli_reads_the_wheel_and_writes_atomically(tiny, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data, _ = tiny
    wheel = tmp_path / "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(blazeface_onnx.TFLITE_MEMBER, data)
    out = tmp_path / "models" / "bf.onnx"
    assert main(["--wheel", str(wheel), "--out", str(out)]) == 0
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert capsys.readouterr().out.strip().endswith(f"sha256 {digest}")
    assert [p.name for p in out.parent.iterdir()] == ["bf.onnx"]  # no temporary left behind
    assert main(["--tflite", str(tmp_path / "none.tflite"), "--out", str(out)]) == 2
    assert "'--tflite': file not found" in capsys.readouterr().err
    empty = tmp_path / "empty.whl"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("mediapipe/__init__.py", "")
    assert main(["--wheel", str(empty), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Invalid value for '--wheel': the mediapipe wheel " in err and "empty.whl' could not be read (KeyError: " in err
    assert "; expected one holding mediapipe/modules/face_detection/face_detection_short_range.tflite: get one with `pip download mediapipe==0.10.21 --no-deps`." in " ".join(err.split())


def test_shipped_graph() -> None:
    model = onnx.load(str(BLAZEFACE_MODEL))
    onnx.checker.check_model(model, full_check=True)
    assert (model.ir_version, model.opset_import[0].version) == (blazeface_onnx.IR_VERSION, blazeface_onnx.OPSET)
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in [*model.graph.input, *model.graph.output]}  # fmt: skip
    assert dims == {"input": ["B", 3, 128, 128], "regressors": ["B", 896, 16], "classificators": ["B", 896, 1]}
    props = {p.key: p.value for p in model.metadata_props}
    assert props["source"] == "mediapipe==0.10.21:" + blazeface_onnx.TFLITE_MEMBER
    assert props["source_sha256"] == "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"


@pytest.mark.skipif(not os.environ.get("MILMER_MEDIAPIPE_WHEEL"), reason="set MILMER_MEDIAPIPE_WHEEL to a mediapipe-0.10.21 wheel")
def test_real_conversion_reproduces_the_shipped_graph(tmp_path: Path) -> None:
    out = tmp_path / "blazeface_short_range.onnx"
    assert main(["--wheel", os.environ["MILMER_MEDIAPIPE_WHEEL"], "--out", str(out)]) == 0
    assert hashlib.sha256(out.read_bytes()).hexdigest() == DETECTOR_SHA256["blazeface-short-range"]
    assert out.read_bytes() == BLAZEFACE_MODEL.read_bytes()
