"""A model repository for the stock NVIDIA Triton Inference Server: the two graphs as an ensemble.

``milmer export-triton MODEL_DIR --out REPO`` writes::

    REPO/
      milmer/config.pbtxt            ensemble: eeg (B, C, T) FP32 + frames (B, F, S, S, 3) UINT8
      milmer/1/                        -> logits, probabilities, mil_weights, selected (INT64)
      milmer_backbone/config.pbtxt   frames -> tokens per bag, dynamic batching (bags)
      milmer_backbone/1/model.onnx   swin.onnx behind a small preprocessing head (below)
      milmer_fusion/config.pbtxt     eeg + tokens -> the four outputs, dynamic batching (bags)
      milmer_fusion/1/model.onnx     fusion.onnx, unchanged
      build_engines.sh               (backend 'tensorrt') trtexec lines that write model.plan files
      README.md                      how to run it

The served model ``milmer`` takes and returns exactly what ``milmer serve`` does
(:mod:`milmer.runtime.serve.protocol`), spec included (``parameters["milmer.spec"]``), so
``milmer-infer --server`` and ``milmer score-study`` work against either server.

Why a preprocessing head: Triton batches along one axis, the bag axis B, but ``swin.onnx`` takes
frames ``(N, 3, S, S)`` float32 with ``N = B * F``, normalised. Its ONNX graph is therefore wrapped
(``onnx`` only, no torch) into ``frames (B, F, S, S, 3) uint8 -> Cast -> / 255 - mean -> / std ->
Transpose -> Reshape (B*F, 3, S, S) -> [swin.onnx] -> Reshape tokens (B, F, P, D)``: the same
arithmetic, in the same float32 order, as :func:`milmer.runtime.face.crop.normalize`, and the same
frame layout as :meth:`Pipeline.score_bags`. Both steps then batch on bags, and their dynamic
batchers, ``max_batch_size`` and ``preferred_batch_size`` come from the optimisation profile in
bags ``(min, opt, max)`` that ``milmer export --trt-profile`` uses (default 1, 8, 32).

Backends: 'onnxruntime' (Triton's ONNX Runtime backend; on GPU instances the TensorRT execution
accelerator is configured, with an engine cache) or 'tensorrt' (Triton's TensorRT backend: run
``build_engines.sh`` on the deployment GPU first; it builds ``model.plan`` from the same ONNX files
with the same profile, in bags for the fusion graph and in bags for the wrapped backbone).

NOT RUN HERE: this project's machines have no GPU and no tritonserver build with these backends;
the configurations are checked by parsing them with Triton's own model-config protobuf and
comparing them with the ONNX graphs, and the wrapped graphs are run with ONNX Runtime
(tests/export/test_triton_repo.py).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..runtime.check import MilmerInputError, check_int, check_option, check_requires
from ..runtime.files import atomic_dir
from ..runtime.backends.base import PRECISIONS
from ..runtime.model_dir import graph_filename, load_model_dir
from ..runtime.serve.protocol import INPUTS, MODEL_NAME, OUTPUTS, SPEC_PARAMETER, bag_tensors
from ..runtime.spec import ModelSpec
from .tensorrt_build import BagProfile, check_bag_profile

__all__ = [
    "BACKBONE_MODEL",
    "FUSION_MODEL",
    "TRITON_BACKENDS",
    "bag_backbone_graph",
    "write_triton_repo",
]

BACKBONE_MODEL = f"{MODEL_NAME}_backbone"
FUSION_MODEL = f"{MODEL_NAME}_fusion"
TRITON_BACKENDS: tuple[str, ...] = ("onnxruntime", "tensorrt")
#: Names of the wrapped backbone's input/output (Triton model ``milmer_backbone``).
BACKBONE_IN, BACKBONE_OUT = "frames", "tokens"
_ONNX_TO_TRITON = {np.dtype(np.float32): "TYPE_FP32", np.dtype(np.uint8): "TYPE_UINT8", np.dtype(np.int64): "TYPE_INT64"}


# ---------------------------------------------------------------------- the wrapped backbone
def bag_backbone_graph(swin_path: str | os.PathLike[str], spec: ModelSpec) -> Any:
    """``swin.onnx`` behind the preprocessing head (module docstring), as an ``onnx.ModelProto``.

    frames (B, F, S, S, 3) uint8 RGB crops -> tokens (B, F, P, D) float32.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(swin_path))
    graph = model.graph
    g, f, s = spec.graph, spec.face.frames_per_window, spec.face.frame_size
    p, d = g.tokens_per_frame, g.token_dim
    names = {n for node in graph.node for n in (*node.input, *node.output)} | {t.name for t in graph.initializer}
    prefix = "milmer_bag_"
    if any(n.startswith(prefix) for n in names) or BACKBONE_IN in names - {g.backbone_input} or BACKBONE_OUT in names - {g.backbone_output}:
        raise MilmerInputError(f"Cannot wrap {str(swin_path)!r}: it already uses the tensor names this wrapper adds.")
    constants = {
        f"{prefix}255": np.array(255.0, np.float32),
        f"{prefix}mean": np.array(spec.face.mean, np.float32).reshape(1, 1, 3, 1, 1),
        f"{prefix}std": np.array(spec.face.std, np.float32).reshape(1, 1, 3, 1, 1),
        f"{prefix}frames_shape": np.array([-1, 3, s, s], np.int64),
        f"{prefix}tokens_shape": np.array([-1, f, p, d], np.int64),
    }
    # Internal names of the original graph's input/output, so the wrapper's I/O can take over.
    inner_in, inner_out = f"{prefix}swin_in", f"{prefix}swin_out"
    for node in graph.node:
        node.input[:] = [inner_in if n == g.backbone_input else n for n in node.input]
        node.output[:] = [inner_out if n == g.backbone_output else n for n in node.output]
    head = [
        helper.make_node("Cast", [BACKBONE_IN], [f"{prefix}float"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", [f"{prefix}float"], [f"{prefix}chw"], perm=[0, 1, 4, 2, 3]),  # (B, F, 3, S, S)
        helper.make_node("Div", [f"{prefix}chw", f"{prefix}255"], [f"{prefix}unit"]),
        helper.make_node("Sub", [f"{prefix}unit", f"{prefix}mean"], [f"{prefix}centred"]),
        helper.make_node("Div", [f"{prefix}centred", f"{prefix}std"], [f"{prefix}normalised"]),
        helper.make_node("Reshape", [f"{prefix}normalised", f"{prefix}frames_shape"], [inner_in]),  # (B*F, 3, S, S)
    ]
    tail = [helper.make_node("Reshape", [inner_out, f"{prefix}tokens_shape"], [BACKBONE_OUT])]  # (B, F, P, D)
    nodes = _topological([*head, *graph.node, *tail], {BACKBONE_IN, *(t.name for t in graph.initializer), *constants, ""})
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in constants.items())
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info(BACKBONE_IN, TensorProto.UINT8, ["B", f, s, s, 3]))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(BACKBONE_OUT, TensorProto.FLOAT, ["B", f, p, d]))
    # Shapes inferred for the old I/O names would now be wrong.
    kept = [v for v in graph.value_info if v.name not in (g.backbone_input, g.backbone_output)]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    onnx.checker.check_model(model)
    return model


def _topological(nodes: list[Any], available: set[str]) -> list[Any]:
    """``nodes`` in an order where every input is produced first (stable otherwise).

    ONNX requires it and ONNX Runtime does not: the fp16 converter appends its input casts after
    their consumers, so a wrapped fp16 graph must be sorted to pass the ONNX checker.
    """
    done, pending, ordered = set(available), list(nodes), []
    while pending:
        ready = [n for n in pending if all(i in done for i in n.input)]
        if not ready:
            raise MilmerInputError(f"Cannot order the backbone graph: inputs never produced: {sorted({i for n in pending for i in n.input} - done)[:5]}.")
        ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ids]
        for n in ready:
            ordered.append(n)
            done.update(n.output)
    return ordered


# ---------------------------------------------------------------------- config.pbtxt text
def _q(text: str) -> str:
    """A protobuf text-format string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _tensors(kind: str, items: list[tuple[str, str, tuple[int, ...]]]) -> str:
    rows = [
        f"  {{ name: {_q(name)} data_type: {dtype} dims: [ {', '.join(str(x) for x in dims)} ] }}" for name, dtype, dims in items
    ]
    return f"{kind} [\n" + ",\n".join(rows) + "\n]\n"


def _graph_io(model: Any) -> tuple[list[tuple[str, str, tuple[int, ...]]], list[tuple[str, str, tuple[int, ...]]]]:
    """(inputs, outputs) of an ONNX graph as (name, Triton dtype, dims without the batch axis)."""
    from onnx import helper

    def rows(values: Any) -> list[tuple[str, str, tuple[int, ...]]]:
        out = []
        for v in values:
            tt = v.type.tensor_type
            dtype = _ONNX_TO_TRITON[np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type))]
            dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
            if any(x < 0 for x in dims[1:]):
                raise MilmerInputError(f"Graph {model.graph.name!r}: {v.name!r} has a dynamic axis besides the batch axis: {dims}.")
            out.append((v.name, dtype, dims[1:]))
        return out

    weights = {t.name for t in model.graph.initializer}
    return rows(v for v in model.graph.input if v.name not in weights), rows(model.graph.output)


def _step_config(
    name: str,
    model: Any,
    *,
    backend: str,
    bags: BagProfile,
    queue_delay_us: int,
    instance_kind: str,
    precision: str,
) -> str:
    inputs, outputs = _graph_io(model)
    lines = [f"name: {_q(name)}"]
    if backend == "tensorrt":
        lines.append('platform: "tensorrt_plan"')
    else:
        lines.append('backend: "onnxruntime"')
        lines.append('default_model_filename: "model.onnx"')
    lines.append(f"max_batch_size: {bags[2]}")
    text = "\n".join(lines) + "\n" + _tensors("input", inputs) + _tensors("output", outputs)
    text += f"dynamic_batching {{\n  preferred_batch_size: [ {bags[1]} ]\n  max_queue_delay_microseconds: {queue_delay_us}\n}}\n"
    text += f"instance_group [ {{ kind: {instance_kind} count: 1 }} ]\n"
    if backend == "onnxruntime" and instance_kind == "KIND_GPU":
        params = {"precision_mode": "FP16" if precision == "fp16" else "FP32", "max_workspace_size_bytes": str(4 << 30),
                  "trt_engine_cache_enable": "true", "trt_engine_cache_path": f"/tmp/milmer-trt-cache/{name}"}  # fmt: skip
        body = "\n".join(f"        parameters {{ key: {_q(k)} value: {_q(v)} }}" for k, v in params.items())
        text += (
            "optimization { execution_accelerators {\n"
            '  gpu_execution_accelerator : [ {\n        name : "tensorrt"\n' + body + "\n  } ]\n} }\n"
        )
    return text


def _ensemble_config(spec: ModelSpec, bags: BagProfile) -> str:
    inputs, outputs = bag_tensors(spec)
    to_type = {"FP32": "TYPE_FP32", "UINT8": "TYPE_UINT8", "INT64": "TYPE_INT64"}
    g = spec.graph
    eeg_name, tokens_name = g.fusion_inputs
    fusion_map_out = "\n".join(
        f"        {{ key: {_q(graph_name)} value: {_q(served)} }}," for graph_name, served in zip(g.fusion_outputs, OUTPUTS)
    ).rstrip(",")
    return (
        f"name: {_q(MODEL_NAME)}\nplatform: \"ensemble\"\nmax_batch_size: {bags[2]}\n"
        + _tensors("input", [(t.name, to_type[t.triton_dtype], t.shape) for t in inputs])
        + _tensors("output", [(t.name, to_type[t.triton_dtype], t.shape) for t in outputs])
        + "ensemble_scheduling {\n  step [\n"
        f"    {{\n      model_name: {_q(BACKBONE_MODEL)}\n      model_version: -1\n"
        f"      input_map {{ key: {_q(BACKBONE_IN)} value: {_q(INPUTS[1])} }}\n"
        f"      output_map {{ key: {_q(BACKBONE_OUT)} value: \"bag_tokens\" }}\n    }},\n"
        f"    {{\n      model_name: {_q(FUSION_MODEL)}\n      model_version: -1\n"
        f"      input_map [\n        {{ key: {_q(eeg_name)} value: {_q(INPUTS[0])} }},\n"
        f"        {{ key: {_q(tokens_name)} value: \"bag_tokens\" }}\n      ]\n"
        f"      output_map [\n{fusion_map_out}\n      ]\n    }}\n  ]\n}}\n"
        f"parameters {{ key: {_q(SPEC_PARAMETER)} value: {{ string_value: {_q(spec.to_json(indent=None))} }} }}\n"
    )


def _trtexec_script(spec: ModelSpec, bags: BagProfile, precision: str, workspace_gb: float) -> str:
    f, s, g = spec.face.frames_per_window, spec.face.frame_size, spec.graph
    eeg_name, tokens_name = g.fusion_inputs
    shapes = {
        BACKBONE_MODEL: lambda b: f"{BACKBONE_IN}:{b}x{f}x{s}x{s}x3",
        FUSION_MODEL: lambda b: (
            f"{eeg_name}:{b}x{spec.eeg.n_channels}x{spec.eeg.window_samples},"
            f"{tokens_name}:{b}x{f}x{g.tokens_per_frame}x{g.token_dim}"
        ),
    }
    lines = [
        "#!/usr/bin/env bash",
        "# Build the TensorRT engines (model.plan) of this repository ON THE DEPLOYMENT GPU (engines are",
        "# tied to the GPU and the TensorRT version: use the trtexec of the Triton container you serve with).",
        f"# Optimisation profile: {bags[0]}/{bags[1]}/{bags[2]} bags (min/opt/max), as milmer export --trt-profile.",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
    ]
    for model in (BACKBONE_MODEL, FUSION_MODEL):
        args = [
            "trtexec",
            f"--onnx={model}/1/model.onnx",
            f"--saveEngine={model}/1/model.plan",
            "--fp16" if precision == "fp16" else "--noTF32",
            f"--minShapes={shapes[model](bags[0])}",
            f"--optShapes={shapes[model](bags[1])}",
            f"--maxShapes={shapes[model](bags[2])}",
            f"--memPoolSize=workspace:{int(workspace_gb * 1024)}M",
        ]
        lines.append(" ".join(shlex.quote(a) for a in args))
    return "\n".join(lines) + "\n"


def _readme(spec: ModelSpec, backend: str, bags: BagProfile, precision: str) -> str:
    inputs, outputs = bag_tensors(spec)
    fmt = lambda ts: ", ".join(f"{t.name} {t.shape} {t.triton_dtype}" for t in ts)  # noqa: E731
    build = "bash build_engines.sh   # on the GPU, inside the Triton container (writes model.plan)\n" if backend == "tensorrt" else ""
    return (
        "# milmer model repository for NVIDIA Triton Inference Server\n\n"
        f"Backend {backend}, precision {precision}, batches of {bags[0]}..{bags[2]} bags (preferred {bags[1]}).\n"
        f"Model `{MODEL_NAME}` (ensemble of `{BACKBONE_MODEL}` and `{FUSION_MODEL}`), per bag:\n"
        f"inputs {fmt(inputs)}; outputs {fmt(outputs)}.\n\n"
        "```bash\n"
        f"{build}"
        "tritonserver --model-repository=$PWD   # HTTP 8000, gRPC 8001, metrics 8002\n"
        "milmer-infer VIDEO EEG --server http://HOST:8000\n"
        "```\n"
    )


# ---------------------------------------------------------------------- entry point
def write_triton_repo(
    model_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    backend: Literal["onnxruntime", "tensorrt"] = "onnxruntime",
    precision: str = "fp32",
    profile: BagProfile = (1, 8, 32),
    max_queue_delay_us: int = 2000,
    device: Literal["gpu", "cpu"] = "gpu",
    workspace_gb: float = 4.0,
    overwrite: bool = False,
) -> Path:
    """Write the Triton model repository for ``model_dir`` into ``out`` (see the module docstring).

    backend:   'onnxruntime' or 'tensorrt' (Triton backend of both steps)
    precision: which graphs of the model directory ('fp32', 'fp16'; 'int8' for CPU instances)
    profile:   (min, opt, max) bags: max_batch_size = max, preferred_batch_size = opt, engines' shapes
    device:    'gpu' (KIND_GPU instances) or 'cpu' (KIND_CPU; onnxruntime only)

    The model directory is checked first (:func:`load_model_dir`); ``out`` is written atomically.
    """
    check_option("--backend", backend, TRITON_BACKENDS)
    check_option("--precision", precision, PRECISIONS)
    check_option("--device", device, ("gpu", "cpu"))
    bags = check_bag_profile(tuple(profile) if isinstance(profile, list) else profile)
    check_int("--max-queue-delay-us", max_queue_delay_us, low=0)
    check_requires(
        "--backend", backend, "a GPU at fp32 or fp16", backend != "tensorrt" or (device == "gpu" and precision != "int8"),
        f"device {device!r}, precision {precision!r}",
    )
    import onnx

    bundle = load_model_dir(model_dir, precision=precision, names={"model_dir": "MODEL", "precision": "--precision"})  # type: ignore[arg-type]
    spec = bundle.spec
    kind = "KIND_GPU" if device == "gpu" else "KIND_CPU"
    backbone = bag_backbone_graph(bundle.swin_path, spec)
    fusion = onnx.load(str(bundle.fusion_path))
    with atomic_dir(out, overwrite=overwrite, name="--out") as tmp:
        for name, model in ((BACKBONE_MODEL, backbone), (FUSION_MODEL, fusion)):
            (tmp / name / "1").mkdir(parents=True)
            if model is fusion:
                shutil.copyfile(bundle.fusion_path, tmp / name / "1" / "model.onnx")
            else:
                onnx.save(model, str(tmp / name / "1" / "model.onnx"))
            config = _step_config(
                name, model, backend=backend, bags=bags, queue_delay_us=max_queue_delay_us, instance_kind=kind, precision=precision
            )
            (tmp / name / "config.pbtxt").write_text(config)
        (tmp / MODEL_NAME / "1").mkdir(parents=True)
        (tmp / MODEL_NAME / "config.pbtxt").write_text(_ensemble_config(spec, bags))
        if backend == "tensorrt":
            script = tmp / "build_engines.sh"
            script.write_text(_trtexec_script(spec, bags, precision, workspace_gb))
            script.chmod(0o755)
        (tmp / "README.md").write_text(_readme(spec, backend, bags, precision))
        (tmp / "milmer_repo.json").write_text(
            json.dumps(
                {"model_dir": str(Path(model_dir).resolve()), "backend": backend, "precision": precision,
                 "profile_bags": list(bags), "device": device, "source_graphs": {
                     BACKBONE_MODEL: graph_filename("swin", precision), FUSION_MODEL: graph_filename("fusion", precision)}},
                indent=2,
            ) + "\n"
        )  # fmt: skip
    return Path(out)
