"""FLOP counts (formulas pinned, graph counting checked against hand-computed and exported
graphs) and the GEMM peak harness."""

from __future__ import annotations

import numpy as np
import pytest

from milmer.benchmarks.floor import fusion_flops, graph_flops, matmul_peak, swin_flops
from milmer.benchmarks.model import SWIN_T, SWIN_TINY_TEST
from milmer.runtime.check import MilmerInputError
from milmer.training.model_config import ModelConfig


def test_swin_t_flops_pinned():
    # 4.49 GMAC: the figure the Swin paper and timm report for Swin-T at 224 x 224.
    assert swin_flops(SWIN_T) == 8_979_597_312


def test_paper_fusion_flops_pinned():
    # d_model 768, 2 layers, ffn 2048, 64 queries over 3 x 49 tokens, 32 EEG tokens from the
    # paper's per-channel MLP 384 -> 768 -> 768 (its second Linear: 2 * 32 * 768^2 = 37_748_736).
    assert fusion_flops(ModelConfig(), 768) == 2_779_068_928


def _hand_graph(path):
    """MatMul (batched, weight), MatMul (two activations), Gemm (transB) and grouped Conv."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    f32 = TensorProto.FLOAT
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32), "W1"),
        numpy_helper.from_array(rng.standard_normal((10, 6)).astype(np.float32), "W2"),
        numpy_helper.from_array(rng.standard_normal((8, 2, 3, 3)).astype(np.float32), "W3"),
    ]
    nodes = [
        helper.make_node("MatMul", ["X", "W1"], ["Y1"]),
        helper.make_node("MatMul", ["P", "Q"], ["Y2"]),
        helper.make_node("Gemm", ["A", "W2"], ["Y3"], transB=1),
        helper.make_node("Conv", ["I", "W3"], ["Y4"], group=2, pads=[1, 1, 1, 1]),
    ]
    inputs = {"X": [2, 8, 16], "P": [3, 5, 7], "Q": [3, 7, 2], "A": [4, 6], "I": [1, 4, 10, 10]}
    outputs = {"Y1": [2, 8, 32], "Y2": [3, 5, 2], "Y3": [4, 10], "Y4": [1, 8, 10, 10]}
    graph = helper.make_graph(
        nodes,
        "hand",
        [helper.make_tensor_value_info(k, f32, v) for k, v in inputs.items()],
        [helper.make_tensor_value_info(k, f32, v) for k, v in outputs.items()],
        weights,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return {k: np.ones(v, np.float32) for k, v in inputs.items()}


def test_graph_flops_of_hand_built_graph(tmp_path):
    feed = _hand_graph(tmp_path / "hand.onnx")
    counted = graph_flops(tmp_path / "hand.onnx", feed)
    # 2*(2*8*32)*16 + 2*(3*5*2)*7 ; 2*(4*10)*6 ; 2*(8*10*10)*(2*3*3)
    assert counted["by_op"] == {"MatMul": 16384 + 420, "Gemm": 480, "Conv": 28800}
    assert counted["total"] == 46084 and counted["nodes"] == 4


def _export(module, args, path, names):
    import torch

    torch.onnx.export(module, args, path, input_names=names, opset_version=17, dynamo=False)
    return {n: a.numpy() for n, a in zip(names, args)}


@pytest.mark.parametrize(
    "overrides",
    [
        {"d_model": 64, "n_heads": 4, "ffn_dim": 128, "n_queries": 16, "mil_hidden": 16},
        {"d_model": 32, "n_heads": 4, "ffn_dim": 48, "n_queries": 8, "visual_integration": "mlp", "mil": "amil"},
        {"d_model": 64, "n_heads": 2, "fusion": "concat", "visual_integration": "none", "mil": "mean"},
        {"d_model": 32, "n_heads": 2, "ffn_dim": 48, "n_queries": 8, "eeg_tokens": "spectral"},
    ],
)
def test_formulas_match_exported_graphs(tmp_path, overrides):
    torch = pytest.importorskip("torch")
    from milmer.training.backbone import swin_from_config
    from milmer.training.model import MilmerModel

    config = ModelConfig(**overrides)
    torch.manual_seed(0)
    model = MilmerModel(config, swin_from_config({"model_type": "swin", **SWIN_TINY_TEST})).eval()

    class Fusion(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, eeg, tokens):
            return self.model.forward_fusion(eeg, tokens)

    eeg = torch.randn(1, config.n_eeg_channels, config.eeg_samples)
    tokens = torch.randn(1, config.frames_per_window, config.tokens_per_frame, model.token_dim)
    feed = _export(Fusion(), (eeg, tokens), tmp_path / "fusion.onnx", ["eeg", "tokens"])
    assert graph_flops(tmp_path / "fusion.onnx", feed)["total"] == fusion_flops(config, model.token_dim)
    if overrides["d_model"] == 64 and "fusion" not in overrides:

        class Backbone(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = model

            def forward(self, frames):
                return self.model.forward_backbone(frames)

        feed = _export(Backbone(), (torch.randn(1, 3, 224, 224),), tmp_path / "swin.onnx", ["frames"])
        assert graph_flops(tmp_path / "swin.onnx", feed)["total"] == swin_flops(SWIN_TINY_TEST)


@pytest.mark.parametrize(
    "engine", ["ort-fp32", "ort-int8", "numpy-fp32", "ort-qdq-int8", "ov-fp32", "ov-qdq-int8", "torch-fp32", "torch-bf16"]
)
def test_matmul_peak_reports_each_size(engine):
    from milmer.benchmarks.floor import engine_unavailable
    from milmer.benchmarks.timing import TimingConfig

    if engine_unavailable(engine):
        pytest.skip(engine_unavailable(engine))
    peak = matmul_peak(engine, (32, 64), TimingConfig(warmup=0, repeats=2))
    assert set(peak["by_size"]) == {32, 64} and peak["best_n"] in (32, 64)
    assert peak["peak_gflops"] == max(r["gflops"] for r in peak["by_size"].values()) > 0


def test_matmul_peak_rejects_unknown_engine():
    with pytest.raises(
        MilmerInputError, match="'engine': expected one of 'ort-fp32', 'ort-int8', 'numpy-fp32', 'ort-qdq-int8', "
        "'ov-fp32', 'ov-bf16', 'ov-qdq-int8', 'torch-fp32', 'torch-bf16', got 'cuda'"
    ):
        matmul_peak("cuda")  # type: ignore[arg-type]


def test_bf16_peak_is_skipped_without_bf16(monkeypatch):
    from milmer.benchmarks.timing import TimingConfig
    from milmer.runtime.backends import openvino as ov_backend

    monkeypatch.setattr(ov_backend, "cpu_flags", lambda: frozenset({"avx2"}))
    peak = matmul_peak("ov-bf16", (32,), TimingConfig(warmup=0, repeats=1))
    assert peak["peak_gflops"] is None and ("bfloat16" in peak["skipped"] or "OpenVINO" in peak["skipped"])
    # torch would emulate bf16 on such a CPU: no floor from it either.
    peak = matmul_peak("torch-bf16", (32,), TimingConfig(warmup=0, repeats=1))
    assert peak == {
        "engine": "torch-bf16", "peak_gflops": None,
        "skipped": "no native bfloat16 on this CPU (amx_bf16 or avx512_bf16): torch would emulate it",
    }  # fmt: skip


def test_torch_peak_keeps_the_callers_threads():
    import torch

    from milmer.benchmarks.timing import TimingConfig

    before = torch.get_num_threads()
    assert matmul_peak("torch-fp32", (32,), TimingConfig(warmup=0, repeats=1), threads=1)["peak_gflops"] > 0
    assert torch.get_num_threads() == before


def test_precision_peaks_take_each_precisions_best_engine():
    from milmer.benchmarks.floor import precision_peaks

    peaks = {
        "ort-fp32": {"peak_gflops": 300.0}, "ov-fp32": {"peak_gflops": 340.0}, "numpy-fp32": {"peak_gflops": 200.0},
        "ov-bf16": {"peak_gflops": None, "skipped": "no bf16"}, "ort-int8": {"peak_gflops": 600.0},
        "ort-qdq-int8": {"peak_gflops": 500.0}, "ov-qdq-int8": {"peak_gflops": 900.0},
    }  # fmt: skip
    assert precision_peaks(peaks) == {
        "fp32": {"peak_gflops": 340.0, "engine": "ov-fp32"},
        "bf16": {"peak_gflops": None, "engine": None},
        "int8": {"peak_gflops": 900.0, "engine": "ov-qdq-int8"},
    }
    # The AMX Xeon's figures: oneDNN's bf16 GEMM (torch) sets the bf16 floor, not OpenVINO's MatMul.
    amx = {**peaks, "ov-bf16": {"peak_gflops": 840.0}, "torch-bf16": {"peak_gflops": 2445.0}, "torch-fp32": {"peak_gflops": 384.0}}
    assert precision_peaks(amx)["bf16"] == {"peak_gflops": 2445.0, "engine": "torch-bf16"}
    assert precision_peaks(amx)["fp32"] == {"peak_gflops": 384.0, "engine": "torch-fp32"}


def test_spectral_bins_use_the_model_band_definition(monkeypatch):
    """The FLOP formula reads the model's bands (one definition): 3 s at 128 Hz has bins every
    1/3 Hz, 132 of them in 1-45 Hz; narrowing the model's bands changes the count."""
    from milmer.benchmarks import floor
    from milmer.training import model_config as config

    assert floor.EEG_BANDS is config.EEG_BANDS
    assert floor._spectral_bins(384, 128.0) == 132
    monkeypatch.setattr(floor, "EEG_BANDS", ((8.0, 13.0),))
    assert floor._spectral_bins(384, 128.0) == 15
