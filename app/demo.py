"""``milmer demo``: the whole path on synthetic data, on a CPU, in a few minutes.

demo data -> preprocess the demo recording (pictures) -> train the tiny model under each
protocol -> export the ``trial`` model to ONNX -> ``milmer-infer`` on the recording.

The demo is gathered here, above every layer (it uses runtime, training and export): the run
(:func:`run_demo`), its training settings (:func:`demo_train_config`), its protocols and
ablations, and the ``milmer demo`` command. Two pieces live elsewhere: the synthetic-data generator
(:mod:`milmer.synthetic`, the demo extra, which the tests and benchmarks also use to make inputs,
and the torch-free ``milmer demo-data`` command) and the record of where the demo model is
(:mod:`milmer.runtime.demo_model`), which ``milmer-infer`` reads.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from .errors import handle_errors

if TYPE_CHECKING:
    from milmer.training.train_config import TrainConfig

__all__ = ["DEMO_ABLATIONS", "DEMO_PROTOCOLS", "demo", "demo_train_config", "run_demo"]

#: Protocols the demo trains under, honest one first. ``segment`` is the paper's (inflated).
DEMO_PROTOCOLS: tuple[str, ...] = ("trial", "loso", "segment")

#: Ablations trained beside the paper's model under the first protocol: ``TrainConfig`` changes,
#: ``model`` holding ``ModelConfig`` changes.
DEMO_ABLATIONS: dict[str, dict[str, Any]] = {
    "no EEG augmentation (paper recipe)": {"eeg_augment": "none"},
    "concat fusion": {"model": {"fusion": "concat"}},
    "mean-pooling MIL": {"model": {"mil": "mean"}},
    "EEG only": {"model": {"modality": "eeg"}},
    "face only": {"model": {"modality": "face"}},
    "spectral EEG tokens": {"model": {"eeg_tokens": "spectral"}},
}
#: Name of the default model in the demo's tables.
PAPER_MODEL = "paper (transformer fusion, top-K MIL, cross-attention)"


def run_demo(
    out: str | os.PathLike[str],
    *,
    protocols: tuple[str, ...] = DEMO_PROTOCOLS,
    subjects: int = 2,
    trials: int = 32,
    trial_s: float = 12.0,
    recording_s: float = 60.0,
    epochs: int | None = None,
    seed: int = 0,
    ablations: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run the demo into ``out`` (created, or reused when it holds an earlier demo).

    Writes ``data/`` (synthetic DEAP-format), ``preprocessed/`` (windows and pictures),
    ``backbone/`` (a tiny Swin in Hugging Face format), ``runs/<protocol>/`` (training reports),
    ``model/`` (ONNX graphs + spec) and ``predictions.json``; returns a summary dict that is
    also written to ``demo_summary.json``.

    The paper's model is trained under every protocol in ``protocols``; each ablation
    (default :data:`DEMO_ABLATIONS`, name -> ``TrainConfig`` changes) under the first protocol
    only, into ``runs/<protocol>-<name>/``. Every fold of every protocol is run. Training is
    seeded and uses deterministic torch algorithms, so a re-run on the same machine prints the
    same figures.
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    from milmer.runtime.check import check_option

    for p in protocols:
        check_option("protocol", p, DEMO_PROTOCOLS)
    # One BLAS thread: FastICA's small matrices gain little from more, and on a busy machine
    # OpenBLAS threads that wait for cores made ICA ~10x slower (31 s vs 2.9 s for 60 s of EEG).
    with threadpool_limits(limits=1, user_api="blas"):
        return _run_demo(out, protocols, subjects, trials, trial_s, recording_s, epochs, seed, ablations)


def _run_demo(
    out: str | os.PathLike[str],
    protocols: tuple[str, ...],
    subjects: int,
    trials: int,
    trial_s: float,
    recording_s: float,
    epochs: int | None,
    seed: int,
    ablations: dict[str, dict[str, Any]] | None,
) -> dict[str, Any]:
    from rich.console import Console

    from milmer.runtime.files import write_json_atomic
    from milmer.synthetic import make_demo_data
    from milmer.runtime.demo_model import record_demo_model
    from milmer.runtime.pipeline import Pipeline
    from milmer.runtime.report import write_predictions
    from milmer.runtime.preprocess import preprocess_recording, write_preprocessed

    from .render import print_report

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
    import torch

    from milmer.training.backbone import save_tiny_swin
    from milmer.training.experiment import run_experiment

    torch.use_deterministic_algorithms(True)
    backbone = save_tiny_swin(out / "backbone")
    ablations = DEMO_ABLATIONS if ablations is None else ablations
    runs: list[tuple[str, str, dict[str, Any]]] = [(PAPER_MODEL, p, {}) for p in protocols]
    runs += [(name, protocols[0], change) for name, change in ablations.items()]
    results: dict[str, Any] = {}
    ablation_results: dict[str, Any] = {}
    for name, protocol, change in runs:
        console.print(f"[bold]{name}[/] under protocol {protocol!r}")
        t_run = time.perf_counter()
        changes: dict[str, Any] = {"seed": seed, **change}
        if epochs is not None:
            changes["epochs"] = epochs
        folder = protocol if not change else f"{protocol}-{_slug(name)}"
        cfg = demo_train_config(data / "deap", out / "runs" / folder, out / "cache", backbone, protocol, **changes)
        report = run_experiment(cfg, progress=True)
        row = _row(report) | {"seconds": time.perf_counter() - t_run, "protocol": protocol}
        if change:
            ablation_results[name] = row
        else:
            results[protocol] = report
            summary["timings_s"][f"train_{protocol}"] = row["seconds"]
            if protocol == protocols[0]:
                ablation_results[PAPER_MODEL] = row
    summary["accuracy_by_protocol"] = {p: _row(r) for p, r in results.items()}
    summary["ablations"] = {"protocol": protocols[0], "models": ablation_results}
    summary["timings_s"]["train"] = time.perf_counter() - t

    t = step("4/5 export to ONNX (swin.onnx + fusion.onnx, checked against PyTorch)")
    from milmer.export.command import export_command

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


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def _row(report: dict[str, Any]) -> dict[str, Any]:
    """Mean +- std over every fold of a training report, with the fold count and chance."""
    s = report["summary"]
    return {
        "accuracy_mean": s["accuracy"]["mean"],
        "accuracy_std": s["accuracy"]["std"],
        "macro_f1_mean": s["macro_f1"]["mean"],
        "macro_f1_std": s["macro_f1"]["std"],
        "folds": len(report["folds_run"]),
        "folds_total": report["folds_total"],
        "chance": report["chance"]["uniform"],
        "caveat": report.get("caveat"),
    }


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

    table = Table(title=f"milmer demo, {PAPER_MODEL} (SYNTHETIC data: not a result on DEAP)")
    for col in ("protocol", "folds", "accuracy (mean +- std over folds)", "macro-F1", "chance"):
        table.add_column(col)
    for p, r in summary["accuracy_by_protocol"].items():
        table.add_row(
            p + (" (INFLATED)" if r.get("caveat") else ""),
            f"{r['folds']} of {r['folds_total']}",
            f"{r['accuracy_mean']:.3f} +- {r['accuracy_std']:.3f}",
            f"{r['macro_f1_mean']:.3f} +- {r['macro_f1_std']:.3f}",
            f"{r['chance']:.3f}",
        )
    console.print(table)
    ab = summary["ablations"]
    if ab["models"]:
        table = Table(title=f"ablations, protocol {ab['protocol']!r}, every fold (SYNTHETIC data)")
        for col in ("model", "accuracy (mean +- std over folds)", "macro-F1", "train s"):
            table.add_column(col)
        for name, r in ab["models"].items():
            table.add_row(name, f"{r['accuracy_mean']:.3f} +- {r['accuracy_std']:.3f}",
                          f"{r['macro_f1_mean']:.3f} +- {r['macro_f1_std']:.3f}", f"{r['seconds']:.0f}")  # fmt: skip
        console.print(table)
    else:
        console.print("Ablations not run: `milmer demo --ablations` trains and prints them side by side.")
    for p, r in summary["accuracy_by_protocol"].items():
        if r.get("caveat"):
            console.print(f"[bold red]Note on {p!r}:[/] {r['caveat']}")
    acc = summary.get("recording_accuracy_vs_truth")
    if acc is not None:
        console.print(f"Recording (exported ONNX model, ONNX Runtime): {acc:.1%} of windows match the true state.")
    console.print(
        "Times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in summary["timings_s"].items())
    )
    folder = Path(summary["model_dir"]).parent
    console.print(f"Results: {folder / 'demo_summary.json'} (these figures), {folder / 'predictions.json'} (the recording's windows)")
    console.print(f"Model for milmer-infer: {summary['model_dir']}")


def demo_train_config(
    data_root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None,
    backbone_dir: str | os.PathLike[str],
    protocol: str = "trial",
    **changes: Any,
) -> TrainConfig:
    """Settings that train the tiny demo model on a CPU in seconds per fold.

    Meant for data from ``make_demo_data`` (2 subjects x 32 trials) and a tiny Swin written by
    ``save_tiny_swin(backbone_dir)``: the paper's architecture (transformer fusion of 32 EEG
    tokens and the cross-attention tokens of the top-K MIL frames) at toy size (d_model 64, 4
    heads, FFN 128, 16 queries, 1 encoder layer) with a frozen backbone whose tokens are computed
    once (``precompute_tokens``). Every fold is run (4 for ``trial``/``segment``) and no
    validation split is held out: the last epoch is kept, so a validation set would select
    nothing and only cost training trials. Two departures from the paper's recipe, demo only: a
    higher learning rate (1e-3 vs 1e-4) and Fourier-transform-surrogate EEG augmentation
    (``eeg_augment='ft-surrogate'``, :mod:`milmer.training.augment`): the demo EEG carries its
    class in band power, which the paper's raw-sample EEG MLP cannot read from 192 training
    windows; without the augmentation it memorises those windows' raw EEG and tests at chance
    (the ablation "no EEG augmentation" shows it). ``spec.graph.token_dim`` is read from the
    backbone's ``config.json``; ``spec.provenance`` is ``'demo'``, so the checkpoints and the
    exported model say they were trained on synthetic data.
    ``changes`` override any field; ``model`` changes are merged into the demo's model settings.
    """
    from milmer.training.backbone import read_swin_config, swin_token_dim
    from milmer.training.train_config import TrainConfig

    token_dim = swin_token_dim(read_swin_config(backbone_dir))
    values: dict[str, Any] = dict(
        data_root=str(data_root),
        out_dir=str(out_dir),
        cache_dir=None if cache_dir is None else str(cache_dir),
        protocol=protocol,
        k_folds=4,
        folds_to_run=None,
        val_fraction=0.0,
        keep="last",
        epochs=30,
        batch_size=16,
        lr=1e-3,
        eeg_augment="ft-surrogate",
        workers=0,
        device="cpu",
        spec={"graph": {"token_dim": token_dim}, "provenance": "demo"},
        model={
            "d_model": 64, "n_heads": 4, "ffn_dim": 128, "n_layers": 1, "n_queries": 16, "mil_hidden": 32,
            "backbone_dir": str(backbone_dir), "freeze_backbone": True,
        },  # fmt: skip
    )
    model_changes = changes.pop("model", {})
    values.update(changes)
    values["model"] = {**values["model"], **model_changes}
    return TrainConfig(**values)


@handle_errors
def demo(
    out: Path = typer.Option(Path("demo"), "--out", help="Folder for everything the demo writes."),
    epochs: Optional[int] = typer.Option(
        None, "--epochs", metavar="N", min=1, help="Training epochs per fold (default: the demo's)."
    ),
    ablations: bool = typer.Option(
        False, "--ablations",
        help=f"Also train the {len(DEMO_ABLATIONS)} ablations ({', '.join(DEMO_ABLATIONS)}) under the trial "
        f"protocol and print them side by side ({4 * len(DEMO_ABLATIONS)} more fold trainings: about a minute per "
        "ablation on 2 cores).",
    ),
) -> None:
    """The quick-start demo on SYNTHETIC data: generate -> preprocess -> train -> export -> infer."""
    from milmer.runtime.check import check_writable_dir

    check_writable_dir("--out", out, hint="give a folder in a writable place")
    run_demo(out, epochs=epochs, ablations=None if ablations else {})
