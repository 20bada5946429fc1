"""Tiny ONNX stand-ins for the two exported graphs, with numpy references.

They have the real graphs' I/O names, dtypes and shapes (dynamic batch axes 'N' and 'B') and a
few cheap ops each, so backends and the model-directory loader can be tested without torch.
Loaded by path (tests run with --import-mode=importlib): see ``load()`` callers.

swin:   frames (N, 3, S, S) -> Reshape (N, 3, P, S*S/P) -> mean -> (N, 3, P) -> (N, P, 3) @ W -> tokens (N, P, D)
fusion: eeg (B, C, T), tokens (B, F, P, D)
        tm = mean over P -> (B, F, D); s = tm @ v -> (B, F)
        mil_weights = softmax(s); selected = top-k indices of s
        logits = [mean_t(eeg), mean_F(tm)] @ Wc + b; probabilities = softmax(logits)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from milmer.runtime.spec import ModelSpec

SPEC_KEY = "milmer.spec"


def _model(nodes, inputs, outputs, weights, spec_json: str | None) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "tiny",
        inputs,
        outputs,
        initializer=[numpy_helper.from_array(w, n) for n, w in weights.items()],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="milmer-tests"
    )
    model.ir_version = 10
    if spec_json is not None:
        helper.set_model_props(model, {SPEC_KEY: spec_json})
    onnx.checker.check_model(model)
    return model


def swin_weights(spec: ModelSpec, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"W": rng.standard_normal((3, spec.graph.token_dim)).astype(np.float32)}


def make_swin(
    spec: ModelSpec, *, frame_size: int | None = None, spec_json: str | None = "", seed: int = 0
) -> onnx.ModelProto:
    """``frame_size`` overrides the spec's (for mismatch tests); ``spec_json=''`` embeds ``spec``."""
    g = spec.graph
    s = frame_size or spec.face.frame_size
    assert (s * s) % g.tokens_per_frame == 0, "S*S must split into tokens_per_frame groups"
    weights = {
        "W": swin_weights(spec, seed)["W"],
        "shape": np.array([0, 3, g.tokens_per_frame, -1], np.int64),
    }
    nodes = [
        helper.make_node("Reshape", [g.backbone_input, "shape"], ["r"]),
        helper.make_node("ReduceMean", ["r"], ["m"], axes=[3], keepdims=0),
        helper.make_node("Transpose", ["m"], ["t"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["t", "W"], [g.backbone_output]),
    ]
    inputs = [helper.make_tensor_value_info(g.backbone_input, TensorProto.FLOAT, ["N", 3, s, s])]
    outputs = [
        helper.make_tensor_value_info(
            g.backbone_output, TensorProto.FLOAT, ["N", g.tokens_per_frame, g.token_dim]
        )
    ]
    return _model(nodes, inputs, outputs, weights, spec.to_json() if spec_json == "" else spec_json)


def swin_reference(spec: ModelSpec, frames: np.ndarray, seed: int = 0) -> np.ndarray:
    n, p = frames.shape[0], spec.graph.tokens_per_frame
    m = frames.astype(np.float64).reshape(n, 3, p, -1).mean(axis=3)
    return (m.transpose(0, 2, 1) @ swin_weights(spec, seed)["W"]).astype(np.float32)


def fusion_weights(spec: ModelSpec, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    d, c, k = spec.graph.token_dim, spec.eeg.n_channels, spec.n_classes
    return {
        "v": rng.standard_normal((d, 1)).astype(np.float32),
        "Wc": rng.standard_normal((c + d, k)).astype(np.float32),
        "b": rng.standard_normal((k,)).astype(np.float32),
    }


def make_fusion(
    spec: ModelSpec, *, top_k: int | None = None, spec_json: str | None = "", seed: int = 1
) -> onnx.ModelProto:
    g = spec.graph
    eeg, tokens = g.fusion_inputs
    logits, probs, weights_out, selected = g.fusion_outputs
    weights = {
        **fusion_weights(spec, seed),
        "axis2": np.array([2], np.int64),
        "k": np.array([top_k or g.top_k], np.int64),
    }
    nodes = [
        helper.make_node("ReduceMean", [eeg], ["e"], axes=[2], keepdims=0),
        helper.make_node("ReduceMean", [tokens], ["tm"], axes=[2], keepdims=0),
        helper.make_node("MatMul", ["tm", "v"], ["s3"]),
        helper.make_node("Squeeze", ["s3", "axis2"], ["s"]),
        helper.make_node("Softmax", ["s"], [weights_out], axis=1),
        helper.make_node("TopK", ["s", "k"], ["topv", selected], axis=1),
        helper.make_node("ReduceMean", ["tm"], ["pooled"], axes=[1], keepdims=0),
        helper.make_node("Concat", ["e", "pooled"], ["feat"], axis=1),
        helper.make_node("MatMul", ["feat", "Wc"], ["lin"]),
        helper.make_node("Add", ["lin", "b"], [logits]),
        helper.make_node("Softmax", [logits], [probs], axis=1),
    ]
    f, p, d = spec.face.frames_per_window, g.tokens_per_frame, g.token_dim
    k = top_k or g.top_k
    inputs = [
        helper.make_tensor_value_info(
            eeg, TensorProto.FLOAT, ["B", spec.eeg.n_channels, spec.eeg.window_samples]
        ),
        helper.make_tensor_value_info(tokens, TensorProto.FLOAT, ["B", f, p, d]),
    ]
    outputs = [
        helper.make_tensor_value_info(logits, TensorProto.FLOAT, ["B", spec.n_classes]),
        helper.make_tensor_value_info(probs, TensorProto.FLOAT, ["B", spec.n_classes]),
        helper.make_tensor_value_info(weights_out, TensorProto.FLOAT, ["B", f]),
        helper.make_tensor_value_info(selected, TensorProto.INT64, ["B", k]),
    ]
    return _model(nodes, inputs, outputs, weights, spec.to_json() if spec_json == "" else spec_json)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def fusion_reference(
    spec: ModelSpec, eeg: np.ndarray, tokens: np.ndarray, seed: int = 1
) -> dict[str, np.ndarray]:
    w = fusion_weights(spec, seed)
    tm = tokens.astype(np.float64).mean(axis=2)  # (B, F, D)
    s = (tm @ w["v"])[..., 0]  # (B, F)
    feat = np.concatenate([eeg.astype(np.float64).mean(axis=2), tm.mean(axis=1)], axis=1)
    logits = feat @ w["Wc"] + w["b"]
    return {
        "logits": logits.astype(np.float32),
        "probabilities": _softmax(logits).astype(np.float32),
        "mil_weights": _softmax(s).astype(np.float32),
        "selected": np.argsort(-s, axis=1, kind="stable")[:, : spec.graph.top_k].astype(np.int64),
    }


def tiny_spec() -> ModelSpec:
    """The default spec with 8-dim tokens (keeps test tensors small)."""
    import dataclasses

    base = ModelSpec()
    return base.replace(graph=dataclasses.replace(base.graph, token_dim=8))


def write_model_dir(
    out: Path, spec: ModelSpec, *, precisions: tuple[str, ...] = ("fp32",), **graph_kwargs
) -> Path:
    """spec.json plus swin/fusion graphs for each precision (same fp32 content under each name)."""
    out.mkdir(parents=True, exist_ok=True)
    spec.save(out / "spec.json")
    swin_kw = {k[5:]: v for k, v in graph_kwargs.items() if k.startswith("swin_")}
    fusion_kw = {k[7:]: v for k, v in graph_kwargs.items() if k.startswith("fusion_")}
    swin, fusion = make_swin(spec, **swin_kw), make_fusion(spec, **fusion_kw)
    for p in precisions:
        suffix = ".onnx" if p == "fp32" else f".{p}.onnx"
        onnx.save(swin, str(out / f"swin{suffix}"))
        onnx.save(fusion, str(out / f"fusion{suffix}"))
    return out
