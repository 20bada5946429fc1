"""A whole evaluation protocol: DEAP -> cache -> folds -> per-fold training and test -> report.

``run_experiment(cfg)`` writes into ``cfg.out_dir`` (the checks before it: :mod:`.run_checks`; the
report after it: :mod:`.run_report`)::

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

from ..runtime.files import atomic_file, write_json_atomic
from .train_config import TrainConfig, load_train_config
from .run_checks import CONFIG_FILE, check_run
from .run_report import BEST_MODEL, fold_dir_name, link_best_model, print_summary, report_markdown, run_report
from .splits import Fold

__all__ = ["run_experiment", "check_run", "train_command", "fold_dir_name", "BEST_MODEL"]


def _auto_workers(workers: int | None) -> int:
    """DataLoader workers: as given, else up to 4 while leaving one core to the main process."""
    if workers is not None:
        return workers
    return min(4, max(0, (os.cpu_count() or 1) - 1))


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


def run_experiment(cfg: TrainConfig, *, progress: bool = True, out_name: str = "'out_dir'") -> dict[str, Any]:
    """Run ``cfg``'s protocol end to end (resuming finished folds and interrupted epochs) and
    return the report written to ``out_dir/report.json``.

    Everything is checked first (:func:`~.run_checks.check_run`); ``config.json`` is written only when the
    first fold starts, and a start that fails before any epoch finished removes the run folder
    again. ``out_name``: how errors name the run folder (``"'--out'"`` from the CLI option).
    Raises :class:`~milmer.runtime.check.MilmerInputError` for bad input (before any work where it can be known).
    """
    import warnings

    from .distributed import barrier, init_distributed, shutdown
    from .splits import make_folds
    from .threads import set_torch_threads

    ctx = init_distributed(cfg.device)
    set_torch_threads(log=print if progress else None)  # on purpose: a busy core stalls every extra thread
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
            best = link_best_model(run_dir, results, cfg.keep)
            report = run_report(cfg, results, len(folds), data, best)
            write_json_atomic(run_dir / "report.json", report)
            with atomic_file(run_dir / "report.md") as tmp:
                tmp.write_text(report_markdown(report))
            if progress:
                print_summary(report)
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
