"""The default settings' goal (<= 0.6x the fp32 floor per window, start-up included, on a bf16
CPU): met, missed with by how much and why, not applicable without native bf16, not applied to a
tiny model. Hand-built results with round figures, so every number in the text is known."""

from __future__ import annotations

import copy

import pytest

from milmer.benchmarks.default_settings import GOAL, default_label, default_target, goal_lines
from milmer.benchmarks.summary import speed_targets, summary_screen

SETTINGS = {
    "backend": {"swin": "openvino", "fusion": "openvino"}, "device": {"swin": "cpu", "fusion": "cpu"},
    "precision": "fp32", "compute_precision": "bf16", "batch": 1,
}  # fmt: skip


def _run(recording_s: int, *, startup_s: float, wall_s: float, backbone_s: float) -> dict:
    """A default run of 20 windows (60 s) whose stages outside the backbone take 240 ms per window
    in all: start-up share, EEG read 10, EEG 30, faces 100, normalise 10, fusion 40 ms."""
    n = recording_s // 3
    per = n / 20
    return {
        "variant": default_label(SETTINGS), "precision": "auto", "recording_s": recording_s, "settings": SETTINGS,
        "n_windows": n, "startup_s": startup_s, "wall_s": wall_s * per, "per_window_s": wall_s / 20,
        "timings": {"eeg_read": 0.2 * per, "eeg_preprocess": 0.6 * per, "faces": 2.0 * per, "normalise": 0.2 * per,
                    "backbone": backbone_s * per, "fusion": 0.8 * per},
        "peak_rss_mb": 900.0, "eeg_timings": {"ica": 1.0},
        "precision_choice": {"asked": "auto", "graphs": "fp32", "compute": "bf16", "note": None, "agreement_cached": True},
    }  # fmt: skip


def _result(flags: list[str], runs: list[dict], *, tiny: bool = False) -> dict:
    """fp32 floor: 80 GFLOP per window (72 in the backbone) at 200 GFLOP/s = 400 ms; bf16 peak 400."""
    return {
        "machine": {"cpu_model": "Test CPU", "usable_cores": 2, "cpu_flags": flags},
        "load": {"before": {"load_1min": 0.1, "quiet": True}, "after": 0.5},
        "settings": {"backend": "ort"},
        "model": {"dir": "m", "tiny": tiny, "not_paper_size": ["token_dim 64 (paper: 768)"] if tiny else []},
        "floor": {
            "flops": {"per_window": 80e9, "fusion_per_bag": 8e9, "swin_per_frame": 7.2e9},
            "precision_peaks": {"fp32": {"peak_gflops": 200.0, "engine": "ort-fp32"},
                                "int8": {"peak_gflops": None, "engine": None},
                                "bf16": {"peak_gflops": 400.0, "engine": "torch-bf16"}},
        },  # fmt: skip
        "endtoend": [],
        "endtoend_default": runs,
    }


AMD_BF16 = ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"]
MISSED = [_run(60, startup_s=1.0, wall_s=8.0, backbone_s=4.0), _run(600, startup_s=1.0, wall_s=8.0, backbone_s=4.0)]


def _default_row(result: dict) -> dict:
    return next(t for t in speed_targets(result) if t["target"] == GOAL[0])


def test_missed_says_by_how_much_and_why():
    """450 ms per window on the 60 s recording (start-up 50 + wall 400) against a goal of 240 ms
    (0.6 x 400): missed by 210 ms, 1.88x the goal. Why: bf16 peak 2x fp32, backbone 90 % of the
    FLOPs, so its bf16 floor is 0.45x; outside the backbone 250 ms = 0.625x; best 1.075x."""
    result = _result(AMD_BF16, copy.deepcopy(MISSED))
    row = _default_row(result)
    assert row["variant"] == "default (openvino bf16)" and row["recording_s"] == 60  # the 60 s run, not the longest
    assert row["applies"] is True and row["met"] is False
    assert row["per_window_ms"] == pytest.approx(450.0) and row["goal_ms"] == pytest.approx(240.0)
    assert row["value"] == pytest.approx(1.125) and row["over_goal"] == pytest.approx(1.875)
    why = row["why"]
    assert why["peak_ratio"] == pytest.approx(2.0) and why["backbone_floor_x"] == pytest.approx(0.45)
    assert why["backbone_ms"] == pytest.approx(200.0) and why["backbone_x"] == pytest.approx(0.5)
    assert why["outside_ms"] == pytest.approx(250.0) and why["outside_x"] == pytest.approx(0.625)
    assert why["outside_parts_ms"]["startup"] == pytest.approx(50.0) and why["outside_parts_ms"]["other"] == pytest.approx(10.0)
    assert why["best_reachable_x"] == pytest.approx(1.075)
    assert why["cpu_bf16_flags"] == ["avx512_bf16"] and why["amx"] is False
    assert goal_lines(row) == [
        "missed by 210 ms per window: 450 ms measured against the goal's 240 ms (0.6 x the 400 ms fp32 floor), "
        "1.88x the goal (1.12x the floor)",
        "why: the bf16 GEMM peak here is 2.00x the fp32 peak (avx512_bf16, no AMX), so the bf16 backbone floor alone "
        "is 0.45x the fp32 floor (measured: 200 ms = 0.50x); outside the backbone 250 ms = 0.62x (start-up 50, "
        "EEG read 10, EEG 30, faces 100, normalise 10, fusion 40, other 10 ms); best reachable here 1.07x, above the "
        "goal's 0.6x: out of reach on this CPU whatever is cut outside the backbone",
    ]
    result["speed_targets"] = speed_targets(result)
    screen = summary_screen(result)
    assert f"[NOT met] {GOAL[0]} (default (openvino bf16), 60 s): 1.12x" in screen
    assert "    missed by 210 ms per window" in screen and "    why: the bf16 GEMM peak here is 2.00x" in screen
    assert "end to end default (openvino bf16)   60 s: 400 ms/window" in screen


def test_met():
    """210 ms per window (start-up 10 + wall 200) <= 240 ms: met, the figures in one line."""
    result = _result(AMD_BF16 + ["amx_bf16"], [_run(60, startup_s=0.2, wall_s=4.0, backbone_s=1.0)])
    row = _default_row(result)
    assert row["met"] is True and row["value"] == pytest.approx(0.525)
    assert goal_lines(row) == ["met: 210 ms per window (0.53x the fp32 floor) against the goal's 240 ms"]
    assert row["why"]["amx"] is True and row["why"]["cpu_bf16_flags"] == ["avx512_bf16", "amx_bf16"]
    result["speed_targets"] = speed_targets(result)
    assert f"[met] {GOAL[0]} (default (openvino bf16), 60 s): 0.53x" in summary_screen(result)


def test_a_cpu_without_native_bf16_is_not_applicable():
    """AVX2-only: the row is measured but the goal does not apply, and says so (not 'NOT met')."""
    result = _result(["avx2", "fma"], copy.deepcopy(MISSED))
    row = _default_row(result)
    assert row["applies"] is False and row["met"] is None and row["value"] == pytest.approx(1.125)
    assert row["not_applicable"] == "this CPU has no native bf16 (neither avx512_bf16 nor amx_bf16)"
    assert goal_lines(row) == ["not applicable: this CPU has no native bf16 (neither avx512_bf16 nor amx_bf16)"]
    result["speed_targets"] = speed_targets(result)
    screen = summary_screen(result)
    assert f"[not applicable] {GOAL[0]} (default (openvino bf16), 60 s): 1.12x" in screen
    assert "NOT met" not in screen.split(GOAL[0])[0].splitlines()[-1]


def test_a_tiny_model_is_not_judged():
    result = _result(AMD_BF16, copy.deepcopy(MISSED), tiny=True)
    assert default_target(result, 400.0) is not None  # the figures exist ...
    assert all(t["target"] != GOAL[0] for t in speed_targets(result))  # ... the paper-size goal is not applied
    result["speed_targets"] = speed_targets(result)
    assert "Speed targets for the paper-size model not applied: TINY model" in summary_screen(result)


def test_without_default_runs_there_is_no_row():
    """Results written before the default runs existed read as they did."""
    result = _result(AMD_BF16, [])
    assert default_target(result, 400.0) is None
    assert all(t["target"] != GOAL[0] for t in speed_targets(result))


def test_label_names_what_auto_ran():
    assert default_label(SETTINGS) == "default (openvino bf16)"
    ort = {**SETTINGS, "backend": {"swin": "ort", "fusion": "ort"}, "compute_precision": "fp32"}
    assert default_label(ort) == "default (ort fp32)"
    gpu = {**SETTINGS, "backend": {"swin": "trt", "fusion": "trt"}, "device": {"swin": "cuda", "fusion": "cuda"},
           "precision": "fp16", "compute_precision": "fp16"}  # fmt: skip
    assert default_label(gpu) == "default (trt fp16 on cuda)"


def test_missed_when_auto_kept_fp32_says_bf16_disagreed():
    """On a bf16 CPU where bf16 failed the agreement check, the default runs fp32: its backbone
    floor alone is the backbone's share of the fp32 floor (0.90x), and the check's figures say why."""
    fp32 = {**SETTINGS, "compute_precision": "fp32"}
    run = {**_run(60, startup_s=1.0, wall_s=8.0, backbone_s=4.0), "settings": fp32, "variant": default_label(fp32)}
    result = _result(AMD_BF16, [run])
    result["default_settings"] = {
        "compute": "fp32", "agreement": {"n_bags": 8, "top1": 1.0, "selected": 0.875, "max_abs_probabilities": 0.01},
    }  # fmt: skip
    row = _default_row(result)
    assert row["variant"] == "default (openvino fp32)" and row["met"] is False
    assert row["why"]["peak_ratio"] == 1.0 and row["why"]["best_reachable_x"] == pytest.approx(0.9 + 0.625)
    assert goal_lines(row)[1] == (
        "why: the default computes in fp32 here (bf16 disagreed with fp32 on this model: top-1 100%, selected frames "
        "88% on 8 check bags, needs 98%/95%), so its backbone floor alone is 0.90x the fp32 floor (measured: 200 ms = "
        "0.50x); outside the backbone 250 ms = 0.62x (start-up 50, EEG read 10, EEG 30, faces 100, normalise 10, "
        "fusion 40, other 10 ms); best reachable here 1.52x, above the goal's 0.6x: out of reach on this CPU whatever "
        "is cut outside the backbone"
    )
