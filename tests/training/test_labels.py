from __future__ import annotations

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.spec import CLASS_SCHEMES
from milmer.training.labels import ratings_to_labels


def names(valence, arousal, scheme):
    return [CLASS_SCHEMES[scheme][i] for i in ratings_to_labels(valence, arousal, scheme)]


def test_deap4_quadrants_and_the_boundary_at_five():
    v = [9.0, 1.0, 9.0, 1.0, 5.0, 4.99, 5.0, 4.99]
    a = [9.0, 9.0, 1.0, 1.0, 5.0, 5.0, 4.99, 4.99]
    assert names(v, a, "deap4") == ["HAHV", "HALV", "LAHV", "LALV", "HAHV", "HALV", "LAHV", "LALV"]
    out = ratings_to_labels(v, a, "deap4")
    assert out.dtype == np.int64
    assert out.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]


@pytest.mark.parametrize("dimension", ["valence", "arousal"])
def test_three_class_half_open_bins(dimension):
    values = [1.0, 3.0, 3.99, 4.0, 5.5, 6.0, 6.99, 7.0, 9.0]
    other = [5.0] * len(values)
    v, a = (values, other) if dimension == "valence" else (other, values)
    got = ratings_to_labels(v, a, f"deap3-{dimension}").tolist()
    assert got == [0, 0, 0, 1, 1, 1, 1, 2, 2]


@pytest.mark.parametrize("dimension", ["valence", "arousal"])
def test_two_class_high_from_five(dimension):
    values = [1.0, 4.99, 5.0, 9.0]
    other = [1.0] * 4
    v, a = (values, other) if dimension == "valence" else (other, values)
    assert names(v, a, f"deap2-{dimension}") == ["low", "low", "high", "high"]


def test_schemes_use_only_their_dimension():
    # valence high/arousal low: the valence schemes say high, the arousal ones low.
    assert ratings_to_labels([8.0], [2.0], "deap2-valence").tolist() == [1]
    assert ratings_to_labels([8.0], [2.0], "deap2-arousal").tolist() == [0]
    assert ratings_to_labels([8.0], [2.0], "deap3-valence").tolist() == [2]
    assert ratings_to_labels([8.0], [2.0], "deap3-arousal").tolist() == [0]


@pytest.mark.parametrize("bad", [0.99, 9.01, float("nan"), float("inf")])
def test_out_of_range_ratings_are_rejected(bad):
    with pytest.raises(MilmerInputError, match=r"'arousal': expected (values in \[1, 9\], got values from|finite numbers, got NaN or Inf)"):
        ratings_to_labels([5.0, 5.0], [5.0, bad], "deap4")


def test_unknown_scheme_and_length_mismatch():
    with pytest.raises(MilmerInputError, match=r"Invalid value for 'scheme': expected one of 'deap4'.*got 'deap5'"):
        ratings_to_labels([5.0], [5.0], "deap5")
    with pytest.raises(MilmerInputError, match="same length, got 2 and 1"):
        ratings_to_labels([5.0, 6.0], [5.0], "deap4")
    with pytest.raises(MilmerInputError, match=r"'valence': expected a 1-D array of ratings, got float64 \(1, 2\)"):
        ratings_to_labels([[5.0, 6.0]], [5.0, 6.0], "deap4")
