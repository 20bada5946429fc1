"""``bench_command`` end to end on a tiny model: bench.json, bench.md and the charts."""

from __future__ import annotations

import json

import pytest

from milmer.benchmarks.command import BenchSettings, bench_command
from milmer.benchmarks.floor import PRECISION_ENGINES, swin_flops
from milmer.benchmarks.model import SWIN_TINY_TEST
from milmer.benchmarks.summary import SPEED_TARGETS
from milmer.runtime.check import MilmerInputError


def test_writes_json_markdown_and_small_pngs(tiny_bench):
    out, path, result = tiny_bench
    assert path == out / "bench.json"
    md = (out / "bench.md").read_text()
    assert "Speed targets (reported, not enforced)" in md and "earlier, looser targets" in md
    # The notes travel with the markdown: quiet or busy, and that this was the TINY random-weight model.
    assert all(f"- {note}" in md for note in result["notes"])
    assert "TINY smoke-test model" in md and ("Machine quiet at the start" in md or "Machine NOT quiet" in md)
    # bench.md says the paper-size targets were left out and why (not only the terminal summary).
    assert "Speed targets for the paper-size model not applied: TINY model (not the paper's size: token_dim 64" in md
    # Peaks per precision and the side-by-side table with agreement.
    assert "GEMM peaks per precision (best engine): fp32 " in md
    assert "| variant | backbone ms | GFLOP/s | x own floor |" in md and "| ort fp32 | " in md
    assert f"Fastest variant that agrees with fp32: {result['side_by_side']['fastest_agreeing'] or 'none'}." in md
    for name in ("stages", "throughput", "memory"):
        png = (out / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 100_000


def test_no_machine_paths_in_results(tiny_bench):
    out, path, result = tiny_bench
    assert str(out) not in path.read_text()
    assert result["model"]["dir"] == "<model>" and result["model"]["built_here"] is True


def test_flops_from_graph_match_the_formula(tiny_bench):
    flops = tiny_bench[2]["floor"]["flops"]
    assert flops["swin_per_frame"] == swin_flops(SWIN_TINY_TEST)
    assert flops["analytic"]["matches_graph"] is True
    assert flops["per_window"] == 10 * flops["swin_per_frame"] + flops["fusion_per_bag"]
    # One fp32 floor everywhere: the best fp32 GEMM rate of any engine (ORT, OpenVINO, numpy, torch).
    peaks = tiny_bench[2]["floor"]["peaks"]
    peak = max(peaks[e]["peak_gflops"] for e in PRECISION_ENGINES["fp32"] if peaks[e].get("peak_gflops"))
    assert tiny_bench[2]["floor"]["precision_peaks"]["fp32"]["peak_gflops"] == peak
    assert tiny_bench[2]["summary"]["gemm_peak_gflops"] == peak
    assert tiny_bench[2]["summary"]["floor_ms_per_window"] == pytest.approx(flops["per_window"] / peak / 1e6, rel=1e-3)


def test_stage_entries_are_per_window(tiny_bench):
    pre = tiny_bench[2]["stages"]["preprocessing"]
    assert pre["recording"]["n_windows"] == 2
    detect = pre["stages"]["face_detect"]
    assert detect["per"] == "frame" and detect["per_window_s"] == pytest.approx(10 * detect["median_s"], rel=1e-3)
    ica = pre["stages"]["eeg_ica"]
    assert ica["per"] == "recording" and ica["per_window_s"] == pytest.approx(ica["median_s"] / 2, rel=1e-3)
    for precision in ("fp32", "int8"):
        backbone = tiny_bench[2]["stages"]["model"][precision]["stages"]["backbone"]
        assert (
            backbone["n"] == 2 and backbone["min_s"] <= backbone["median_s"] <= backbone["p95_s"] <= backbone["max_s"]
        )


def test_throughput_rows(tiny_bench):
    for precision in ("fp32", "int8"):
        rows = tiny_bench[2]["throughput"][precision]["rows"]
        assert [r["batch"] for r in rows] == [1, 2]
        for r in rows:
            assert r["bags_per_s"] == pytest.approx(r["batch"] / r["median_s"], rel=1e-3)


def test_endtoend_runs_each_in_its_own_process(tiny_bench):
    runs = tiny_bench[2]["endtoend"]
    assert [(r["precision"], r["recording_s"]) for r in runs] == [("fp32", 6), ("int8", 6)]
    for r in runs:
        assert r["n_windows"] == 2 and r["real_time_factor"] == pytest.approx(r["wall_s"] / 6, rel=1e-3)
        assert r["peak_rss_mb"] > r["rss_after_load_mb"] > 50
        assert r["process_s"] > r["wall_s"] and r["import_s"] > 0 and r["session_s"] > 0


def test_reference_matches_onnx_fp32(tiny_bench):
    summary = tiny_bench[2]["summary"]
    parity = summary["reference"]["parity"]
    # Same checkpoint, same crops and EEG: PyTorch eager and ONNX Runtime agree.
    assert parity["windows"] == 2 and parity["agreement"] == 1.0 and parity["max_probability_diff"] < 1e-4
    assert tiny_bench[2]["reference"]["timed_windows"] == 1
    assert set(summary["reference"]["endtoend_speedup"]) == {"fp32", "int8"}
    assert summary["versus_fp32"]["int8"]["windows_compared"] == 2


def test_targets_are_reported_consistently(tiny_bench):
    """A tiny run keeps only the model-independent target (int8 agreement); read as a paper-size
    run, floor and reference for fp32 and int8, the int8 speed-up and agreement, each consistent."""
    import copy

    from milmer.benchmarks import report

    out, _, result = tiny_bench
    assert [t["target"] for t in result["targets"]] == [report.TARGETS["int8_agreement"][0]]
    assert (out / "bench.md").read_text().splitlines()[0].startswith("**TINY model")
    full = copy.deepcopy(result)
    full["model"]["tiny"] = False
    predictions = json.loads((out / "endtoend" / "fp32-6s.json").read_text())["predictions"]
    int8 = json.loads((out / "endtoend" / "int8-6s.json").read_text())["predictions"]
    _, targets = report.summarize(full, {("fp32", 6): predictions, ("int8", 6): int8})
    assert len(targets) == 6  # floor and reference for fp32 and int8, int8 speed-up and agreement
    for t in targets:
        if t["value"] is not None:
            below = t["target"].startswith("end to end")
            assert t["met"] == (t["value"] <= t["threshold"] if below else t["value"] >= t["threshold"])
    # Each row says what it was measured on.
    assert [t["recording_s"] for t in targets[:5]] == [6] * 5
    assert "model_only_speedup" in targets[4] and targets[4]["precision"] == "int8"
    assert targets[5]["windows"] >= 1 and "recording_s" not in targets[5]


def test_settings_are_validated():
    with pytest.raises(MilmerInputError, match="'precisions': expected one of 'fp32', 'fp16', 'int8', got 'fp8'"):
        BenchSettings(precisions=("fp8",))
    with pytest.raises(MilmerInputError, match="'batch_sizes': expected an integer >= 1, got 0"):
        BenchSettings(batch_sizes=(1, 0))
    with pytest.raises(MilmerInputError, match="'backend': expected one of 'auto', 'ort', 'trt', 'openvino', got 'tensorrt'"):
        BenchSettings(backend="tensorrt")
    assert BenchSettings.defaults(quick=True, repeats=7).repeats == 7
    assert BenchSettings.defaults(quick=True).lengths_s == (12, 24)


def test_a_benchmark_model_given_as_model_is_still_marked_random(tiny_bench, tmp_path):
    """--model pointing at a folder an earlier run built (bench-model.json): its weights are random,
    and the report must say so; any other folder is 'as given'."""
    from milmer.benchmarks.model import MARKER_FILE, read_marker

    out, _, result = tiny_bench
    assert result["model"]["benchmark_model"] is True and result["model"]["weights"] == "random (benchmark model)"
    assert read_marker(out / "model") == {"tiny": True, "seed": 0}
    assert json.loads((out / "model" / "spec.json").read_text())["provenance"] == "benchmark"
    assert read_marker(tmp_path) is None
    (tmp_path / MARKER_FILE).write_text("not json")
    assert read_marker(tmp_path) is None


def test_tiny_and_model_do_not_mix(tmp_path):
    with pytest.raises(MilmerInputError, match="'tiny' builds a model"):
        bench_command(tmp_path, tmp_path / "out", tiny=True)


def test_publish_results_names_files_after_the_machine(tiny_bench, tmp_path):
    from milmer.benchmarks.publish import publish_results
    from milmer.benchmarks.machine import cpu_short_name

    out, path, result = tiny_bench
    files = publish_results(path, tmp_path / "results")
    stem = f"cpu-{cpu_short_name()}"
    assert [f.name for f in files] == [f"{stem}.json", f"{stem}.md"] + [
        f"{stem}-{c}.png" for c in ("stages", "throughput", "memory")
    ]
    assert all(f.is_file() for f in files)
    assert (tmp_path / "results" / f"{stem}.md").read_text() == (out / "bench.md").read_text()
    named = publish_results(path, tmp_path / "named", name="cpu-amd-epyc-avx2")
    assert [f.name for f in named][:2] == ["cpu-amd-epyc-avx2.json", "cpu-amd-epyc-avx2.md"]
    for bad in ("../x", ".x", ".."):
        with pytest.raises(MilmerInputError, match=r"'name': expected a file stem that starts with a letter or digit"):
            publish_results(path, tmp_path / "named", name=bad)


def test_end_to_end_uses_the_runtime_default_batch(tiny_bench):
    """No pipeline_batch given: the runs use what milmer-infer uses on a CPU (1 bag per call)."""
    out, _, result = tiny_bench
    assert result["settings"]["pipeline_batch"] == 1
    assert {r["settings"]["batch"] for r in result["endtoend"]} == {1}
    assert "End to end, 1 bag per call" in (out / "bench.md").read_text()


def test_markdown_prints_agreement_as_a_percentage(tiny_bench):
    import re

    out, _, result = tiny_bench
    text = (out / "bench.md").read_text()
    agreement = next(t for t in result["targets"] if t["unit"] == "fraction")
    line = next(x for x in text.splitlines() if x.startswith("- int8 predicts the fp32 class"))
    assert re.fullmatch(r"- int8 predicts the fp32 class on >= 98 % of windows \[int8\]: \d+\.\d % -> (met|NOT met)", line)
    assert f"{agreement['value'] * 100:.1f} %" in line
    # The speed targets are in bench.md too, ICA in milliseconds with the solver that ran.
    ica = next(t for t in result["speed_targets"] if t["target"].startswith("ICA"))
    assert ica["unit"] == "ms" and ica["ica_method"] == "picard" and ica["ica_converged"] is True
    assert re.search(
        r"- ICA <= 10 ms per window amortised on the longest recording \[picard, \d+ iterations, 6 s\]: [\d,.]+ ms -> (met|NOT met)",
        text,
    )


def test_markdown_shows_the_fastest_agreeing_variants_own_runs(tiny_bench):
    """The speed targets come from the fastest agreeing variant's end-to-end runs: bench.md shows
    them as rows of the end-to-end table, and each target line names the variant and recording."""
    import copy

    from milmer.benchmarks import report
    from milmer.benchmarks.markdown import markdown
    from milmer.benchmarks.summary import speed_targets

    result = copy.deepcopy(tiny_bench[2])
    result["model"]["tiny"] = False  # read as a paper-size run: its targets apply
    run = copy.deepcopy(result["endtoend"][0])
    run.pop("predictions", None)
    result["endtoend_best"] = [{"variant": "openvino fp32", **run, "per_window_s": 0.5, "wall_s": 1.0}]
    result["side_by_side"]["fastest_agreeing"] = "openvino fp32"
    result["side_by_side"]["rows"].append({**result["side_by_side"]["rows"][0], "name": "openvino fp32"})
    result["summary"], _ = report.summarize(result, {})  # as bench_command does, after the runs
    result["speed_targets"] = speed_targets(result)
    md = markdown(result)
    row = next(line for line in md.splitlines() if line.startswith("| openvino fp32 (fastest agreeing) |"))
    floor = result["summary"]["floor_ms_per_window"]
    assert f"| {run['recording_s']:g} s | 1.0 |" in row and f"| {500 / floor:.2f} |" in row
    assert f"fastest agreeing variant, <= 1.0x the fp32 floor [openvino fp32, {run['recording_s']:g} s]" in md
    assert f"| ort fp32 | {run['recording_s']:g} s |" in md  # the plain end-to-end rows name their backend too


def test_memory_figure_is_reported(tiny_bench):
    _, _, result = tiny_bench
    mem = result["eeg_memory"]
    assert (mem["recording_s"], mem["sfreq"], mem["channels"], mem["target_mb"]) == (60, 2048, 41, 2048.0)
    # the figure, not a target: targets live in the benchmark (bench.md), not in tests
    assert mem["n_windows"] == 20 and 100 < mem["peak_rss_mb"] and mem["met"] is (mem["peak_rss_mb"] <= mem["target_mb"])


def test_pytorch_peers_beside_the_graphs(tiny_bench):
    """Eager fp32 and (on a bfloat16 CPU) autocast bf16 are timed; torch.compile past its time
    limit (1 s here) is reported as skipped with the limit, not dropped silently."""
    from milmer.runtime.backends.openvino import cpu_flags, has_bf16

    out, _, result = tiny_bench
    peers = result["peers"]
    names = [r["name"] for r in peers["rows"]]
    assert names == (["torch eager fp32", "torch autocast bf16"] if has_bf16(cpu_flags()) else ["torch eager fp32"])
    eager = peers["rows"][0]
    assert eager["max_abs_tokens_vs_eager"] == 0 and eager["backbone_s"] > 0 and eager["frames"] == 10
    assert eager["x_floor"] == pytest.approx(eager["backbone_s"] / (
        10 * result["floor"]["flops"]["swin_per_frame"] / (result["floor"]["precision_peaks"]["fp32"]["peak_gflops"] * 1e9)
    ), rel=1e-3)  # fmt: skip
    assert peers["skipped"]["torch.compile fp32"] == (
        "torch.compile did not finish within 1 s (compiling took too long on this CPU)"
    )
    assert peers["torch_threads"] >= 1
    assert "torch.compile fp32: not measured (torch.compile did not finish within 1 s" in (out / "bench.md").read_text()


def test_a_tiny_model_given_as_model_is_tiny(tiny_bench, tmp_path):
    """--model of a small model (the tiny architecture, as the demo's), not --tiny and without the
    build record: bench reads the sizes from its spec, says TINY and why, and skips the paper-size
    targets, on screen, in bench.json and in bench.md."""
    import shutil

    from milmer.benchmarks.summary import summary_screen

    model = tmp_path / "small-model"
    shutil.copytree(tiny_bench[0] / "model", model)
    (model / "bench-model.json").unlink()
    path = bench_command(model, tmp_path / "out", quick=True, precisions=("fp32",), batch_sizes=(1,),
                         lengths_s=(6,), repeats=1, warmup=0, peer_compile_timeout_s=1.0, progress=False)  # fmt: skip
    result = json.loads(path.read_text())
    assert result["model"]["tiny"] is True and result["model"]["built_here"] is False
    assert result["model"]["not_paper_size"] == ["token_dim 64 (paper: 768)"]
    assert [t["target"] for t in result["speed_targets"]] == [SPEED_TARGETS["ica"][0]]
    assert result["targets"] == []  # fp32 only: the int8 agreement, the one model-independent row, is absent
    assert (tmp_path / "out" / "bench.md").read_text().startswith("**TINY model")
    screen = summary_screen(result)
    assert "milmer bench [TINY model" in screen and "[NOT met] backbone" not in screen
    assert "not applied: TINY model (not the paper's size: token_dim 64 (paper: 768))." in screen


def test_default_settings_run_end_to_end(tiny_bench):
    """milmer-infer with no options, timed like the other end-to-end runs (own process, start-up
    included), named after what 'auto' resolved to here; the tiny model is not judged against the
    paper-size goal, but read as paper-size its row is there, in bench.md too."""
    import copy

    from milmer.benchmarks import report
    from milmer.benchmarks.default_settings import DEFAULT_OPTIONS, GOAL, default_label
    from milmer.benchmarks.markdown import markdown
    from milmer.benchmarks.summary import speed_targets

    out, _, result = tiny_bench
    assert result["default_settings"]["options"] == DEFAULT_OPTIONS == {"backend": "auto", "device": "auto", "precision": "auto"}
    [run] = result["endtoend_default"]
    assert run["recording_s"] == 6 and run["n_windows"] == 2 and run["process_s"] > run["wall_s"] > 0
    assert run["precision"] == "auto" and run["settings"]["batch"] == 1  # the runtime's own defaults
    # The runtime's resolution, in the parent and in the run, agree; the label names it.
    compute = result["default_settings"]["compute"]
    assert run["settings"]["compute_precision"] == run["precision_choice"]["compute"] == compute
    assert run["variant"] == default_label(run["settings"]) == f"default ({run['settings']['backend']['swin']} {compute})"
    if compute == "bf16":  # the parent's check was cached: the run measures what every later run pays
        assert run["precision_choice"]["agreement_cached"] is True
    assert run["agreement_with_fp32"]["windows"] == 2
    assert [r["variant"] for r in result["summary"]["endtoend_default"]] == [run["variant"]]
    assert f"| {run['variant']} | 6 s |" in (out / "bench.md").read_text()
    assert all(t["target"] != GOAL[0] for t in result["speed_targets"])  # TINY: not judged
    full = copy.deepcopy(result)
    full["model"]["tiny"] = False
    full["summary"], _ = report.summarize(full, {})
    full["speed_targets"] = speed_targets(full)
    row = next(t for t in full["speed_targets"] if t["target"] == GOAL[0])
    assert row["variant"] == run["variant"] and row["recording_s"] == 6
    assert row["per_window_ms"] == pytest.approx((run["startup_s"] + run["wall_s"]) / 2 * 1e3, rel=1e-3)
    md = markdown(full)
    assert f"- {GOAL[0]} [{run['variant']}, 6 s]: " in md
