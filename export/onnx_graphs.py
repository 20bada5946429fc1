"""A trained Milmer model -> ``swin.onnx`` and ``fusion.onnx``, the two graphs of a model directory.

Exporter: ``torch.onnx.export(dynamo=True)`` (``torch.export`` + onnxscript). The TorchScript
exporter (``dynamo=False``) was tried first and rejected: with torch 2.13 and transformers 5.x it
traces Python-int shapes into the graphs, so they were right only at the batch size they were
traced with (tokens off by 6e-3, logits by 0.2-0.9 at batch 1 or 3 after tracing at 2), and the
output shapes lost their static sizes. The dynamo exporter keeps the batch symbolic and matches
PyTorch at every batch size (Swin-T tokens within 5e-6). It needs eager attention (transformers'
SDPA path does not export); the backbone is built that way and :func:`check_exportable` makes sure.

The graphs use opset 18 (the lowest the dynamo exporter implements; opset 17 fails its
down-conversion), so LayerNorm stays one ``LayerNormalization`` node, which TensorRT computes in
fp32 even in fp16 engines. Swin's shifted-window mask is built in-graph from HF's finite -100
constant, never -inf, so fp16 variants cannot turn it into NaN (:func:`nonfinite_constants`
checks every exported constant).

Graph I/O names, the token size, tokens per frame and top-K come from the spec (updated from the
model by :func:`export_spec`); the spec JSON is stored in each graph's ``metadata_props``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from ..runtime.check import MilmerInputError
from ..runtime.model_dir import SPEC_METADATA_KEY
from ..runtime.spec import ModelSpec

if TYPE_CHECKING:
    import onnx

    from ..training.model import MilmerModel

__all__ = [
    "EXPORTER",
    "MIN_OPSET",
    "MAX_IR_VERSION",
    "BackboneGraph",
    "FusionGraph",
    "export_spec",
    "check_exportable",
    "export_backbone",
    "export_fusion",
    "embed_spec",
    "load_graph",
    "save_with_spec",
    "nonfinite_constants",
]

EXPORTER = "torch.onnx.export(dynamo=True)"
#: The lowest opset the dynamo exporter writes (LayerNormalization needs 17).
MIN_OPSET = 18
#: The newest ONNX IR version onnxruntime 1.31 reads.
MAX_IR_VERSION = 13
#: Batch the graphs are traced at: torch.export specialises sizes 0 and 1, so not those.
TRACE_BATCH = 2


class BackboneGraph(nn.Module):
    """``swin.onnx``: frames (N, 3, S, S) float32 -> tokens (N, P, H)."""

    def __init__(self, model: MilmerModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: Tensor) -> Tensor:
        return self.model.forward_backbone(frames)


class FusionGraph(nn.Module):
    """``fusion.onnx``: eeg (B, C, T), tokens (B, F, P, H) -> logits (B, K), probabilities
    (B, K) (softmax, in the graph so every backend returns the same), mil_weights (B, F),
    selected (B, top_k) int64 (top-K stays in the graph)."""

    def __init__(self, model: MilmerModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, eeg: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        logits, weights, selected = self.model.forward_fusion(eeg, tokens)
        return logits, torch.softmax(logits, dim=-1), weights, selected


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def export_spec(model: MilmerModel, spec: ModelSpec) -> ModelSpec:
    """``spec`` with ``graph`` sizes taken from the model (token size = backbone hidden size,
    tokens per frame, top-K), the opset the graphs are written with, and the export versions.

    Raises :class:`MilmerInputError` if the model's config disagrees with the spec's input
    contract (frames, EEG channels/samples, frame size, classes).
    """
    model.config.check_spec(spec)
    graph = dataclasses.replace(
        spec.graph,
        token_dim=int(model.token_dim),
        tokens_per_frame=int(model.config.tokens_per_frame),
        top_k=int(model.config.top_k),
        opset=max(spec.graph.opset, MIN_OPSET),
    )
    return spec.replace(graph=graph, versions={**spec.versions, **_versions()})


def check_exportable(model: MilmerModel) -> None:
    """Raise unless the backbone runs eager attention (the SDPA path fails the exporter)."""
    impl = getattr(model.backbone.config, "_attn_implementation", None)
    if impl != "eager":
        raise MilmerInputError(
            f"Invalid model: the Swin backbone uses attention implementation {impl!r}; export needs "
            "'eager' (build it with milmer.training.backbone, which sets it)."
        )


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[io.StringIO]:
    """Capture the exporter's progress prints, log lines and warnings (shown only on failure)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "onnxscript")]
    saved = [(lg.handlers[:], lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.handlers, lg.propagate = [handler], False
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            warnings.simplefilter("ignore")
            yield buffer
    finally:
        for lg, (handlers, propagate) in zip(loggers, saved):
            lg.handlers, lg.propagate = handlers, propagate


def embed_spec(model_proto: onnx.ModelProto, spec: ModelSpec) -> None:
    """Store ``spec`` as JSON under ``'milmer.spec'`` in ``metadata_props`` (replacing an old one)."""
    kept = [(p.key, p.value) for p in model_proto.metadata_props if p.key != SPEC_METADATA_KEY]
    del model_proto.metadata_props[:]
    for key, value in [*kept, (SPEC_METADATA_KEY, spec.to_json())]:
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, value


def load_graph(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """``onnx.load`` of an .onnx file (external data next to it loaded too)."""
    import onnx

    return onnx.load(str(path))


def save_with_spec(model_proto: onnx.ModelProto, path: str | os.PathLike[str], spec: ModelSpec) -> Path:
    """Embed ``spec`` (:func:`embed_spec`) and write ``model_proto`` to ``path`` as one file."""
    import onnx

    embed_spec(model_proto, spec)
    onnx.save_model(model_proto, str(path), save_as_external_data=False)
    return Path(path)


def nonfinite_constants(model_proto: onnx.ModelProto) -> list[str]:
    """Names of float initializers/Constant values holding inf or NaN (empty: all finite)."""
    from onnx import numpy_helper

    tensors = list(model_proto.graph.initializer)
    for node in model_proto.graph.node:
        if node.op_type == "Constant":
            tensors += [a.t for a in node.attribute if a.name == "value"]
    bad = []
    for t in tensors:
        array = numpy_helper.to_array(t)
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad.append(t.name or "(constant)")
    return bad


def _export(
    module: nn.Module,
    args: tuple[Tensor, ...],
    input_names: list[str],
    output_names: list[str],
    batch_name: str,
    path: str | os.PathLike[str],
    spec: ModelSpec,
) -> Path:
    """Export ``module`` with axis 0 of every input dynamic as ``batch_name``; embed ``spec``."""
    import onnx

    path = Path(path)
    batch = torch.export.Dim(batch_name, min=1)
    dynamic_shapes = {name: {0: batch} for name in input_names}
    modes = [(m, m.training) for m in module.modules()]  # restored after: export needs eval mode
    with _quiet_exporter() as log, torch.no_grad():
        try:
            program = torch.onnx.export(
                module.eval(),
                args,
                None,
                dynamo=True,
                opset_version=spec.graph.opset,
                input_names=input_names,
                output_names=output_names,
                dynamic_shapes=dynamic_shapes,
                verbose=False,
            )
        except Exception as err:  # the exporter raises many types; all mean "not exportable"
            raise RuntimeError(
                f"ONNX export of {path.name} failed ({type(err).__name__}: {err}). Exporter output:\n"
                f"{log.getvalue()[-4000:]}"
            ) from err
        finally:
            for m, mode in modes:
                m.training = mode
    proto: Any = program.model_proto
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset != spec.graph.opset or proto.ir_version > MAX_IR_VERSION:
        raise RuntimeError(
            f"ONNX export of {path.name} wrote opset {opset} / IR {proto.ir_version}; expected opset "
            f"{spec.graph.opset} and IR <= {MAX_IR_VERSION} (what onnxruntime reads)."
        )
    bad = nonfinite_constants(proto)
    if bad:
        raise RuntimeError(f"ONNX export of {path.name} holds non-finite constants: {', '.join(bad[:5])}.")
    embed_spec(proto, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One self-contained file (no external weights): Swin-T is ~110 MB, far below protobuf's 2 GB.
    onnx.save_model(proto, str(path), save_as_external_data=False)
    return path


def export_backbone(model: MilmerModel, path: str | os.PathLike[str], spec: ModelSpec) -> Path:
    """Write ``swin.onnx``: frames (N, 3, S, S) float32 -> tokens (N, P, H), N dynamic.

    I/O names are ``spec.graph.backbone_input`` / ``backbone_output``; the graph carries
    :func:`export_spec` of ``spec`` in its metadata. Returns ``path``.
    """
    check_exportable(model)
    spec = export_spec(model, spec)
    s = spec.face.frame_size
    frames = torch.randn(TRACE_BATCH, 3, s, s, generator=torch.Generator().manual_seed(0))
    g = spec.graph
    return _export(BackboneGraph(model), (frames,), [g.backbone_input], [g.backbone_output], "N", path, spec)


def export_fusion(model: MilmerModel, path: str | os.PathLike[str], spec: ModelSpec) -> Path:
    """Write ``fusion.onnx``: eeg (B, C, T), tokens (B, F, P, H) -> logits, probabilities,
    mil_weights, selected (names from ``spec.graph``), B dynamic. Returns ``path``."""
    spec = export_spec(model, spec)
    g = spec.graph
    gen = torch.Generator().manual_seed(0)
    eeg = torch.randn(TRACE_BATCH, spec.eeg.n_channels, spec.eeg.window_samples, generator=gen)
    tokens = torch.randn(
        TRACE_BATCH, spec.face.frames_per_window, g.tokens_per_frame, g.token_dim, generator=gen
    )
    return _export(
        FusionGraph(model), (eeg, tokens), list(g.fusion_inputs), list(g.fusion_outputs), "B", path, spec
    )
