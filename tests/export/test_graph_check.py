"""Every graph milmer writes is valid ONNX (``check_model(full_check=True)`` + strict, type-checking
shape inference): fp32, fp16, int8 (static and dynamic), the face detector, the Triton
preprocessing head; the fp16 converter's inconsistent ``value_info`` and no-op Casts are gone."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest

from milmer.export.fp16 import _sort_topologically, drop_initializer_noise, fp16_op_block_list
from milmer.export.graph_check import InvalidGraphError, check_graph, check_graphs
from milmer.export.int8 import quantize_int8
from milmer.export.triton_repo import bag_backbone_graph, write_triton_repo
from milmer.runtime.model_dir import load_model_dir

DETECTOR = Path(__file__).parents[2] / "runtime" / "face" / "models" / "blazeface_short_range.onnx"


def _noop_initializer_casts(graph: onnx.GraphProto) -> list[str]:
    types = {t.name: t.data_type for t in graph.initializer}
    return [
        n.name for n in graph.node
        if n.op_type == "Cast" and n.input[0] in types and n.attribute[0].i == types[n.input[0]]
    ]  # fmt: skip


def test_every_exported_graph_passes_the_full_check(exported, tmp_path):
    checked = check_graphs(exported)
    assert {"swin.onnx", "fusion.onnx", "swin.fp16.onnx", "fusion.fp16.onnx", "swin.int8.onnx",
            "fusion.int8.onnx"} <= set(checked)  # fmt: skip
    spec = load_model_dir(exported).spec
    for stem in ("swin", "fusion"):  # the fixture's int8 is static (QDQ); dynamic too
        check_graph(quantize_int8(exported / f"{stem}.onnx", tmp_path / f"{stem}.int8.onnx", spec))
    check_graph(DETECTOR)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_triton_preprocessing_head_passes_the_full_check(exported, tmp_path, precision):
    spec = load_model_dir(exported).spec
    swin = exported / ("swin.onnx" if precision == "fp32" else "swin.fp16.onnx")
    check_graph(bag_backbone_graph(swin, spec), name=f"bag backbone ({precision})")
    repo = write_triton_repo(exported, tmp_path / "repo", precision=precision)
    assert len(check_graphs(repo)) == 2


def test_fp16_graphs_keep_layernorm_weights_float32_without_contradictions(exported):
    for stem in ("swin", "fusion"):
        model = onnx.load(str(exported / f"{stem}.fp16.onnx"))
        g = model.graph
        initializers = {t.name: t.data_type for t in g.initializer}
        # a weight shared with a float16 op (the exporter merges equal weights) is Cast to float32
        cast_to = {n.output[0]: n.attribute[0].i for n in g.node if n.op_type == "Cast"}
        ln_weights = {i for n in g.node if n.op_type == "LayerNormalization" for i in n.input[1:]}
        types = {initializers.get(w, cast_to.get(w)) for w in ln_weights}
        assert ln_weights and types == {onnx.TensorProto.FLOAT}, stem
        assert not {v.name for v in g.value_info} & set(initializers), stem
        assert _noop_initializer_casts(g) == [], stem


def test_the_converters_raw_output_is_what_the_check_catches(exported):
    """Guard: without drop_initializer_noise the fp16 Swin fails the check with the error users saw."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    raw = convert_float_to_float16(
        onnx.load(str(exported / "swin.onnx")), keep_io_types=True, op_block_list=fp16_op_block_list()
    )
    # weight and bias of each LayerNorm that are not shared with a float16 op (the untrained
    # tiny model's equal weights are merged by the exporter; a paper-size Swin-T has 82)
    n_noop = len(_noop_initializer_casts(raw.graph))
    assert n_noop >= 5
    _sort_topologically(raw.graph)
    with pytest.raises(InvalidGraphError, match=r"swin\.fp16\.onnx .*Inferred elem type differs .*\(1\) vs \(10\)"):
        check_graph(raw, name="swin.fp16.onnx")
    removed_info, removed_casts = drop_initializer_noise(raw.graph)
    assert removed_casts == n_noop and removed_info >= n_noop
    _sort_topologically(raw.graph)
    check_graph(raw)


def test_check_graph_names_the_file(tmp_path):
    bad = onnx.helper.make_model(
        onnx.helper.make_graph(
            [onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
            [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
            [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT16, [2])],  # Relu keeps float
        ),
        opset_imports=[onnx.helper.make_opsetid("", 18)],
    )  # fmt: skip
    bad.ir_version = 9
    onnx.save(bad, str(tmp_path / "bad.onnx"))
    with pytest.raises(InvalidGraphError, match=r"bad\.onnx is not a valid ONNX graph"):
        check_graphs(tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("MILMER_PAPER_SIZE_TESTS"),
    reason="paper-size export (Swin-T, minutes on 2 cores): set MILMER_PAPER_SIZE_TESTS=1",
)
def test_paper_size_export_passes_the_full_check(tmp_path):
    """The paper's sizes: Swin-T's 29 LayerNorms keep float32 weights and biases in swin.fp16.onnx."""
    from milmer.benchmarks.model import build_bench_model

    model_dir, _ = build_bench_model(tmp_path, tiny=False, progress=False)
    assert {"swin.onnx", "swin.fp16.onnx", "swin.int8.onnx", "fusion.onnx", "fusion.fp16.onnx",
            "fusion.int8.onnx"} <= set(check_graphs(model_dir))  # fmt: skip
    g = onnx.load(str(model_dir / "swin.fp16.onnx")).graph
    initializers = {t.name: t.data_type for t in g.initializer}
    to_float32 = {o for n in g.node if n.op_type == "Cast" and n.attribute[0].i == onnx.TensorProto.FLOAT
                  for o in n.output}  # fmt: skip
    # Every LayerNorm's scale and bias reach it as float32: a float32 initializer of its own, or
    # (random weights: the exporter merges the equal ones/zeros, shared with float16 ops) a Cast.
    inputs = [i for n in g.node if n.op_type == "LayerNormalization" for i in n.input[1:]]
    n_ln = sum(n.op_type == "LayerNormalization" for n in g.node)
    assert n_ln == 29 and len(inputs) == 2 * n_ln
    assert all(initializers.get(i) == onnx.TensorProto.FLOAT or i in to_float32 for i in inputs)
    assert _noop_initializer_casts(g) == []
    assert not {v.name for v in g.value_info} & set(initializers)
