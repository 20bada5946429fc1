"""Side by side: ONNX Runtime and OpenVINO on the same tiny graphs, agreement, the summary screen."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from milmer.benchmarks.summary import speed_targets, summary_screen
from milmer.benchmarks.timing import TimingConfig
from milmer.benchmarks.variants import AGREEMENT_GATE, fastest_agreeing, list_variants, measure_variants
from milmer.runtime.backends.openvino import OpenVinoRunner


def _tiny_graphs():
    name = "milmer_tests_tiny_graphs"
    if name not in sys.modules:
        path = Path(__file__).parents[1] / "runtime" / "backends" / "tiny_graphs.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    tiny = _tiny_graphs()
    spec = tiny.tiny_spec()
    return tiny.write_model_dir(tmp_path_factory.mktemp("side"), spec, precisions=("fp32", "int8")), spec


#: Max |d probability| against ONNX Runtime fp32, by the precision a variant's products run in.
#: The tiny 'int8' graphs are fp32 copies, so they owe fp32's agreement. bf16 keeps 8 significand
#: bits (unit roundoff 2**-9, with float32 accumulation): on probabilities in [0, 1] a few units of
#: bf16's spacing at 1.0 (2**-8 each) is what it owes; AVX512_BF16 CPUs give ~3e-3 here.
PROBABILITY_ATOL = {"fp32": 1e-4, "int8": 1e-4, "bf16": 4 * 2.0**-8}


def test_side_by_side_on_tiny_graphs(tiny_model):
    pytest.importorskip("skimage")
    model, spec = tiny_model
    variants, skipped = list_variants(model, ("fp32", "int8"), static_dir=model, threads=1)
    names = [v.name for v in variants]
    assert names[:2] == ["ort fp32", "ort int8-dynamic"]
    ov_here = OpenVinoRunner.unavailable_reason(model / "swin.onnx", device="cpu", precision="fp32") is None
    if ov_here:
        assert {"openvino fp32", "openvino int8-dynamic", "openvino int8-static", "ort int8-static"} <= set(names)
    assert ("openvino bf16" in names) != ("openvino bf16" in skipped)
    flops = {"swin_per_frame": 1_000_000}
    peaks = {"fp32": {"peak_gflops": 100.0}, "int8": {"peak_gflops": 200.0}, "bf16": {"peak_gflops": 400.0}}
    rows = measure_variants(variants, spec, TimingConfig(warmup=0, repeats=2), flops=flops, peaks=peaks, n_bags=3)
    by_name = {r["name"]: r for r in rows}
    # The tiny 'int8' graphs are fp32 copies, so every variant computes the same function.
    for r in rows:
        assert r["top1_agreement"] == 1.0 and r["selected_agreement"] == 1.0 and r["agrees"], r["name"]
        assert r["max_abs_probabilities"] < PROBABILITY_ATOL[r["compute"]], r["name"]
        if r["compute"] == "bf16":  # the hint is honoured: products really ran in bfloat16
            assert r["max_abs_probabilities"] > 1e-6
        assert r["x_floor"] == pytest.approx(r["backbone_s"] / (10 * 1e6 / (peaks[r["compute"]]["peak_gflops"] * 1e9)))
        assert r["gflops"] == pytest.approx(10 * 1e6 / r["backbone_s"] / 1e9)
    assert by_name["ort fp32"]["speedup_vs_ort_fp32"] == 1.0
    best = fastest_agreeing(rows)
    assert best["model_s"] == min(r["model_s"] for r in rows)
    assert AGREEMENT_GATE == (0.98, 0.95)
    assert fastest_agreeing([{**r, "agrees": False} for r in rows]) is None


def test_speed_targets_and_summary_screen():
    result = {
        "machine": {"cpu_model": "Test CPU", "usable_cores": 2, "cpu_flags": ["avx2"]},
        "load": {"before": {"load_1min": 1.5}, "after": 2.0},
        "settings": {"backend": "ort"},
        "model": {"dir": "m"},
        "floor": {
            "flops": {"per_window": 260e9 * 0.25, "swin_per_frame": 1},
            "precision_peaks": {"fp32": {"peak_gflops": 260.0, "engine": "ov-fp32"},
                                "int8": {"peak_gflops": 520.0, "engine": "ov-qdq-int8"},
                                "bf16": {"peak_gflops": None, "engine": None}},
        },  # fmt: skip
        "side_by_side": {
            "rows": [
                {"name": "ort fp32", "backend": "ort", "precision": "fp32", "model_dir": "m", "options": {},
                 "backbone_s": 0.5, "fusion_s": 0.01, "model_s": 0.51, "gflops": 170, "x_floor": 2.0,
                 "speedup_vs_ort_fp32": 1.0, "top1_agreement": 1.0, "selected_agreement": 1.0, "agrees": True},
                {"name": "openvino int8-static", "backend": "openvino", "precision": "int8", "model_dir": "s",
                 "options": {}, "backbone_s": 0.2, "fusion_s": 0.01, "model_s": 0.21, "gflops": 420, "x_floor": 1.2,
                 "speedup_vs_ort_fp32": 2.43, "top1_agreement": 1.0, "selected_agreement": 0.96, "agrees": True},
            ],
            "skipped": {"openvino bf16": "no bf16 here"},
            "fastest_agreeing": "openvino int8-static",
        },  # fmt: skip
        "endtoend": [
            {"precision": "fp32", "recording_s": 600, "per_window_s": 0.6, "n_windows": 200, "startup_s": 2.0,
             "wall_s": 120.0, "peak_rss_mb": 2000.0, "eeg_timings": {"ica": 1.5}},
        ],  # fmt: skip
        "endtoend_best": [
            {"variant": "openvino int8-static", "precision": "int8", "recording_s": 600, "per_window_s": 0.24,
             "n_windows": 200, "startup_s": 2.0, "wall_s": 48.0, "peak_rss_mb": 1200.0, "eeg_timings": {"ica": 1.5}},
        ],  # fmt: skip
        "summary": {"reference": {"extrapolated_total_s": {"600": 220.0}}},
    }
    targets = {(t["target"][:20], t.get("variant")): t for t in speed_targets(result)}
    floor = next(t for t in targets.values() if t["target"].startswith("end to end"))
    assert floor["value"] == pytest.approx(0.24 / 0.25) and floor["met"]
    reference = next(t for t in targets.values() if t["target"].startswith("fastest agreeing"))
    assert reference["value"] == pytest.approx(220.0 / 50.0) and reference["met"]
    backbones = [t for t in targets.values() if t["target"].startswith("backbone")]
    assert [(t["variant"], t["met"]) for t in backbones] == [("ort fp32", False), ("openvino int8-static", True)]
    ica = next(t for t in targets.values() if t["target"].startswith("ICA"))
    assert ica["value"] == pytest.approx(7.5) and ica["met"]
    rss = next(t for t in targets.values() if t["target"].startswith("peak RSS"))
    assert rss["value"] == 2000.0 and not rss["met"]
    result["speed_targets"] = speed_targets(result)
    screen = summary_screen(result)
    lines = screen.splitlines()
    assert len(lines) <= 40
    assert "load average 1.5 before, 2.0 after (busy machine: compare rows within this run" in lines[0]
    result["load"]["before"]["quiet"] = True
    assert "(quiet at the start; the load after includes this run's own work)" in summary_screen(result).splitlines()[0]
    result["load"]["before"]["quiet"] = False
    assert "fp32 floor: 250.0 ms per window" in screen
    assert "fastest agreeing with fp32: openvino int8-static" in screen
    assert "openvino bf16: not measured (no bf16 here)" in screen
    assert "[NOT met] peak RSS on the longest recording <= 1.5 GB at the default settings (fp32): 2,000.0 MB" in screen
    assert "end to end ort fp32" in screen and "x floor: the backbone against its own precision's GEMM floor" in screen
    # With bench's default-settings runs (the committed AVX-512 bf16 results), the memory target
    # reads milmer-infer's default run, not the fp32 one.
    committed = json.loads((Path(__file__).parents[2] / "benchmarks/results/cpu-amd-epyc-avx512-bf16.json").read_text())
    rss = next(t for t in speed_targets(committed) if t["target"].startswith("peak RSS"))
    assert (round(rss["value"]), rss["variant"], rss["recording_s"], rss["met"]) == (886, "default (openvino bf16)", 600, True)
    # The end-to-end rows are named after the backend that ran them, not always 'ort'.
    result["settings"]["backend"] = "openvino"
    assert "end to end openvino fp32" in summary_screen(result)
    # A target without a figure (no reference run) is 'not measured', not 'NOT met'.
    result["speed_targets"][1]["value"] = None
    assert "[not measured] fastest agreeing variant >= 4x faster" in summary_screen(result)
    assert "[met] ICA <= 10 ms per window amortised on the longest recording: 7.5 ms" in screen
    assert lines[0].startswith("milmer bench [not quiet]: Test CPU")
    # A model not of the paper's size: its targets are not applied, and the screen says TINY and why.
    tiny = {**result, "model": {"dir": "m", "tiny": True, "not_paper_size": ["token_dim 64 (paper: 768)"]}}
    tiny["speed_targets"] = speed_targets(tiny)
    assert [t["target"] for t in tiny["speed_targets"]] == ["ICA <= 10 ms per window amortised on the longest recording"]
    tiny_screen = summary_screen(tiny)
    assert tiny_screen.splitlines()[0].startswith("milmer bench [TINY model, not quiet]: Test CPU")
    assert ("Speed targets for the paper-size model not applied: TINY model (not the paper's size: "
            "token_dim 64 (paper: 768)).") in tiny_screen
    assert "x floor" in tiny_screen and "[NOT met]" not in tiny_screen
