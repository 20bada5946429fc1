"""fp16 and int8 variants: float32 I/O, agreement with fp32, the quantiser's shared-weight trap."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from milmer.export.variants import fp16_op_block_list, quantize_int8
from milmer.runtime.backends.ort import OrtRunner
from milmer.runtime.model_dir import read_graph_info
from milmer.runtime.spec import ModelSpec


def test_variant_graphs_keep_float32_io_and_agree_with_fp32(exported):
    for precision in ("fp16", "int8"):
        for stem in ("swin", "fusion"):
            assert read_graph_info(exported / f"{stem}.{precision}.onnx").inputs == read_graph_info(
                exported / f"{stem}.onnx"
            ).inputs
    report = json.loads((exported / "export_report.json").read_text())
    figures = {(a["precision"], a["inputs"]): a for a in report["agreement"]}
    assert set(figures) == {(p, i) for p in ("fp16", "int8") for i in ("random", "demo")}
    assert all(a["n_bags"] == 8 and a["finite"] for a in figures.values())
    # Pinned on the tiny model's fixed input sets (measured: fp16 |dp| <= 5e-4, top-1 100 %;
    # int8 |dp| <= 4e-2, top-1 100 %).
    for inputs in ("random", "demo"):
        fp16, int8 = figures["fp16", inputs], figures["int8", inputs]
        assert fp16["max_abs_probabilities"] < 2e-3 and fp16["top1_agreement"] == 1.0
        assert int8["max_abs_probabilities"] < 0.1 and int8["top1_agreement"] >= 0.875


def test_fp16_graph_holds_float16_weights(exported):
    proto = onnx.load(str(exported / "swin.fp16.onnx"))
    types = {t.data_type for t in proto.graph.initializer if len(t.dims) >= 2}
    assert types == {TensorProto.FLOAT16}
    assert (exported / "swin.fp16.onnx").stat().st_size < 0.85 * (exported / "swin.onnx").stat().st_size


def elem_types(proto: onnx.ModelProto) -> dict[str, int]:
    """Tensor name -> ONNX elem type, from shape inference on a copy without stale value_info."""
    import copy

    proto = copy.deepcopy(proto)
    del proto.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True).graph  # strict: fails unless topologically sorted
    types = {v.name: v.type.tensor_type.elem_type for v in [*inferred.input, *inferred.output, *inferred.value_info]}
    types.update({t.name: t.data_type for t in inferred.initializer})
    return types


def test_fp16_graphs_keep_layernorm_in_float32(exported):
    """TensorRT builds fp16 graphs strongly typed: a float16 LayerNormalization would run in float16."""
    assert "LayerNormalization" in fp16_op_block_list() and "TopK" in fp16_op_block_list()
    assert "Softmax" not in fp16_op_block_list()  # stays fp16: attention fuses as one fp16 block
    for stem, n_layernorms in (("swin", 15), ("fusion", 8)):  # tiny Swin: 2+1+1+1 blocks x 2 + 5 norms
        proto = onnx.load(str(exported / f"{stem}.fp16.onnx"))
        types = elem_types(proto)
        norms = [n for n in proto.graph.node if n.op_type == "LayerNormalization"]
        assert len(norms) == n_layernorms, stem
        for node in norms:
            names = [n for n in (*node.input, *node.output) if n]
            assert {types[n] for n in names} == {TensorProto.FLOAT}, (stem, node.name)
        # ...and the rest of the graph is float16: MatMul runs on float16 inputs.
        matmuls = [n for n in proto.graph.node if n.op_type == "MatMul"]
        assert matmuls and all(types[n.input[0]] == TensorProto.FLOAT16 for n in matmuls), stem
        softmax = [n for n in proto.graph.node if n.op_type == "Softmax"]
        assert softmax and all(types[n.input[0]] == TensorProto.FLOAT16 for n in softmax), stem


def test_int8_quantisation_of_a_weight_shared_by_two_gemms(tmp_path):
    """The exporter merges identical weights; ORT's quantiser used to transpose such a weight
    once per Gemm. y = (x W^T) W^T must survive quantisation."""
    w = np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32)  # not symmetric
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["h"], transB=1),
        helper.make_node("Gemm", ["h", "w"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "shared",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 16])],
        [numpy_helper.from_array(w, "w")],
        value_info=[helper.make_tensor_value_info("h", TensorProto.FLOAT, [4, 16])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    onnx.save(model, str(tmp_path / "shared.onnx"))
    quantize_int8(tmp_path / "shared.onnx", tmp_path / "shared.int8.onnx", ModelSpec())
    x = np.random.default_rng(1).standard_normal((4, 16)).astype(np.float32)
    with OrtRunner(tmp_path / "shared.int8.onnx", precision="int8") as runner:
        got = runner.infer({"x": x})["y"]
    expected = x @ w.T @ w.T
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()
    assert "milmer.spec" in read_graph_info(tmp_path / "shared.int8.onnx").metadata
