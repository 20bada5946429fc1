from __future__ import annotations

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.training.splits import LEAKY_PROTOCOLS, make_folds, protocol_caveat

# 3 subjects x 10 trials x 5 windows; trial t has label (t - 1) % 4 -> per subject classes 3/3/2/2.
SUBJECT = np.repeat([1, 2, 3], 50)
TRIAL = np.tile(np.repeat(np.arange(1, 11), 5), 3)
LABELS = (TRIAL - 1) % 4


def groups(fold, part, key):
    idx = getattr(fold, part)
    if key == "trial":
        return set(zip(SUBJECT[idx].tolist(), TRIAL[idx].tolist()))
    return set(SUBJECT[idx].tolist())


def folds(protocol, **kw):
    if protocol == "segment":
        with pytest.warns(UserWarning, match="INFLATED"):
            return make_folds(SUBJECT, TRIAL, LABELS, protocol, **kw)
    return make_folds(SUBJECT, TRIAL, LABELS, protocol, **kw)


@pytest.mark.parametrize("protocol", ["segment", "trial", "loso"])
def test_every_window_in_exactly_one_part_and_tested_once(protocol):
    fs = folds(protocol)
    for f in fs:
        parts = np.concatenate([f.train, f.val, f.test])
        assert np.array_equal(np.sort(parts), np.arange(SUBJECT.size)), f.name
        assert f.train.dtype == np.int64
    assert np.array_equal(np.sort(np.concatenate([f.test for f in fs])), np.arange(SUBJECT.size))


def test_trial_protocol_never_shares_a_trial():
    for f in folds("trial"):
        tr, va, te = (groups(f, p, "trial") for p in ("train", "val", "test"))
        assert not (tr & te) and not (tr & va) and not (va & te), f.name
        assert f.leaky is False
    sizes = [(f.name, f.train.size, f.val.size, f.test.size) for f in folds("trial")]
    assert sizes == [(f"trial-fold{i}", 105, 15, 30) for i in range(5)]
    # Each subject contributes 2 test trials and 1 validation trial to every fold.
    f0 = folds("trial")[0]
    assert sorted(groups(f0, "test", "trial")) == [(1, 3), (1, 9), (2, 3), (2, 9), (3, 3), (3, 9)]
    assert sorted(s for s, _ in groups(f0, "val", "trial")) == [1, 2, 3]


def test_trial_protocol_is_stratified_when_feasible():
    # k=3: the classes with 3 trials per subject appear once per subject in every test fold.
    fs = folds("trial", k=3)
    assert [f.test.size for f in fs] == [60, 45, 45]
    for f in fs:
        counts = np.bincount(LABELS[f.test], minlength=4)
        assert counts[0] == counts[1] == 15, (f.name, counts)


def test_loso_never_shares_a_subject():
    fs = folds("loso")
    assert [f.name for f in fs] == ["loso-s01", "loso-s02", "loso-s03"]
    for f in fs:
        tr, va, te = (groups(f, p, "subject") for p in ("train", "val", "test"))
        assert len(te) == 1 and len(va) == 1 and len(tr) == 1
        assert not (tr & te) and not (tr & va) and not (va & te)
    assert [sorted(groups(f, "val", "subject")) for f in fs] == [[2], [1], [1]]


def test_segment_protocol_really_leaks_trials():
    fs = folds("segment")
    assert [(f.train.size, f.val.size, f.test.size) for f in fs] == [(108, 12, 30)] * 5
    shared = [len(groups(f, "train", "trial") & groups(f, "test", "trial")) for f in fs]
    assert shared == [19, 20, 20, 23, 21]  # of 30 trials: most test trials were also trained on
    assert all(f.leaky for f in fs)
    assert LEAKY_PROTOCOLS == {"segment"}
    assert "INFLATED" in protocol_caveat("segment")
    assert protocol_caveat("trial") is None and protocol_caveat("loso") is None


@pytest.mark.parametrize("protocol", ["segment", "trial", "loso"])
def test_folds_are_reproducible_and_seed_dependent(protocol):
    a, b, c = folds(protocol, seed=3), folds(protocol, seed=3), folds(protocol, seed=5)
    assert all(np.array_equal(x.test, y.test) and np.array_equal(x.val, y.val) for x, y in zip(a, b))
    assert any(not np.array_equal(x.val, y.val) for x, y in zip(a, c))


def test_no_validation_when_fraction_is_zero():
    assert all(f.val.size == 0 for f in folds("trial", val_fraction=0.0))
    assert all(f.val.size == 0 for f in folds("loso", val_fraction=0.0))


def test_bad_arguments():
    with pytest.raises(MilmerInputError, match="'protocol': expected one of 'segment', 'trial', 'loso', got 'kfold'"):
        make_folds(SUBJECT, TRIAL, LABELS, "kfold")
    with pytest.raises(MilmerInputError, match="'k': expected an integer >= 2, got 1"):
        make_folds(SUBJECT, TRIAL, LABELS, "trial", k=1)
    with pytest.raises(MilmerInputError, match=r"'val_fraction': expected a number in \[0, 1\), got 1.0"):
        make_folds(SUBJECT, TRIAL, LABELS, "trial", val_fraction=1.0)
    with pytest.raises(MilmerInputError, match=r"'subject'/'trial'/'labels': expected the same length, got 149, 150 and 150"):
        make_folds(SUBJECT[:-1], TRIAL, LABELS, "trial")
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'k': expected at most the windows of subject 1 \(protocol 'segment'\) = 50, got 51\.$"):
        make_folds(SUBJECT, TRIAL, LABELS, "segment", k=51)
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'k': expected at most the trials of subject 1 \(protocol 'trial'\) = 10, got 11\.$"):
        make_folds(SUBJECT, TRIAL, LABELS, "trial", k=11)
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'subject': expected at least 2 subjects \(protocol 'loso'\), got 1: \[1\]\.$"):
        make_folds(SUBJECT[:50], TRIAL[:50], LABELS[:50], "loso")
    mixed = LABELS.copy()
    mixed[0] = 3
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'labels\[subject 1, trial 1\]': expected one label per trial \(protocol 'trial'\), got \[0, 3\]\.$"):
        make_folds(SUBJECT, TRIAL, mixed, "trial")
