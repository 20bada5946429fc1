"""What a finished training run writes and prints: the ``best_model`` link, ``report.json`` (per-fold
and mean +- std accuracy and macro-F1, always naming the protocol), ``report.md`` and the summary
table. A 'segment' report opens with a warning that its figures are inflated.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .splits import LEAKY_PROTOCOLS, protocol_caveat
from .train_config import TrainConfig

__all__ = ["BEST_MODEL", "fold_dir_name", "link_best_model", "run_report", "report_markdown", "print_summary"]

#: The link (or copy) in the run folder to the best fold's kept checkpoint (for export).
BEST_MODEL = "best_model"


def fold_dir_name(index: int) -> str:
    return f"fold_{index:02d}"


def link_best_model(run_dir: Path, results: list[dict[str, Any]], keep: str) -> dict[str, Any]:
    """Point ``best_model`` at the kept checkpoint of the fold with the best validation macro-F1
    (test macro-F1 only when a fold has no validation split: choosing on test flatters it)."""
    by_val = all(r["val_macro_f1"] is not None for r in results)
    key = (lambda r: r["val_macro_f1"]) if by_val else (lambda r: r["test"]["macro_f1"])
    best = max(results, key=key)  # max keeps the first (lowest fold index) on ties
    target = Path(fold_dir_name(best["fold"])) / keep
    link = run_dir / BEST_MODEL
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    try:
        link.symlink_to(target, target_is_directory=True)
    except OSError:  # file systems without symlinks: copy
        shutil.copytree(run_dir / target, link)
    return {"fold": best["fold"], "name": best["name"], "path": str(target),
            "chosen_by": "validation macro-F1" if by_val else "test macro-F1 (no validation split)"}  # fmt: skip


def run_report(cfg: TrainConfig, results: list[dict[str, Any]], n_folds: int, data: dict[str, Any], best: dict[str, Any]) -> dict[str, Any]:
    from .metrics import summarize_folds

    spec = cfg.model_spec()
    test = [r["test"] for r in results]
    pooled_true = np.concatenate([np.repeat(np.arange(spec.n_classes), np.asarray(r["test"]["confusion"]).sum(1)) for r in results])
    majority = float(np.bincount(pooled_true, minlength=spec.n_classes).max() / pooled_true.size)
    return {
        "protocol": cfg.protocol,
        "leaky": cfg.protocol in LEAKY_PROTOCOLS,
        "caveat": protocol_caveat(cfg.protocol),
        "label_scheme": cfg.label_scheme,
        "class_names": list(spec.class_names),
        "chance": {"uniform": 1.0 / spec.n_classes, "majority_class": majority},
        "folds_total": n_folds,
        "folds_run": [r["fold"] for r in results],
        "summary": summarize_folds(test),
        "per_fold": [
            {k: r[k] for k in ("fold", "name", "sizes", "kept", "kept_epoch", "val_macro_f1", "test_subjects", "seconds")}
            | {"accuracy": r["test"]["accuracy"], "macro_f1": r["test"]["macro_f1"], "n_test": r["test"]["n"]}
            for r in results
        ],
        "best_model": best,
        "data": data,
        "config": cfg.to_dict(),
    }


def report_markdown(report: dict[str, Any]) -> str:
    s = report["summary"]
    lines = [f"# Milmer results - protocol '{report['protocol']}', labels '{report['label_scheme']}'", ""]
    if report["leaky"]:
        lines += [f"> **WARNING - INFLATED FIGURES.** {report['caveat']}", ""]
    lines += [
        f"Protocol: **{report['protocol']}** ({len(report['folds_run'])} of {report['folds_total']} folds run). "
        f"Classes: {', '.join(report['class_names'])}. Chance: {report['chance']['uniform']:.3f} (uniform), "
        f"{report['chance']['majority_class']:.3f} (majority class of the test windows).",
        "",
        "| fold | train / val / test windows | epoch kept | test accuracy | test macro-F1 |",
        "|---|---|---|---|---|",
    ]
    for r in report["per_fold"]:
        z = r["sizes"]
        lines.append(f"| {r['name']} | {z['train']} / {z['val']} / {z['test']} | {r['kept']} ({r['kept_epoch']}) "
                     f"| {r['accuracy']:.4f} | {r['macro_f1']:.4f} |")  # fmt: skip
    lines.append(f"| **mean +- std** | | | **{s['accuracy']['mean']:.4f} +- {s['accuracy']['std']:.4f}** "
                 f"| **{s['macro_f1']['mean']:.4f} +- {s['macro_f1']['std']:.4f}** |")  # fmt: skip
    b = report["best_model"]
    lines += ["", f"`{BEST_MODEL}` -> `{b['path']}` (chosen by {b['chosen_by']}).", ""]
    if report["data"].get("skipped"):
        lines += ["Skipped: " + "; ".join(report["data"]["skipped"]), ""]
    return "\n".join(lines)


def print_summary(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    title = f"protocol '{report['protocol']}'" + (" - INFLATED (segments of one trial on both sides)" if report["leaky"] else "")
    table = Table(title=title)
    for col in ("fold", "test windows", "accuracy", "macro-F1"):
        table.add_column(col, justify="left" if col == "fold" else "right")
    for r in report["per_fold"]:
        table.add_row(r["name"], str(r["n_test"]), f"{r['accuracy']:.4f}", f"{r['macro_f1']:.4f}")
    s = report["summary"]
    table.add_row("mean +- std", "", f"{s['accuracy']['mean']:.4f} +- {s['accuracy']['std']:.4f}",
                  f"{s['macro_f1']['mean']:.4f} +- {s['macro_f1']['std']:.4f}", style="bold")  # fmt: skip
    console.print(table)
    if report["leaky"]:
        console.print(f"[bold red]WARNING:[/] {report['caveat']}")
