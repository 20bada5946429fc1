"""Self-assessment ratings (1-9) to class indices for every label scheme in ``spec.CLASS_SCHEMES``.

DEAP ratings are continuous (participants clicked on a scale), so some are not integers
(e.g. 4.04, 6.96). Every rule below is therefore a half-open interval, decided on the raw value
without rounding:

- ``deap4`` (paper eq. 5): high arousal iff ``a >= 5``, high valence iff ``v >= 5``; classes in
  ``CLASS_SCHEMES["deap4"]`` order ``HAHV, HALV, LAHV, LALV``.
- ``deap3-valence`` / ``deap3-arousal``: the paper's low 1-3 / medium 4-6 / high 7-9, extended to
  the reals as ``low < 4 <= medium < 7 <= high``; so 3.99 is low, 4.0 medium, 6.99 medium,
  7.0 high (an integer rating lands in the paper's bin).
- ``deap2-valence`` / ``deap2-arousal``: ``high`` iff the rating ``>= 5``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..runtime.check import check_array, check_option, check_same_length
from ..runtime.spec import CLASS_SCHEMES

__all__ = ["RATING_RANGE", "HIGH_THRESHOLD", "THREE_CLASS_EDGES", "ratings_to_labels"]

#: The closed range of DEAP's self-assessment scales.
RATING_RANGE: tuple[float, float] = (1.0, 9.0)
#: A rating at or above this is "high" in the two- and four-class schemes.
HIGH_THRESHOLD: float = 5.0
#: Lower edges of "medium" and "high" in the three-class schemes (half-open bins).
THREE_CLASS_EDGES: tuple[float, float] = (4.0, 7.0)


def _check_ratings(name: str, values: ArrayLike) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    lo, hi = RATING_RANGE
    return check_array(name, arr, shape=("N",), finite=True, low=lo, high=hi, what="a 1-D array of ratings")


def ratings_to_labels(valence: ArrayLike, arousal: ArrayLike, scheme: str) -> np.ndarray:
    """Class index of each (valence, arousal) pair under ``scheme``.

    valence, arousal: (N,) ratings in [1, 9] (both are always checked, even when the scheme
    uses only one of them, so a bad row cannot hide). Returns (N,) int64 indices into
    ``CLASS_SCHEMES[scheme]``.
    """
    check_option("scheme", scheme, tuple(CLASS_SCHEMES))
    v = _check_ratings("valence", valence)
    a = _check_ratings("arousal", arousal)
    check_same_length(("valence", "arousal"), (v, a))
    if scheme == "deap4":
        # HAHV=0, HALV=1, LAHV=2, LALV=3: low arousal adds 2, low valence adds 1.
        return 2 * (a < HIGH_THRESHOLD).astype(np.int64) + (v < HIGH_THRESHOLD).astype(np.int64)
    rating = v if scheme.endswith("valence") else a
    if scheme.startswith("deap3"):
        return np.searchsorted(np.asarray(THREE_CLASS_EDGES), rating, side="right").astype(np.int64)
    return (rating >= HIGH_THRESHOLD).astype(np.int64)
