"""The compute floor: how fast this machine multiplies matrices, and how many FLOPs each stage needs.

Peaks (:func:`matmul_peak`) are measured on square GEMMs with ONNX Runtime (a one-node MatMul
graph, fp32; MatMulInteger u8 x s8 for the int8 rate; a QDQ MatMul, as in the static int8
graphs), with OpenVINO (the same fp32 and QDQ graphs; fp32 with the bf16 inference hint where
the CPU has bfloat16), with torch (``torch.mm`` in float32 and bfloat16: oneDNN, which uses AMX
where the CPU has it) and with numpy's BLAS; the best size counts. A stage's floor time is its
FLOPs divided by the fp32 ONNX Runtime peak; :func:`precision_peaks` gives each precision's own
peak (the best engine for it), for each precision's own floor.

FLOPs are counted two ways that must agree (the tests check it on a tiny model):

- :func:`graph_flops`: run the fp32 ONNX graph once in ONNX Runtime with graph optimisation
  off and profiling on, and read every MatMul / Gemm / Conv node's input and output shapes
  from the profile: ``2 * prod(out) * K`` (K = the reduced dimension; for Conv
  ``K = Cin / groups * kh * kw``). Works for any exported model directory.
- :func:`swin_flops` / :func:`fusion_flops`: per-layer formulas from the Swin and Milmer
  configs (used when the checkpoint is known).

Only matrix products and convolutions are counted (2 FLOPs per multiply-add); LayerNorm,
softmax, GELU and the other element-wise operators add about 1 % and are left out, as is usual
for "GFLOPs" of vision models (Swin-T: 4.49 GMAC = 8.98 GFLOP at 224 x 224).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..runtime.check import check_int, check_option, check_sequence
from ..training.model_config import EEG_BANDS  # torch-free: the model's band definition
from .timing import TimingConfig, time_call

__all__ = [
    "COUNTED_OPS",
    "matmul_peak",
    "graph_flops",
    "swin_flops",
    "fusion_flops",
]

#: Operators whose FLOPs :func:`graph_flops` counts.
COUNTED_OPS: tuple[str, ...] = ("MatMul", "Gemm", "Conv")

PeakEngine = Literal[
    "ort-fp32", "ort-int8", "numpy-fp32", "ort-qdq-int8", "ov-fp32", "ov-bf16", "ov-qdq-int8", "torch-fp32", "torch-bf16"
]
PEAK_ENGINES: tuple[str, ...] = (
    "ort-fp32", "ort-int8", "numpy-fp32", "ort-qdq-int8", "ov-fp32", "ov-bf16", "ov-qdq-int8", "torch-fp32", "torch-bf16",
)  # fmt: skip
#: Which engines' GEMMs each precision's kernels use: a precision's peak is its best engine's.
#: torch's bf16 ``mm`` is oneDNN's (AMX tiles where the CPU has them): on an AMX Xeon it reached
#: 2,445 GFLOP/s against OpenVINO's bf16 MatMul graph at 840, so a floor from OpenVINO alone
#: would be ~3x too generous.
PRECISION_ENGINES: dict[str, tuple[str, ...]] = {
    "fp32": ("ort-fp32", "ov-fp32", "numpy-fp32", "torch-fp32"),
    "bf16": ("ov-bf16", "torch-bf16"),
    "int8": ("ort-int8", "ort-qdq-int8", "ov-qdq-int8"),
}


# ----------------------------------------------------------------------------- GEMM peak
def _matmul_graph(n: int, int8: bool) -> bytes:
    """A one-node ONNX graph ``C = A @ B`` with (n, n) inputs (MatMulInteger u8 x s8 for int8)."""
    import onnx
    from onnx import TensorProto, helper

    a_type, b_type, c_type = (
        (TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32) if int8 else (TensorProto.FLOAT,) * 3
    )
    node = helper.make_node("MatMulInteger" if int8 else "MatMul", ["A", "B"], ["C"])
    graph = helper.make_graph(
        [node],
        "matmul_peak",
        [helper.make_tensor_value_info("A", a_type, [n, n]), helper.make_tensor_value_info("B", b_type, [n, n])],
        [helper.make_tensor_value_info("C", c_type, [n, n])],
    )
    # IR 8 / opset 17: what every onnxruntime >= 1.14 reads (newer onnx defaults to IR 10+).
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _qdq_matmul_graph(n: int) -> bytes:
    """``C = DQ(Q(A)) @ DQ(B_int8)``: float32 (n, n) input A quantised to uint8 (one scale), an
    int8 weight B with one scale per output column, as ``quantize_static`` writes products."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    inits = [
        numpy_helper.from_array(rng.integers(-127, 128, (n, n), dtype=np.int8), "Bq"),
        numpy_helper.from_array(np.full(n, 0.01, np.float32), "sb"),
        numpy_helper.from_array(np.zeros(n, np.int8), "zb"),
        numpy_helper.from_array(np.array(0.02, np.float32), "sa"),
        numpy_helper.from_array(np.array(128, np.uint8), "za"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["A", "sa", "za"], ["Aq"]),
        helper.make_node("DequantizeLinear", ["Aq", "sa", "za"], ["Ad"]),
        helper.make_node("DequantizeLinear", ["Bq", "sb", "zb"], ["Bd"], axis=1),
        helper.make_node("MatMul", ["Ad", "Bd"], ["C"]),
    ]
    graph = helper.make_graph(
        nodes, "qdq_matmul_peak", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [n, n])],
        [helper.make_tensor_value_info("C", TensorProto.FLOAT, [n, n])], initializer=inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _openvino_call(graph: bytes, feed: dict[str, np.ndarray], hint: str, threads: int | None) -> Any:
    """A callable running ``graph`` (ONNX bytes) once in OpenVINO with INFERENCE_PRECISION_HINT ``hint``."""
    import openvino

    from ..runtime.backends.ort import default_threads

    core = openvino.Core()
    with tempfile.TemporaryDirectory(prefix="milmer-peak-") as tmp:
        path = Path(tmp) / "g.onnx"
        path.write_bytes(graph)
        compiled = core.compile_model(
            core.read_model(str(path)), "CPU",
            {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads or default_threads(),
             "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1},
        )  # fmt: skip
    request = compiled.create_infer_request()
    return lambda: request.infer(feed)


def _torch_call(n: int, bf16: bool) -> Any:
    """A callable multiplying two (n, n) torch tensors (bfloat16: oneDNN's kernels) into a buffer."""
    import torch

    gen = torch.Generator().manual_seed(0)
    dtype = torch.bfloat16 if bf16 else torch.float32
    a, b = (torch.randn(n, n, generator=gen).to(dtype) for _ in range(2))
    out = torch.empty(n, n, dtype=dtype)
    return lambda: torch.mm(a, b, out=out)


class _TorchThreads:
    """``with _TorchThreads(n):`` torch's intra-op threads set to ``n`` (None: unchanged), then restored."""

    def __init__(self, threads: int | None) -> None:
        self.threads, self.saved = threads, None

    def __enter__(self) -> None:
        if self.threads is not None:
            import torch

            self.saved = torch.get_num_threads()
            torch.set_num_threads(self.threads)

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            import torch

            torch.set_num_threads(self.saved)


def engine_unavailable(engine: str) -> str | None:
    """Why ``engine`` cannot be measured here (OpenVINO or torch missing, no bfloat16 CPU), or None."""
    if engine.startswith("torch-"):
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            return "torch is not installed (pip install milmer[train])"
        if engine == "torch-bf16":
            from ..runtime.backends.openvino import BF16_FLAGS, cpu_flags, has_bf16

            if not has_bf16(cpu_flags()):
                return f"no native bfloat16 on this CPU ({' or '.join(sorted(BF16_FLAGS))}): torch would emulate it"
        return None
    if engine.startswith("ov-"):
        from ..runtime.backends.openvino import OpenVinoRunner

        options = {"inference_precision": "bf16"} if engine == "ov-bf16" else {}
        return OpenVinoRunner.unavailable_reason("peak.onnx", device="cpu", precision="fp32", **options)
    return None


def precision_peaks(peaks: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each precision's GEMM peak: ``{precision: {'peak_gflops', 'engine'}}`` from
    :data:`PRECISION_ENGINES` (``peak_gflops`` None when none of its engines ran here)."""
    result: dict[str, dict[str, Any]] = {}
    for precision, engines in PRECISION_ENGINES.items():
        measured = [(peaks[e]["peak_gflops"], e) for e in engines if e in peaks and peaks[e].get("peak_gflops")]
        best = max(measured) if measured else (None, None)
        result[precision] = {"peak_gflops": best[0], "engine": best[1]}
    return result


def matmul_peak(
    engine: PeakEngine,
    sizes: Sequence[int] = (512, 1024, 2048),
    timing: TimingConfig = TimingConfig(warmup=2, repeats=10),
    *,
    threads: int | None = None,
) -> dict[str, Any]:
    """Median GFLOP/s (GOP/s for int8) of an (n, n) x (n, n) product, for each ``n`` in ``sizes``.

    engine: 'ort-fp32' (ONNX Runtime MatMul), 'ort-int8' (MatMulInteger u8 x s8 -> int32),
            'numpy-fp32' (numpy's BLAS), 'ort-qdq-int8' / 'ov-qdq-int8' (a QDQ MatMul in ONNX
            Runtime / OpenVINO), 'ov-fp32' / 'ov-bf16' (OpenVINO MatMul, fp32 or bf16 hint),
            'torch-fp32' / 'torch-bf16' (``torch.mm``: MKL / oneDNN, AMX tiles where present).
            ``threads``: runtime threads (default: the usable cores); numpy uses its BLAS's own.
    Returns ``{'engine', 'peak_gflops', 'best_n', 'by_size': {n: {'gflops', 'median_s', 'p95_s'}}}``,
    or ``{'engine', 'peak_gflops': None, 'skipped': why}`` when it cannot run here.
    """
    check_option("engine", engine, PEAK_ENGINES)
    reason = engine_unavailable(engine)
    if reason is not None:
        return {"engine": engine, "peak_gflops": None, "skipped": reason}
    check_sequence("sizes", tuple(sizes), nonempty=True, item=lambda name, n: check_int(name, n, low=1))
    rng = np.random.default_rng(0)
    by_size: dict[int, dict[str, float]] = {}
    for n in sizes:
        if engine == "numpy-fp32":
            a, b = rng.standard_normal((2, n, n), dtype=np.float32)
            out = np.empty((n, n), np.float32)
            timed = time_call(lambda: np.matmul(a, b, out=out), timing, per="call")
        elif engine.startswith("torch-"):
            with _TorchThreads(threads):
                timed = time_call(_torch_call(n, engine == "torch-bf16"), timing, per="call")
        elif engine.startswith("ov-") or engine == "ort-qdq-int8":
            qdq = engine.endswith("qdq-int8")
            graph = _qdq_matmul_graph(n) if qdq else _matmul_graph(n, False)
            feed = {"A": rng.standard_normal((n, n), dtype=np.float32)}
            if not qdq:
                feed["B"] = rng.standard_normal((n, n), dtype=np.float32)
            if engine == "ort-qdq-int8":
                import onnxruntime

                from ..runtime.backends.ort import default_threads

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = threads or default_threads()
                session = onnxruntime.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])
                call = lambda: session.run(None, feed)  # noqa: E731
            else:
                call = _openvino_call(graph, feed, "bf16" if engine == "ov-bf16" else "f32", threads)
            timed = time_call(call, timing, per="call")
        else:
            import onnxruntime

            from ..runtime.backends.ort import default_threads

            int8 = engine == "ort-int8"
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads or default_threads()
            session = onnxruntime.InferenceSession(
                _matmul_graph(n, int8), sess_options=options, providers=["CPUExecutionProvider"]
            )
            if int8:
                feed = {
                    "A": rng.integers(0, 256, (n, n), dtype=np.uint8),
                    "B": rng.integers(-128, 128, (n, n), dtype=np.int8),
                }
            else:
                feed = {
                    "A": rng.standard_normal((n, n), dtype=np.float32),
                    "B": rng.standard_normal((n, n), dtype=np.float32),
                }
            timed = time_call(lambda: session.run(None, feed), timing, per="call")
        flops = 2.0 * n**3
        by_size[n] = {
            "gflops": round(flops / timed.median_s / 1e9, 2),
            "median_s": timed.median_s,
            "p95_s": timed.p95_s,
        }
    best = max(by_size, key=lambda k: by_size[k]["gflops"])
    return {"engine": engine, "peak_gflops": by_size[best]["gflops"], "best_n": best, "by_size": by_size}


# ----------------------------------------------------------------------------- graph FLOPs
def _shape(entry: Mapping[str, Sequence[int]]) -> tuple[int, ...]:
    """A profile shape entry ``{'float': [1, 3, 224, 224]}`` -> (1, 3, 224, 224)."""
    return tuple(int(d) for d in next(iter(entry.values())))


def _node_flops(op: str, inputs: list[tuple[int, ...]], outputs: list[tuple[int, ...]]) -> int:
    """FLOPs of one MatMul / Gemm / Conv from its runtime shapes (see the module docstring)."""
    out = outputs[0]
    if op == "MatMul":
        k = inputs[0][-1]
    elif op == "Gemm":  # A is (M, K) or, transposed, (K, M): either way K = size(A) / M
        k = math.prod(inputs[0]) // out[0]
    else:  # Conv: weight (Cout, Cin / groups, kh, kw)
        k = math.prod(inputs[1][1:])
    return 2 * math.prod(out) * k


def graph_flops(path: str | Path, feed: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """FLOPs of one run of the ONNX graph at ``path`` on ``feed``, from ONNX Runtime's profile.

    The graph runs once with optimisation disabled, so each profiled node is a node of the file.
    Returns ``{'total': int, 'by_op': {op: int}, 'nodes': int}`` (``nodes``: counted nodes).
    """
    import onnxruntime

    with tempfile.TemporaryDirectory(prefix="milmer-flops-") as tmp:
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        session.run(None, dict(feed))
        events = json.loads(Path(session.end_profiling()).read_text())
    by_op = dict.fromkeys(COUNTED_OPS, 0)
    nodes = 0
    for event in events:
        args = event.get("args", {})
        op = args.get("op_name")
        if event.get("cat") != "Node" or op not in by_op or not event["name"].endswith("_kernel_time"):
            continue
        inputs = [_shape(e) for e in args["input_type_shape"]]
        outputs = [_shape(e) for e in args["output_type_shape"]]
        by_op[op] += _node_flops(op, inputs, outputs)
        nodes += 1
    return {"total": sum(by_op.values()), "by_op": by_op, "nodes": nodes}


# ----------------------------------------------------------------------------- formulas
def swin_flops(config: Mapping[str, Any], image_size: int | None = None) -> int:
    """FLOPs of one image through a Hugging Face ``SwinModel`` (no pooler), from its config.

    config: a ``SwinConfig.to_dict()`` (embed_dim, depths, num_heads, window_size, patch_size,
    mlp_ratio, num_channels, image_size). Per block on N tokens of C channels with window w:
    qkv ``2*N*C*3C``, scores and weighted sum ``2 * 2*N*w^2*C``, projection ``2*N*C^2``, MLP
    ``2 * 2*N*C*rC``; attention runs on the grid padded to a multiple of w. Patch embedding is a
    ``patch x patch`` convolution, patch merging a ``4C -> 2C`` linear on a quarter of the tokens.
    """
    size = int(image_size or config["image_size"])
    patch, window = int(config["patch_size"]), int(config["window_size"])
    c, channels = int(config["embed_dim"]), int(config.get("num_channels", 3))
    ratio = float(config.get("mlp_ratio", 4.0))
    depths = [int(d) for d in config["depths"]]
    side = -(-size // patch)
    total = 2 * side * side * c * channels * patch * patch
    for stage, depth in enumerate(depths):
        w = min(window, side)  # HF shrinks the window to a stage smaller than it
        padded = -(-side // w) * w
        n, n_att = side * side, padded * padded
        hidden = int(c * ratio)
        block = 2 * n_att * c * 3 * c + 2 * 2 * n_att * w * w * c + 2 * n_att * c * c + 2 * 2 * n * c * hidden
        total += depth * block
        if stage < len(depths) - 1:
            side = (side + 1) // 2
            total += 2 * side * side * 4 * c * 2 * c
            c *= 2
    return total


def _spectral_bins(n_samples: int, sfreq: float) -> int:
    """How many real-DFT bins of an ``n_samples`` window at ``sfreq`` Hz lie in any of the model's
    EEG bands (``milmer.training.model_config.EEG_BANDS``, the model's own definition)."""
    freqs = np.arange(n_samples // 2 + 1) * (sfreq / n_samples)
    return int(np.any([(freqs >= lo) & (freqs < hi) for lo, hi in EEG_BANDS], axis=0).sum())


def fusion_flops(config: Any, token_dim: int) -> int:
    """FLOPs of one bag through ``forward_fusion`` of a Milmer model with ``config`` (a
    :class:`milmer.training.model_config.ModelConfig`) and backbone tokens of size ``token_dim``.

    Counts the EEG tokenizer (the per-channel MLP ``T -> d -> d``, or for ``eeg_tokens='spectral'``
    the DFT MatMul, band pooling and ``bands -> d -> d`` MLP), the token projection (when ``token_dim != d_model``), the MIL
    scorer, the visual integration (cross-attention or MLP), the fusion (Transformer encoder or
    concat head) and the classifier.
    """
    d, f, p = config.d_model, config.frames_per_window, config.tokens_per_frame
    total = 0
    if config.uses_eeg:
        c, t = config.n_eeg_channels, config.eeg_samples
        if getattr(config, "eeg_tokens", "mlp") == "spectral":
            # Windowed DFT as one MatMul (T -> 2 * bins), band pooling (bins -> bands), then the MLP.
            bins, bands = _spectral_bins(t, float(config.eeg_sfreq)), len(EEG_BANDS)
            total += 2 * c * t * 2 * bins + 2 * c * bins * bands + 2 * c * bands * d
        else:  # the paper's per-channel MLP: Linear(T -> d), GELU, Linear(d -> d)
            total += 2 * c * t * d
        total += 2 * c * d * d
    if config.uses_face:
        if token_dim != d:
            total += 2 * f * p * token_dim * d
        if config.mil in ("amil", "topk"):
            total += 2 * f * (d * config.mil_hidden + config.mil_hidden)
        m, q = config.n_bag_tokens, config.n_queries
        if config.visual_integration == "cross-attention":
            total += 2 * q * d * d + 2 * 2 * m * d * d + 2 * 2 * q * m * d + 2 * q * d * d
        elif config.visual_integration == "mlp":
            total += 2 * d * m * q + 2 * 2 * q * d * d
    if config.fusion == "transformer":
        n = 1 + (config.n_eeg_channels if config.uses_eeg else 0) + config.n_face_tokens
        layer = 2 * n * d * 3 * d + 2 * 2 * n * n * d + 2 * n * d * d + 2 * 2 * n * d * config.ffn_dim
        total += config.n_layers * layer + 2 * d * config.n_classes
    else:
        total += 2 * 2 * d * d + 2 * d * config.n_classes
    return total
