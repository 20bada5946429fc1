"""Ratings: balanced DEAP-4 classes, DEAP-like values, the threshold at exactly 5."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from milmer.synthetic.ratings import deap4_class, draw_class_ratings, draw_ratings, rating_drive


@pytest.mark.parametrize(("n_trials", "counts"), [(40, [10, 10, 10, 10]), (6, [1, 1, 2, 2])])
def test_classes_balanced(n_trials, counts):
    r = draw_ratings(np.random.default_rng(3), n_trials)
    assert sorted(Counter(r.classes).values()) == counts
    assert r.labels.shape == (n_trials, 4)


def test_ratings_look_like_deap():
    r = draw_ratings(np.random.default_rng(0), 40)
    for values in (r.valence, r.arousal, r.dominance, r.liking):
        assert values.min() >= 1 and values.max() <= 9
        assert np.array_equal(values, np.round(values, 2))
    whole = np.mean(r.valence == np.round(r.valence))
    assert 0.5 < whole < 0.95  # mostly whole numbers, some like 6.06
    assert set(r.familiarity) <= {1, 2, 3, 4, 5}
    # Dominance and liking follow valence loosely, as in DEAP.
    assert np.corrcoef(r.valence, r.liking)[0, 1] > 0.5


def test_exactly_five_is_high():
    assert deap4_class(5.0, 5.0) == "HAHV"
    assert deap4_class(4.99, 5.0) == "HALV"
    assert deap4_class(5.0, 4.99) == "LAHV"
    assert deap4_class(1.0, 1.0) == "LALV"


@pytest.mark.parametrize("label", ["HAHV", "HALV", "LAHV", "LALV"])
def test_class_ratings_fall_in_their_class(label):
    rng = np.random.default_rng(1)
    assert all(deap4_class(*draw_class_ratings(rng, label)) == label for _ in range(50))


def test_rating_drive():
    assert [rating_drive(x) for x in (1.0, 4.99, 5.0, 9.0)] == pytest.approx([-1.0, -0.601, 0.6, 1.0])
