"""Train/validation/test folds over windows, under three evaluation protocols.

- ``segment``: what the Milmer paper did. Each subject's 3 s segments are shuffled and split at
  random, so segments of one 60 s trial land in both training and test sets; neighbouring
  segments share the trial's label, the subject's state and the video's content, and the model
  can recognise the trial instead of the emotion. Its accuracies are INFLATED and not comparable
  with trial-level results: every fold carries ``leaky=True``, :data:`LEAKY_PROTOCOLS` lists it,
  :func:`protocol_caveat` gives the sentence to print next to its numbers, and
  :func:`make_folds` warns.
- ``trial``: subject-dependent k-fold over whole trials. Each subject's trials are split into
  ``k`` groups (stratified by the trial's label when some class has >= ``k`` trials); fold ``i`` tests
  on group ``i`` of every subject. No trial has windows on two sides.
- ``loso``: leave one subject out; one fold per subject (``k`` is not used).

Validation is carved out of each fold's training part with the same grouping: random windows
(``segment``), whole trials of each subject (``trial``), whole subjects (``loso``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from ..runtime.check import (
    check_array,
    check_compare,
    check_int,
    check_nonempty,
    check_number,
    check_option,
    check_same_length,
    check_sequence,
)

__all__ = ["PROTOCOLS", "LEAKY_PROTOCOLS", "Protocol", "Fold", "protocol_caveat", "make_folds"]

Protocol = Literal["segment", "trial", "loso"]
PROTOCOLS: tuple[str, ...] = ("segment", "trial", "loso")
#: Protocols whose test sets share trials with training: their results are inflated.
LEAKY_PROTOCOLS: frozenset[str] = frozenset({"segment"})

_SEGMENT_CAVEAT = (
    "protocol 'segment' splits 3 s segments at random, so segments of the same trial are in both "
    "training and test sets; its accuracy is INFLATED and not comparable with 'trial' or 'loso'."
)


@dataclass(frozen=True)
class Fold:
    """Window indices of one fold. ``leaky``: test shares trials with training (``segment``)."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    protocol: str
    leaky: bool


def protocol_caveat(protocol: str) -> str | None:
    """The warning to print with results of ``protocol`` (None when results are honest)."""
    check_option("protocol", protocol, PROTOCOLS)
    return _SEGMENT_CAVEAT if protocol in LEAKY_PROTOCOLS else None


def _n_val(n: int, val_fraction: float) -> int:
    """Groups moved to validation: ``round(val_fraction * n)``, at least 1 if asked for, never all."""
    if val_fraction == 0 or n < 2:
        return 0
    return min(max(1, int(round(val_fraction * n))), n - 1)


def _idx(parts: list[np.ndarray]) -> np.ndarray:
    return np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64)


def _segment_folds(subject: np.ndarray, k: int, rng: np.random.Generator, val_fraction: float) -> list[Fold]:
    chunks = {}
    for s in np.unique(subject):
        windows = rng.permutation(np.flatnonzero(subject == s))
        check_compare("k", k, "<=", f"the windows of subject {s} (protocol 'segment')", windows.size)
        chunks[s] = np.array_split(windows, k)
    folds = []
    for i in range(k):
        test = _idx([c[i] for c in chunks.values()])
        train, val = [], []
        for c in chunks.values():
            rest = rng.permutation(np.concatenate([c[j] for j in range(k) if j != i]))
            n_val = _n_val(rest.size, val_fraction)
            val.append(rest[:n_val])
            train.append(rest[n_val:])
        folds.append(Fold(f"segment-fold{i}", _idx(train), _idx(val), test, "segment", True))
    return folds


def _trial_folds(
    subject: np.ndarray, trial: np.ndarray, labels: np.ndarray, k: int, seed: int, rng: np.random.Generator,
    val_fraction: float,
) -> list[Fold]:
    from sklearn.model_selection import KFold, StratifiedKFold

    # Per subject: trial ids and each trial's (single) label, then k groups of whole trials.
    per_subject = []
    for s in np.unique(subject):
        rows = np.flatnonzero(subject == s)
        trials = np.unique(trial[rows])
        check_compare("k", k, "<=", f"the trials of subject {s} (protocol 'trial')", trials.size)
        trial_label = np.empty(trials.size, labels.dtype)
        for j, t in enumerate(trials):
            lab = np.unique(labels[rows[trial[rows] == t]])
            check_sequence(
                f"labels[subject {s}, trial {t}]", lab.tolist(), length=1, what="one label per trial (protocol 'trial')"
            )
            trial_label[j] = lab[0]
        # Stratify when some class has >= k trials (sklearn's requirement); classes rarer than
        # k are then spread as evenly as their counts allow. Otherwise plain shuffled k-fold.
        if np.unique(trial_label, return_counts=True)[1].max() >= k:
            splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        else:
            splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            test_groups = [trials[te] for _, te in splitter.split(trials, trial_label)]
        per_subject.append((rows, trials, test_groups))

    folds = []
    for i in range(k):
        train, val, test = [], [], []
        for rows, trials, test_groups in per_subject:
            held = test_groups[i]
            rest = rng.permutation(np.setdiff1d(trials, held))
            val_trials = rest[: _n_val(rest.size, val_fraction)]
            t = trial[rows]
            test.append(rows[np.isin(t, held)])
            val.append(rows[np.isin(t, val_trials)])
            train.append(rows[~np.isin(t, held) & ~np.isin(t, val_trials)])
        folds.append(Fold(f"trial-fold{i}", _idx(train), _idx(val), _idx(test), "trial", False))
    return folds


def _loso_folds(subject: np.ndarray, rng: np.random.Generator, val_fraction: float) -> list[Fold]:
    subjects = np.unique(subject)
    check_nonempty("subject", subjects.tolist(), "subjects", at_least=2, why="protocol 'loso'")
    folds = []
    for s in subjects:
        rest = rng.permutation(subjects[subjects != s])
        val_subjects = rest[: _n_val(rest.size, val_fraction)]
        test = np.flatnonzero(subject == s)
        val = np.flatnonzero(np.isin(subject, val_subjects))
        train = np.flatnonzero((subject != s) & ~np.isin(subject, val_subjects))
        folds.append(Fold(f"loso-s{int(s):02d}", _idx([train]), _idx([val]), _idx([test]), "loso", False))
    return folds


def make_folds(
    subject: ArrayLike,
    trial: ArrayLike,
    labels: ArrayLike,
    protocol: Protocol,
    *,
    k: int = 5,
    seed: int = 0,
    val_fraction: float = 0.1,
) -> list[Fold]:
    """Folds over N windows described by (N,) ``subject``, ``trial`` (per subject) and ``labels``.

    ``k``: folds for ``segment`` and ``trial`` (>= 2). ``val_fraction`` in [0, 1): share of each
    fold's training groups (windows / each subject's trials / subjects) moved to validation,
    rounded, at least one group when > 0. The same arguments always give the same folds.
    Every window is in exactly one of train/val/test of each fold.
    """
    check_option("protocol", protocol, PROTOCOLS)
    subject = np.asarray(subject)
    trial = np.asarray(trial)
    labels = np.asarray(labels)
    for name, arr in (("subject", subject), ("trial", trial), ("labels", labels)):
        check_array(name, arr, shape=("N",), what="a 1-D array (one value per window)")
    check_same_length(("subject", "trial", "labels"), (subject, trial, labels))
    check_nonempty("subject", subject, "window")
    k = check_int("k", k, low=2)
    check_number("val_fraction", val_fraction, low=0, high=1, high_open=True)

    rng = np.random.default_rng(seed)
    if protocol == "segment":
        warnings.warn(_SEGMENT_CAVEAT, UserWarning, stacklevel=2)
        return _segment_folds(subject, int(k), rng, val_fraction)
    if protocol == "trial":
        return _trial_folds(subject, trial, labels, int(k), seed, rng, val_fraction)
    return _loso_folds(subject, rng, val_fraction)
