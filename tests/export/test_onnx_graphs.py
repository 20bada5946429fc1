"""The two exported graphs: I/O names and sizes from the spec, embedded spec, dynamic batch, parity."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import onnx
import pytest
import torch

from milmer.export.onnx_graphs import MIN_OPSET, check_exportable, export_spec, nonfinite_constants
from milmer.runtime.check import MilmerInputError
from milmer.runtime.backends.ort import OrtRunner
from milmer.runtime.model_dir import SPEC_METADATA_KEY, load_model_dir, read_graph_info
from milmer.runtime.spec import ModelSpec

# ONNX Runtime vs PyTorch on the tiny model; measured ~2e-6 (tokens) and ~4e-7 (logits).
PARITY_ATOL = 1e-5


def test_graph_io_names_sizes_and_embedded_spec(exported):
    spec = ModelSpec.load(exported / "spec.json")
    g = spec.graph
    assert (g.token_dim, g.tokens_per_frame, g.top_k, g.opset) == (64, 49, 3, 18)
    swin, fusion = read_graph_info(exported / "swin.onnx"), read_graph_info(exported / "fusion.onnx")
    assert swin.inputs == {"frames": (np.dtype(np.float32), ("N", 3, 224, 224))}
    assert swin.outputs == {"tokens": (np.dtype(np.float32), ("N", 49, 64))}
    assert list(fusion.inputs) == list(g.fusion_inputs) == ["eeg", "tokens"]
    assert fusion.inputs["tokens"] == (np.dtype(np.float32), ("B", 10, 49, 64))
    assert list(fusion.outputs) == list(g.fusion_outputs)
    assert fusion.outputs["selected"] == (np.dtype(np.int64), ("B", 3))
    assert fusion.outputs["probabilities"] == (np.dtype(np.float32), ("B", 4))
    for info in (swin, fusion):
        assert ModelSpec.from_json(info.metadata[SPEC_METADATA_KEY]) == spec
    for precision in ("fp32", "fp16", "int8"):
        bundle = load_model_dir(exported, precision=precision)
        assert bundle.spec == spec


def test_graphs_keep_layernorm_and_finite_mask_constants(exported):
    for name in ("swin.onnx", "fusion.onnx"):
        proto = onnx.load(str(exported / name))
        ops = Counter(n.op_type for n in proto.graph.node)
        assert ops["LayerNormalization"] > 0, name
        assert ops["ReduceMean"] <= 1, name  # LayerNorm was not decomposed (1: the MIL mean)
        assert nonfinite_constants(proto) == [], name
        assert proto.ir_version <= 13
    swin_ops = Counter(n.op_type for n in onnx.load(str(exported / "swin.onnx")).graph.node)
    assert swin_ops["Where"] > 0  # the shifted-window mask is built in the graph (finite -100)
    fusion_ops = Counter(n.op_type for n in onnx.load(str(exported / "fusion.onnx")).graph.node)
    assert fusion_ops["TopK"] >= 1 and fusion_ops["Softmax"] >= 1  # top-K and softmax in the graph


@pytest.mark.parametrize("n_frames", [1, 7])
def test_backbone_dynamic_batch_matches_pytorch(exported, tiny_model, n_frames):
    model, _ = tiny_model
    frames = torch.randn(n_frames, 3, 224, 224, generator=torch.Generator().manual_seed(n_frames))
    with torch.no_grad():
        expected = model.forward_backbone(frames).numpy()
    with OrtRunner(exported / "swin.onnx") as runner:
        got = runner.infer({"frames": frames.numpy()})["tokens"]
    assert got.shape == (n_frames, 49, 64)
    assert np.abs(got - expected).max() < PARITY_ATOL


@pytest.mark.parametrize("n_bags", [1, 3])
def test_fusion_dynamic_batch_matches_pytorch(exported, tiny_model, n_bags):
    model, _ = tiny_model
    gen = torch.Generator().manual_seed(10 + n_bags)
    eeg, tokens = 20 * torch.randn(n_bags, 32, 384, generator=gen), torch.randn(n_bags, 10, 49, 64, generator=gen)
    with torch.no_grad():
        logits, weights, selected = model.forward_fusion(eeg, tokens)
    with OrtRunner(exported / "fusion.onnx") as runner:
        out = runner.infer({"eeg": eeg.numpy(), "tokens": tokens.numpy()})
    assert np.abs(out["logits"] - logits.numpy()).max() < PARITY_ATOL
    np.testing.assert_allclose(out["probabilities"], torch.softmax(logits, -1).numpy(), atol=PARITY_ATOL)
    np.testing.assert_allclose(out["probabilities"].sum(1), 1.0, atol=1e-6)
    assert np.abs(out["mil_weights"] - weights.numpy()).max() < PARITY_ATOL
    np.testing.assert_array_equal(out["selected"], selected.numpy())


def test_export_spec_takes_sizes_from_the_model(tiny_model):
    model, spec = tiny_model
    stale = spec.replace(graph=dataclasses.replace(spec.graph, token_dim=768, opset=17))
    updated = export_spec(model, stale)
    assert (updated.graph.token_dim, updated.graph.opset) == (64, MIN_OPSET)
    assert {"torch", "onnx", "onnxruntime", "transformers"} <= set(updated.versions)
    assert updated.fingerprint() == spec.replace(graph=updated.graph).fingerprint()


def test_export_spec_refuses_a_spec_the_model_was_not_trained_for(tiny_model):
    model, _ = tiny_model
    with pytest.raises(MilmerInputError, match="Model config and spec disagree: n_classes: config 4, spec 3"):
        export_spec(model, ModelSpec.for_scheme("deap3-valence"))


def test_sdpa_attention_is_refused(tiny_model, monkeypatch):
    model, _ = tiny_model
    monkeypatch.setattr(model.backbone.config, "_attn_implementation", "sdpa")
    with pytest.raises(MilmerInputError, match="attention implementation 'sdpa'; export needs 'eager'"):
        check_exportable(model)


@pytest.mark.parametrize(
    "variant",
    [{"eeg_tokens": "spectral"}, {"eeg_tokens": "spectral", "visual_integration": "mlp", "n_layers": 1}],
    ids=["spectral-cross-attention", "spectral-mlp"],
)
def test_spectral_eeg_and_mil_weighting_export_with_parity(tiny_model, tmp_path, variant):
    """Spectral EEG tokens (a DFT as MatMul with constant cos/sin matrices) and the MIL weights
    (attention bias / post-norm scale) export to plain ops and match PyTorch in ONNX Runtime."""
    from milmer.export.onnx_graphs import export_fusion
    from milmer.training.model import MilmerModel

    base, spec = tiny_model
    config = base.config.replace(**variant)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = MilmerModel(config, base.backbone).eval()
    path = export_fusion(model, tmp_path / "fusion.onnx", spec)
    ops = Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    # No DFT/STFT, no boolean masks (Where on a mask); TopK (selection, then temporal sort) + gathers.
    assert not {"DFT", "STFT", "Where", "Not"} & set(ops) and ops["TopK"] == 2 and ops["GatherElements"] == 2
    gen = torch.Generator().manual_seed(5)
    eeg, tokens = 20 * torch.randn(3, 32, 384, generator=gen), torch.randn(3, 10, 49, 64, generator=gen)
    with torch.no_grad():
        logits, weights, selected = model.forward_fusion(eeg, tokens)
    with OrtRunner(path) as runner:
        out = runner.infer({"eeg": eeg.numpy(), "tokens": tokens.numpy()})
    assert np.abs(out["logits"] - logits.numpy()).max() < PARITY_ATOL
    assert np.abs(out["mil_weights"] - weights.numpy()).max() < PARITY_ATOL
    np.testing.assert_array_equal(out["selected"], selected.numpy())
