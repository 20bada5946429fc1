"""One tiny synthetic dataset shared by the demo tests (2 subjects x 4 trials of 3 + 6 s).

The tests read it back with plain ``pickle``/``csv``/OpenCV/MNE, not with milmer's readers.
"""

from __future__ import annotations

import csv
import pickle

import pytest

TINY = dict(n_subjects=2, n_trials=4, trial_s=6.0, baseline_s=3.0, video_fps=25.0, recording_s=20.0, seed=0)


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    from milmer.synthetic import make_demo_data

    return make_demo_data(tmp_path_factory.mktemp("demo") / "out", **TINY)


@pytest.fixture(scope="session")
def dats(demo) -> dict[int, dict]:
    """Subject -> the ``.dat`` dict, read as DEAP's instructions say (plain pickle, latin1)."""
    out = {}
    for subject, path in enumerate(demo.dat_files, start=1):
        with open(path, "rb") as f:
            out[subject] = pickle.load(f, encoding="latin1")
    return out


@pytest.fixture(scope="session")
def csv_rows(demo) -> list[dict[str, str]]:
    with open(demo.ratings_csv, newline="") as f:
        return list(csv.DictReader(f))
