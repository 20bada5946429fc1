"""``milmer demo``: the whole path on synthetic data, on a CPU, in a few minutes.

demo data -> preprocess the demo recording (pictures) -> train the tiny model under each
protocol -> export the best ``trial`` model to ONNX -> ``milmer-infer`` on the recording.
It lives in ``export`` because it is the one place that may use training, export and runtime.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["DEMO_PROTOCOLS", "run_demo"]

#: Protocols the demo trains under, honest one first. ``segment`` is the paper's (inflated).
DEMO_PROTOCOLS: tuple[str, ...] = ("trial", "loso", "segment")


def run_demo(
    out: str | os.PathLike[str],
    *,
    protocols: tuple[str, ...] = DEMO_PROTOCOLS,
    subjects: int = 2,
    trials: int = 8,
    trial_s: float = 30.0,
    recording_s: float = 60.0,
    epochs: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the demo into ``out`` (created, or reused when it holds an earlier demo).

    Writes ``data/`` (synthetic DEAP-format), ``preprocessed/`` (windows and pictures),
    ``backbone/`` (a tiny Swin in Hugging Face format), ``runs/<protocol>/`` (training reports),
    ``model/`` (ONNX graphs + spec) and ``predictions.json``; returns a summary dict that is
    also written to ``demo_summary.json``.
    """
    from rich.console import Console

    from milmer.runtime._check import check_option
    from milmer.runtime._io import write_json_atomic
    from milmer.runtime.demo import make_demo_data
    from milmer.runtime.infer import record_demo_model
    from milmer.runtime.pipeline import Pipeline
    from milmer.runtime.predictions import print_report, write_predictions
    from milmer.runtime.preprocess import preprocess_recording, write_preprocessed

    for p in protocols:
        check_option("protocol", p, DEMO_PROTOCOLS)
    console = Console()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"synthetic_data": True, "timings_s": {}}
    t_all = time.perf_counter()

    def step(name: str) -> Any:
        console.rule(f"[bold]{name}")
        return time.perf_counter()

    t = step("1/5 synthetic DEAP-format data")
    data = out / "data"
    manifest = make_demo_data(
        data, n_subjects=subjects, n_trials=trials, trial_s=trial_s, recording_s=recording_s,
        seed=seed, progress=True, overwrite=True,
    )
    console.print(manifest.summary())
    summary["timings_s"]["demo_data"] = time.perf_counter() - t

    t = step("2/5 preprocess the demo recording (what the model sees)")
    video, eeg = manifest.recording_video, manifest.recording_eeg
    pre = preprocess_recording(video, eeg, progress=True, keep_trace=True)
    write_preprocessed(pre, out / "preprocessed", overwrite=True)
    info = pre.report
    console.print(
        f"{info['n_windows']} windows; ICA removed components {info['eeg_info']['ica_excluded']}; "
        f"faces found in {info['face_info']['frames_total'] - info['face_info']['frames_without_face']}"
        f"/{info['face_info']['frames_total']} frames -> {out / 'preprocessed'} (faces.png, eeg_ica.png)"
    )
    summary["timings_s"]["preprocess"] = time.perf_counter() - t

    t = step("3/5 train the tiny Milmer on the synthetic DEAP data")
    from milmer.training.backbone import save_tiny_swin
    from milmer.training.experiment import demo_train_config, run_experiment

    backbone = save_tiny_swin(out / "backbone")
    results: dict[str, Any] = {}
    for protocol in protocols:
        changes: dict[str, Any] = {"seed": seed}
        if epochs is not None:
            changes["epochs"] = epochs
        cfg = demo_train_config(
            data / "deap", out / "runs" / protocol, out / "cache", backbone, protocol, **changes
        )
        report = run_experiment(cfg, progress=True)
        results[protocol] = report
    summary["accuracy_by_protocol"] = {
        p: {
            "accuracy_mean": r["summary"]["accuracy"]["mean"],
            "accuracy_std": r["summary"]["accuracy"]["std"],
            "macro_f1_mean": r["summary"]["macro_f1"]["mean"],
            "macro_f1_std": r["summary"]["macro_f1"]["std"],
            "chance": r["chance"]["uniform"],
            "caveat": r.get("caveat"),
        }
        for p, r in results.items()
    }
    summary["timings_s"]["train"] = time.perf_counter() - t

    t = step("4/5 export to ONNX (swin.onnx + fusion.onnx, checked against PyTorch)")
    from .command import export_command

    best = out / "runs" / protocols[0] / results[protocols[0]]["best_model"]["path"]
    model_dir = export_command(best, out / "model", int8=True, overwrite=True, progress=True)
    record_demo_model(model_dir)
    summary["model_dir"] = str(model_dir)
    summary["timings_s"]["export"] = time.perf_counter() - t

    t = step("5/5 milmer-infer on the demo recording")
    with Pipeline(model_dir, backend="ort", device="cpu") as pipe:
        result = pipe.predict(video, eeg, progress=True)
    write_predictions(result, out / "predictions.json")
    print_report(result, console=console)
    truth = json.loads(Path(manifest.recording_truth).read_text())
    summary["recording_accuracy_vs_truth"] = _accuracy_vs_truth(result, truth)
    summary["timings_s"]["infer"] = time.perf_counter() - t
    summary["timings_s"]["total"] = time.perf_counter() - t_all

    _print_summary(console, summary)
    write_json_atomic(out / "demo_summary.json", summary)
    return summary


def _accuracy_vs_truth(result: Any, truth: dict[str, Any]) -> float | None:
    """Fraction of windows whose predicted class is the recording's true class at mid-window."""
    segments = truth.get("segments", [])
    hits = total = 0
    for w in result.windows:
        mid = (w.start + w.end) / 2
        seg = next((s for s in segments if s["start_s"] <= mid < s["end_s"]), None)
        if seg is None:
            continue
        total += 1
        hits += int(seg["label"] == w.label)
    return hits / total if total else None


def _print_summary(console: Any, summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="milmer demo (SYNTHETIC data: not a result on DEAP)")
    for col in ("protocol", "accuracy (mean +- std over folds)", "macro-F1", "chance"):
        table.add_column(col)
    for p, r in summary["accuracy_by_protocol"].items():
        table.add_row(
            p + (" (INFLATED)" if r.get("caveat") else ""),
            f"{r['accuracy_mean']:.3f} +- {r['accuracy_std']:.3f}",
            f"{r['macro_f1_mean']:.3f} +- {r['macro_f1_std']:.3f}",
            f"{r['chance']:.3f}",
        )
    console.print(table)
    for p, r in summary["accuracy_by_protocol"].items():
        if r.get("caveat"):
            console.print(f"[bold red]Note on {p!r}:[/] {r['caveat']}")
    acc = summary.get("recording_accuracy_vs_truth")
    if acc is not None:
        console.print(f"Recording (exported ONNX model, ONNX Runtime): {acc:.1%} of windows match the true state.")
    console.print(
        "Times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in summary["timings_s"].items())
    )
    console.print(f"Model for milmer-infer: {summary['model_dir']}")
