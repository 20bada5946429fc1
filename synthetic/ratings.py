"""Self-assessment ratings for the synthetic DEAP-format data.

DEAP participants rated valence, arousal, dominance and liking on a continuous 1-9 scale
(mostly whole numbers, some not, e.g. 6.06) and familiarity on a 1-5 integer scale. Here the
ratings are drawn so that the four DEAP-4 classes (arousal >= 5 / valence >= 5) are balanced
within each subject; the synthetic EEG and face effects are then driven by the ratings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from milmer.runtime.spec import CLASS_SCHEMES

__all__ = ["HIGH_THRESHOLD", "Ratings", "deap4_class", "draw_class_ratings", "draw_ratings", "rating_drive"]

#: A rating >= this is "high" (DEAP-4 splits valence and arousal at 5, inclusive).
HIGH_THRESHOLD = 5.0

# Class index -> (high arousal, high valence), in the order of CLASS_SCHEMES["deap4"].
_DEAP4_HIGH: dict[str, tuple[bool, bool]] = {
    "HAHV": (True, True),
    "HALV": (True, False),
    "LAHV": (False, True),
    "LALV": (False, False),
}
assert tuple(_DEAP4_HIGH) == CLASS_SCHEMES["deap4"]


@dataclass(frozen=True)
class Ratings:
    """One subject's ratings, indexed by experiment order (row i = Experiment_id i + 1).

    valence, arousal, dominance, liking: (n_trials,) float64 in [1, 9]
    familiarity:                          (n_trials,) int64 in [1, 5]
    """

    valence: np.ndarray
    arousal: np.ndarray
    dominance: np.ndarray
    liking: np.ndarray
    familiarity: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        """(n_trials, 4) float64: valence, arousal, dominance, liking (the ``.dat`` layout)."""
        return np.stack([self.valence, self.arousal, self.dominance, self.liking], axis=1)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(deap4_class(v, a) for v, a in zip(self.valence, self.arousal))


def deap4_class(valence: float, arousal: float) -> str:
    """DEAP-4 class name of one (valence, arousal) rating pair; 5 counts as high."""
    high_a, high_v = arousal >= HIGH_THRESHOLD, valence >= HIGH_THRESHOLD
    return ("H" if high_a else "L") + "A" + ("H" if high_v else "L") + "V"


def rating_drive(rating: float) -> float:
    """Signed strength in [-1, 1] with which a rating drives the synthetic signals.

    The sign is the class (high = +); the magnitude grows from 0.6 at the threshold to 1 at the
    scale's end, so ratings near 5 give weaker, harder-to-classify effects.
    """
    if rating >= HIGH_THRESHOLD:
        return 0.6 + 0.4 * (rating - HIGH_THRESHOLD) / (9.0 - HIGH_THRESHOLD)
    return -(0.6 + 0.4 * (HIGH_THRESHOLD - rating) / (HIGH_THRESHOLD - 1.0))


def _draw_side(rng: np.random.Generator, high: bool) -> float:
    """A 1-9 rating on one side of the threshold; ~70 % whole numbers like DEAP."""
    if rng.random() < 0.7:
        return float(rng.integers(5, 10) if high else rng.integers(1, 5))
    value = rng.uniform(5.0, 9.0) if high else rng.uniform(1.0, 4.99)
    return float(np.round(value, 2))


def draw_class_ratings(rng: np.random.Generator, label: str) -> tuple[float, float]:
    """(valence, arousal) ratings that fall in DEAP-4 class ``label`` (e.g. ``"HALV"``)."""
    high_a, high_v = _DEAP4_HIGH[label]
    valence = _draw_side(rng, high_v)
    return valence, _draw_side(rng, high_a)


def draw_ratings(rng: np.random.Generator, n_trials: int) -> Ratings:
    """Ratings for ``n_trials`` experiments with DEAP-4 class counts differing by at most one.

    Classes are assigned in a random order (a shuffled repeat of the four), so which class gets
    the extra trial when ``n_trials`` is not a multiple of 4 is random too.
    """
    names = [list(_DEAP4_HIGH)[i] for i in rng.permutation(4)]
    classes = [names[i % 4] for i in rng.permutation(n_trials)]
    valence = np.empty(n_trials)
    arousal = np.empty(n_trials)
    for i, name in enumerate(classes):
        valence[i], arousal[i] = draw_class_ratings(rng, name)
    # Dominance and liking follow valence loosely, as in DEAP's rating correlations.
    dominance = np.clip(np.round(0.5 * valence + 2.5 + rng.normal(0, 1.2, n_trials), 2), 1, 9)
    liking = np.clip(np.round(0.7 * valence + 1.5 + rng.normal(0, 1.2, n_trials), 2), 1, 9)
    familiarity = rng.integers(1, 6, n_trials)
    return Ratings(valence, arousal, dominance, liking, familiarity)
