"""DEAP's two trial orders, for scoring a DEAP trial directly (``milmer-infer VIDEO sXX.dat --trial N``).

``data_preprocessed_python/sXX.dat`` holds the 40 trials in EXPERIMENT order (the fixed order of
the 40 music videos); ``face_video/sXX/sXX_trialYY.avi`` is numbered in PRESENTATION order.
``participant_ratings.csv`` links them: trial ``YY`` of participant ``XX`` is the ``.dat`` row
``Experiment_id - 1`` of the CSV row with ``Participant_id == XX`` and ``Trial == YY``.
Training's DEAP index (``training/deap.py``) reads the CSV with :func:`read_ratings_csv`.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..check import MilmerInputError, check_int, check_option, requires_error

__all__ = ["RATINGS_CSV", "RatingsTable", "read_ratings_csv", "DeapTrial", "find_ratings_csv", "deap_trial"]

RATINGS_CSV = "participant_ratings.csv"
_CSV_COLUMNS = ("Participant_id", "Trial", "Experiment_id", "Valence", "Arousal", "Dominance", "Liking")

#: {participant: {presentation trial: (experiment_id, (valence, arousal, dominance, liking))}}
RatingsTable = dict[int, dict[int, tuple[int, tuple[float, float, float, float]]]]


def read_ratings_csv(path: str | os.PathLike[str]) -> RatingsTable:
    """Read DEAP's ``participant_ratings.csv`` (columns :data:`_CSV_COLUMNS`), checked."""
    path = Path(path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in _CSV_COLUMNS if c not in header]
        if missing:
            raise MilmerInputError(
                f"Invalid ratings file {str(path)!r}: missing column(s) {', '.join(missing)}; "
                f"expected {', '.join(_CSV_COLUMNS)}, got {', '.join(header) or '(no header)'}."
            )
        reader.fieldnames = header
        table: RatingsTable = {}
        for line, row in enumerate(reader, start=2):
            try:
                subject, trial, eid = (int(row[c]) for c in _CSV_COLUMNS[:3])
                v, a, d, lk = (float(row[c]) for c in _CSV_COLUMNS[3:])
            except (TypeError, ValueError):
                raise MilmerInputError(
                    f"Invalid ratings file {str(path)!r}: line {line} is not numeric: {dict(row)!r}."
                ) from None
            if not 1 <= eid <= 40 or not 1 <= trial <= 40:
                raise MilmerInputError(
                    f"Invalid ratings file {str(path)!r}: line {line}: expected Trial and Experiment_id "
                    f"in 1-40, got Trial={trial}, Experiment_id={eid}."
                )
            per_subject = table.setdefault(subject, {})
            if trial in per_subject:
                raise MilmerInputError(
                    f"Invalid ratings file {str(path)!r}: line {line}: participant {subject} trial {trial} "
                    "appears twice."
                )
            per_subject[trial] = (eid, (v, a, d, lk))
    return table


@dataclass(frozen=True)
class DeapTrial:
    """Which ``.dat`` row holds presentation trial ``trial`` of participant ``subject``."""

    subject: int
    trial: int
    experiment_id: int
    row: int
    ratings: tuple[float, float, float, float]
    ratings_csv: Path


def find_ratings_csv(dat_path: str | os.PathLike[str]) -> Path | None:
    """``participant_ratings.csv`` next to the ``.dat`` file or one folder up (DEAP's layout:
    ``<root>/data_preprocessed_python/sXX.dat`` and ``<root>/participant_ratings.csv``)."""
    dat = Path(dat_path).resolve()
    for folder in (dat.parent, dat.parent.parent):
        if (folder / RATINGS_CSV).is_file():
            return folder / RATINGS_CSV
    return None


#: DEAP's per-participant file name, ``sXX.dat`` (XX: the participant).
_DAT_NAME = re.compile(r"s(\d+)\.dat", flags=re.IGNORECASE)


def _trial_count(dat_path: str | os.PathLike[str], name: str) -> int:
    """Trials of this participant in the ratings CSV next to the file, else DEAP's 40."""
    m = _DAT_NAME.fullmatch(name)
    csv_path = find_ratings_csv(dat_path)
    if m is None or csv_path is None:
        return 40
    try:
        return len(read_ratings_csv(csv_path).get(int(m.group(1)), {})) or 40
    except MilmerInputError:
        return 40


def deap_trial(dat_path: str | os.PathLike[str], trial: int | None) -> DeapTrial:
    """Map ``--trial`` (presentation order, as in ``sXX_trialYY.avi``) to the ``.dat`` row."""
    name = Path(dat_path).name
    if trial is None:
        n = _trial_count(dat_path, name)
        check_int(
            "--trial", trial, low=1, high=n, hint=f"{name!r} is a DEAP file of {n} trials: say which one with "
            "--trial N (presentation order: the N of the face video sXX_trialN.avi)",
        )
    check_int("--trial", trial, low=1, high=40)
    m = _DAT_NAME.fullmatch(name)
    if m is None:
        raise MilmerInputError(
            f"Invalid value for 'eeg': DEAP files are named sXX.dat (XX: the participant), got {name!r}."
        )
    subject = int(m.group(1))
    csv_path = find_ratings_csv(dat_path)
    if csv_path is None:
        raise requires_error(
            "--trial", trial, f"{RATINGS_CSV} next to {name!r} or one folder up (it maps the videos' presentation "
            "order to the .dat rows' experiment order)", "none there",
            hint=f"keep DEAP's layout: <root>/data_preprocessed_python/{name}, <root>/{RATINGS_CSV}",
        )
    table = read_ratings_csv(csv_path)
    check_option("--trial", trial, sorted(table.get(subject, {})), among=f"the trials of participant {subject} in {str(csv_path)!r}")
    eid, ratings = table[subject][trial]
    return DeapTrial(subject, trial, eid, eid - 1, ratings, csv_path)
