"""A whole evaluation protocol: DEAP -> cache -> folds -> per-fold training and test -> report.

``run_experiment(cfg)`` writes into ``cfg.out_dir``::

    config.json                 the resolved TrainConfig (a re-run with the same config resumes)
    fold_XX/                    one per fold trained
        best/  last/            checkpoints (model + spec + config; last/ also training state)
        history.json            per-epoch training records, rewritten every epoch
        metrics.json            test metrics of the kept checkpoint, split sizes, history
        confusion.png  curves.png
    best_model                  link to (or copy of) the checkpoint of the best fold (for export)
    report.json  report.md      per-fold and mean +- std accuracy and macro-F1, naming the protocol

The protocol is named in every report; a 'segment' report opens with a warning that segments of
one trial are on both sides of the split, so its figures are inflated.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.check import MilmerInputError
from ..runtime.files import atomic_file, write_json_atomic
from .train_config import TrainConfig, load_train_config
from .splits import LEAKY_PROTOCOLS, Fold, protocol_caveat

__all__ = ["run_experiment", "check_run", "train_command", "fold_dir_name", "BEST_MODEL"]

BEST_MODEL = "best_model"
CONFIG_FILE = "config.json"


def fold_dir_name(index: int) -> str:
    return f"fold_{index:02d}"


def _auto_workers(workers: int | None) -> int:
    """DataLoader workers: as given, else up to 4 while leaving one core to the main process."""
    if workers is not None:
        return workers
    return min(4, max(0, (os.cpu_count() or 1) - 1))


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable_folder(name: str, path: Path) -> None:
    """``path`` is a folder we can write, or can be created under one (nothing is created)."""
    if path.exists() and not path.is_dir():
        raise MilmerInputError(f"Invalid value for {name}: {str(path)!r} exists and is not a folder.")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise MilmerInputError(
            f"Invalid value for {name}: cannot create {str(path)!r}: {str(base)!r} is a file, not a folder."
        )
    if not os.access(base, os.W_OK | os.X_OK):
        raise MilmerInputError(f"Invalid value for {name}: cannot write {str(path)!r}: {str(base)!r} is not writable.")


def _check_run_dir(run_dir: Path, cfg: TrainConfig, out_name: str = "'out_dir'") -> None:
    """Refuse to mix two configurations in one run folder; the same config resumes."""
    _check_writable_folder(out_name, run_dir)
    saved = run_dir / CONFIG_FILE
    if saved.is_file():
        previous = json.loads(saved.read_text())
        if previous != cfg.to_dict():
            changed = sorted(k for k in set(previous) | set(cfg.to_dict()) if previous.get(k) != cfg.to_dict().get(k))
            raise MilmerInputError(
                f"Invalid value for {out_name}: {str(run_dir)!r} holds a run made with a different config "
                f"(differs in: {', '.join(changed)}); choose another folder, or delete this one to start over "
                f"(the preprocessed-window cache is kept elsewhere, in {str(cfg.cache_path)!r})."
            )
    elif run_dir.is_dir() and any(run_dir.iterdir()):
        raise MilmerInputError(
            f"Invalid value for {out_name}: folder {str(run_dir)!r} is not empty and holds no milmer run; choose another folder."
        )


def _check_backbone(cfg: TrainConfig) -> None:
    """``model.backbone_dir`` loads as a Swin checkpoint whose tokens have ``spec.graph.token_dim``."""
    from .backbone import load_swin

    path = cfg.model_config().backbone_dir
    try:
        token_dim = int(load_swin(path).config.hidden_size)
    except MilmerInputError:
        raise
    except Exception as err:  # noqa: BLE001 - e.g. safetensors' error for a truncated file
        raise MilmerInputError(
            f"Invalid value for 'backbone_dir': cannot load the Swin checkpoint in {path!r} "
            f"(corrupt or truncated weights?): {type(err).__name__}: {err}."
        ) from None
    if token_dim != cfg.model_spec().graph.token_dim:
        raise MilmerInputError(
            f"Invalid value for 'spec.graph.token_dim': the backbone in {path!r} "
            f"gives tokens of size {token_dim}, got {cfg.model_spec().graph.token_dim}; set "
            f"spec.graph.token_dim={token_dim}."
        )


def check_run(cfg: TrainConfig, *, out_name: str = "'out_dir'") -> Any:
    """Check everything a run needs before any work; returns the DEAP index (a ``DeapIndex``).

    In order: ``out_dir`` (a writable folder that is new, empty, or holds a run of this same
    config), ``cache_dir`` (writable), ``data_root`` (DEAP's layout, at least one usable trial;
    'loso' needs two subjects), ``folds_to_run`` (in range) and ``model.backbone_dir`` (config and weights load as a Swin encoder; its token size matches
    the spec). Option values were checked when ``cfg`` was built. Creates nothing.
    ``out_name`` is how errors name the run folder (``"'--out'"`` when the CLI's option set it).
    Raises :class:`MilmerInputError` naming the key and the path.
    """
    from .deap import index_deap

    _check_run_dir(Path(cfg.out_dir), cfg, out_name)
    _check_writable_folder("'cache_dir'", cfg.cache_path)
    index = index_deap(cfg.data_root, subjects=cfg.subjects, exclude_subjects=cfg.exclude_subjects, param="data_root")
    if cfg.protocol == "loso" and len(index.subjects) < 2:
        raise MilmerInputError(
            f"Invalid value for 'protocol': 'loso' needs >= 2 subjects, got {index.subjects} from data_root "
            f"{str(cfg.data_root)!r} (subjects {cfg.subjects}, exclude_subjects {list(cfg.exclude_subjects)})."
        )
    cfg.fold_indices(len(index.subjects) if cfg.protocol == "loso" else cfg.k_folds)  # folds_to_run in range
    _check_backbone(cfg)
    return index


def _load_data(cfg: TrainConfig, index: Any, ctx: Any, progress: bool) -> tuple[Any, list[Any], np.ndarray]:
    """Build (or reuse) the window cache of ``index``'s trials; returns (cache, skipped, labels)."""
    from .window_cache_build import build_cache
    from .distributed import barrier

    # workers 0 (no DataLoader workers) builds the cache in this process too.
    kwargs = dict(baseline_s=cfg.baseline_s, offset_s=cfg.offset_s, workers=None if cfg.workers is None else max(1, cfg.workers))
    spec = cfg.model_spec()
    # The main process builds; the others open the finished cache afterwards.
    cache = build_cache(index.records, spec, cfg.cache_path, progress=progress, **kwargs) if ctx.is_main else None
    barrier(ctx)
    if cache is None:
        cache = build_cache(index.records, spec, cfg.cache_path, progress=False, **kwargs)
    return cache, list(index.skipped), cache.labels(cfg.label_scheme)


def _resumable(run_dir: Path) -> bool:
    """Whether any fold of ``run_dir`` finished an epoch (``last/``) or its test (metrics.json)."""
    return any((d / "last").is_dir() or (d / "metrics.json").is_file() for d in run_dir.glob("fold_*"))


@contextmanager
def _run_folder(run_dir: Path, cfg: TrainConfig, ctx: Any) -> Iterator[None]:
    """Create ``run_dir`` with ``config.json`` (main process) for the block; if the block fails
    before any fold finished an epoch, remove what this call created, so the corrected rerun
    is not refused for holding "a run made with a different config"."""
    created_dir = not run_dir.exists()
    fresh = not (run_dir / CONFIG_FILE).is_file()
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if fresh:
            cfg.save(run_dir / CONFIG_FILE)
    try:
        yield
    except BaseException:
        if ctx.is_main and fresh and not _resumable(run_dir):
            if created_dir:
                shutil.rmtree(run_dir, ignore_errors=True)
            else:  # it was empty (check_run refuses anything else without config.json)
                for child in run_dir.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
        raise


def _class_counts(labels: np.ndarray, n_classes: int) -> list[int]:
    return np.bincount(labels, minlength=n_classes).astype(int).tolist()


def _precomputed_tokens(cfg: TrainConfig, cache: Any, labels: np.ndarray, ctx: Any, progress: bool) -> Any:
    """Backbone tokens of every window when the backbone is frozen and they fit in memory, else None.

    Stored in the window cache (:mod:`milmer.training.backbone_token_cache`), so the next run with the same
    windows, face rules and backbone weights reuses them instead of running the backbone again.
    """
    from .dataset import WindowDataset
    from .model import build_model
    from .train_config import PRECOMPUTE_MAX_BYTES
    import torch

    from .backbone_token_cache import TOKENS_FOLDER, stored_tokens, token_key
    from .backbone_tokens import backbone_tokens, token_bytes
    from .train import amp_dtype, seed_everything

    config = cfg.model_config()
    if cfg.precompute_tokens == "off" or (config.uses_face and not config.freeze_backbone):
        return None
    seed_everything(cfg.seed)
    model = build_model(config).to(ctx.device)  # the backbone is the pretrained one: the same for every fold
    if not config.uses_face:
        # EEG only: the fusion ignores the face tokens (``MilmerModel.forward`` passes zeros), so a
        # broadcast view of zeros (no memory) spares reading every window's frames from disk.
        return torch.zeros(1, config.frames_per_window, config.tokens_per_frame, model.token_dim).expand(len(cache), -1, -1, -1)
    size = token_bytes(len(cache), model)
    if size > PRECOMPUTE_MAX_BYTES:
        if ctx.is_main:
            print(f"precompute_tokens 'auto': the tokens of {len(cache)} windows need {size / 1024**3:.1f} GiB "
                  f"(> {PRECOMPUTE_MAX_BYTES / 1024**3:.0f} GiB); running the frozen backbone every step instead.")  # fmt: skip
        return None
    spec = cfg.model_spec()
    frames = WindowDataset(cache, spec, labels=labels)
    dtype = amp_dtype(cfg.amp, ctx.device)
    key = token_key(cache.index_path, spec.to_dict()["face"], model.backbone, torch.device(ctx.device), dtype)
    shape = (len(cache), config.frames_per_window, config.tokens_per_frame, model.token_dim)
    tokens, reused = stored_tokens(
        cache.folder, key, shape,
        lambda: backbone_tokens(model, frames, batch_size=cfg.batch_size, device=ctx.device, dtype=dtype,
                                progress=progress and ctx.is_main),
    )  # fmt: skip
    if reused and progress and ctx.is_main:
        print(f"backbone tokens: reused ({TOKENS_FOLDER}/{key}.npy in the window cache)")
    return tokens


def _run_fold(
    cfg: TrainConfig,
    fold: Fold,
    index: int,
    cache: Any,
    labels: np.ndarray,
    tokens: Any,
    ctx: Any,
    run_dir: Path,
    progress: bool,
) -> dict[str, Any]:
    """Train one fold, test its kept checkpoint, write its folder; returns its metrics."""
    from .checkpoint import load_checkpoint
    from .dataset import WindowDataset, make_loader
    from .distributed import shard_loader
    from .metrics import classification_metrics
    from .model import build_model
    from .plots import plot_confusion, plot_curves
    from .backbone_tokens import TokenDataset
    from .train import amp_dtype, evaluate, fit, seed_everything

    spec = cfg.model_spec()
    fold_dir = run_dir / fold_dir_name(index)
    t0 = time.perf_counter()
    seed_everything(cfg.seed)  # the same initial weights for every fold
    model = build_model(cfg.model_config())
    workers = _auto_workers(cfg.workers)

    def loader(idx: np.ndarray, shuffle: bool) -> Any:
        if tokens is not None:  # in memory already: no worker processes
            data, n_workers = TokenDataset(cache.eeg, tokens, labels, idx), 0
        else:
            data, n_workers = WindowDataset(cache, spec, idx, labels=labels), workers
        return make_loader(data, batch_size=cfg.batch_size, shuffle=shuffle, seed=cfg.seed, num_workers=n_workers)

    train_loader = shard_loader(loader(fold.train, True), ctx, seed=cfg.seed)
    val_loader = loader(fold.val, False) if fold.val.size else None
    history = fit(model, train_loader, val_loader, cfg, fold_dir, spec=spec, ctx=ctx, progress=progress,
                  name=f"{fold_dir_name(index)} ({fold.name})")  # fmt: skip
    tested = load_checkpoint(fold_dir / cfg.keep)[0].to(ctx.device)
    ev = evaluate(tested, loader(fold.test, False), device=ctx.device, dtype=amp_dtype(cfg.amp, ctx.device))
    result = {
        "fold": index,
        "name": fold.name,
        "protocol": fold.protocol,
        "leaky": fold.leaky,
        "kept": cfg.keep,
        "kept_epoch": history.best_epoch if cfg.keep == "best" else cfg.epochs,
        "val_macro_f1": history.best_val_macro_f1 if cfg.keep == "best" else (history.records[-1]["val_macro_f1"]),
        "sizes": {"train": int(fold.train.size), "val": int(fold.val.size), "test": int(fold.test.size)},
        "test_class_counts": _class_counts(labels[fold.test], spec.n_classes),
        "test_subjects": sorted({int(s) for s in cache.subject[fold.test]}),
        "test": {"loss": ev.loss, **classification_metrics(ev.y_true, ev.y_pred, spec.n_classes, spec.class_names)},
        "seconds": time.perf_counter() - t0,
        "history": history.to_dict(),
    }
    if ctx.is_main:
        title = f"{fold.name} - protocol '{fold.protocol}'" + (" (INFLATED)" if fold.leaky else "")
        plot_confusion(result["test"]["confusion"], spec.class_names, fold_dir / "confusion.png", title=title)
        plot_curves(history.records, fold_dir / "curves.png", title=title)
        write_json_atomic(fold_dir / "metrics.json", result)
    return result


def _finished_fold(fold_dir: Path) -> dict[str, Any] | None:
    path = fold_dir / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _link_best_model(run_dir: Path, results: list[dict[str, Any]], keep: str) -> dict[str, Any]:
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


def _report(cfg: TrainConfig, results: list[dict[str, Any]], n_folds: int, data: dict[str, Any], best: dict[str, Any]) -> dict[str, Any]:
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


def _markdown(report: dict[str, Any]) -> str:
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


def _print_summary(report: dict[str, Any]) -> None:
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


def run_experiment(cfg: TrainConfig, *, progress: bool = True, out_name: str = "'out_dir'") -> dict[str, Any]:
    """Run ``cfg``'s protocol end to end (resuming finished folds and interrupted epochs) and
    return the report written to ``out_dir/report.json``.

    Everything is checked first (:func:`check_run`); ``config.json`` is written only when the
    first fold starts, and a start that fails before any epoch finished removes the run folder
    again. ``out_name``: how errors name the run folder (``"'--out'"`` from the CLI option).
    Raises :class:`MilmerInputError` for bad input (before any work where it can be known).
    """
    import warnings

    from .distributed import barrier, init_distributed, shutdown
    from .splits import make_folds

    ctx = init_distributed(cfg.device)
    run_dir = Path(cfg.out_dir)
    try:
        # Everything is checked before any work, and the run folder is made only once training
        # starts: a failed start leaves nothing behind (the shared cache keeps finished trials).
        index = check_run(cfg, out_name=out_name)
        barrier(ctx)
        t0 = time.perf_counter()
        cache, skipped, labels = _load_data(cfg, index, ctx, progress)
        t_data = time.perf_counter() - t0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the 'segment' caveat goes into the report instead
            folds = make_folds(cache.subject, cache.trial, labels, cfg.protocol, k=cfg.k_folds, seed=cfg.seed,
                               val_fraction=cfg.val_fraction)  # fmt: skip
        fold_ids = cfg.fold_indices(len(folds))
        todo = [i for i in fold_ids if _finished_fold(run_dir / fold_dir_name(i)) is None]
        tokens = _precomputed_tokens(cfg, cache, labels, ctx, progress) if todo else None
        barrier(ctx)  # every rank has checked before the main one creates the run folder
        results = []
        with _run_folder(run_dir, cfg, ctx):
            for i in fold_ids:
                done = _finished_fold(run_dir / fold_dir_name(i))
                results.append(done if done is not None else _run_fold(cfg, folds[i], i, cache, labels, tokens, ctx, run_dir, progress))
        data = {
            "windows": int(len(cache)),
            "subjects": sorted({int(s) for s in cache.subject}),
            "class_counts": _class_counts(labels, cfg.model_spec().n_classes),
            "skipped": [str(s) for s in skipped],
            "cache": str(cache.folder),
            "data_seconds": t_data,
        }
        report: dict[str, Any] = {}
        if ctx.is_main:
            best = _link_best_model(run_dir, results, cfg.keep)
            report = _report(cfg, results, len(folds), data, best)
            write_json_atomic(run_dir / "report.json", report)
            with atomic_file(run_dir / "report.md") as tmp:
                tmp.write_text(_markdown(report))
            if progress:
                _print_summary(report)
        barrier(ctx)
        return report
    finally:
        shutdown(ctx)


def train_command(config_path: Path, overrides: list[str], out: Path | None) -> Path:
    """``milmer train --config CFG [--out DIR] [key=value ...]``: run and return the run folder.

    The config file (JSON or TOML; relative paths in it are read from its folder) is read first,
    then ``--out`` (as ``out_dir``), then the overrides (``epochs=5``, ``model.d_model=64``, ...;
    relative paths from the working directory). Errors name ``--config`` / ``--out`` where those
    options gave the value.
    """
    from ..runtime.check import check_path_exists, check_suffix
    from .train_config import CONFIG_SUFFIXES

    check_suffix("--config", check_path_exists("--config", config_path), CONFIG_SUFFIXES)
    values = {"out_dir": str(out)} if out is not None else {}
    cfg = load_train_config(config_path, overrides, **values)
    out_given = out is not None and not any(o.strip().startswith("out_dir=") for o in overrides)
    run_experiment(cfg, progress=True, out_name="'--out'" if out_given else "'out_dir'")
    return Path(cfg.out_dir)
