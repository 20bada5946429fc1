"""Index a DEAP folder: which ``.dat`` row belongs to which face video.

DEAP stores EEG and video in different orders. ``data_preprocessed_python/sXX.dat`` holds the 40
trials in EXPERIMENT order (the fixed order of the 40 music videos), while
``face_video/sXX/sXX_trialYY.avi`` is numbered in PRESENTATION order (the random order each
participant watched them in). ``participant_ratings.csv`` links the two: the video
``sXX_trialYY`` shows the trial whose ``.dat`` row is ``Experiment_id - 1`` in the CSV row with
``Participant_id == XX`` and ``Trial == YY``. Pairing ``sXX_trialYY`` with row ``YY - 1`` would
silently give every video the wrong EEG and the wrong label.

Face video exists for participants 1-22 only and some of their trials have none; those are
skipped and reported (:attr:`DeapIndex.skipped`, and a log warning). The paper also drops s11
(its videos are incomplete); pass ``exclude_subjects=(11,)`` to follow it. The default excludes
nothing, so the index reflects the data on disk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..runtime.check import check_int, check_nonempty, check_path_exists, check_subset
from ..runtime.eeg.deap import RATINGS_CSV, read_ratings_csv

__all__ = [
    "DAT_DIR",
    "VIDEO_DIR",
    "RATINGS_CSV",
    "PAPER_EXCLUDED_SUBJECTS",
    "TrialRecord",
    "Skipped",
    "DeapIndex",
    "index_deap",
]

log = logging.getLogger(__name__)

DAT_DIR = "data_preprocessed_python"
VIDEO_DIR = "face_video"
#: Subjects the Milmer paper left out (s11: incomplete face video). Not applied by default.
PAPER_EXCLUDED_SUBJECTS: tuple[int, ...] = (11,)


@dataclass(frozen=True)
class TrialRecord:
    """One DEAP trial with both modalities.

    subject:       participant number (1-32)
    trial:         presentation order number, as in the video's file name (1-40)
    experiment_id: experiment (music video) number, 1-40
    dat_path:      ``data_preprocessed_python/sXX.dat``
    row:           this trial's row in the ``.dat`` arrays (``experiment_id - 1``)
    video_path:    ``face_video/sXX/sXX_trialYY.avi``
    ratings:       (valence, arousal, dominance, liking) from the CSV, 1-9
    """

    subject: int
    trial: int
    experiment_id: int
    dat_path: Path
    row: int
    video_path: Path
    ratings: tuple[float, float, float, float]

    @property
    def name(self) -> str:
        return f"s{self.subject:02d}_trial{self.trial:02d}"


@dataclass(frozen=True)
class Skipped:
    """A subject (``trial`` None) or trial left out of the index, and why."""

    subject: int
    trial: int | None
    reason: str

    def __str__(self) -> str:
        where = f"s{self.subject:02d}" if self.trial is None else f"s{self.subject:02d}_trial{self.trial:02d}"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class DeapIndex:
    """The usable trials (sorted by subject, then presentation order) and what was skipped.

    Iterating, ``len`` and indexing act on :attr:`records`, so it can stand in for the list.
    """

    root: Path
    records: list[TrialRecord]
    skipped: list[Skipped] = field(default_factory=list)

    def __iter__(self) -> Iterator[TrialRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> TrialRecord:
        return self.records[i]

    @property
    def subjects(self) -> list[int]:
        return sorted({r.subject for r in self.records})


def _subject_ids(name: str, values: Iterable[int] | None) -> set[int] | None:
    if values is None:
        return None
    return {check_int(f"{name}[{i}]", v, low=1) for i, v in enumerate(values)}


def _read_ratings_csv(path: Path) -> dict[int, dict[int, tuple[int, tuple[float, float, float, float]]]]:
    """{participant: {presentation trial: (experiment_id, (v, a, d, l))}} from the CSV (the
    runtime's reader: ``milmer-infer --trial`` maps trials the same way)."""
    return read_ratings_csv(path)


def index_deap(
    root: str | os.PathLike[str],
    *,
    subjects: Iterable[int] | None = None,
    exclude_subjects: Iterable[int] = (),
    param: str = "root",
) -> DeapIndex:
    """Pair every face video under ``root`` with its EEG row and ratings.

    root:             a DEAP folder holding ``data_preprocessed_python/``, ``face_video/`` and
                      ``participant_ratings.csv``
    subjects:         participants to index (default: every ``sXX.dat`` present); a named
                      subject without a ``.dat`` file is an error
    exclude_subjects: participants to leave out (the paper: ``PAPER_EXCLUDED_SUBJECTS``)
    param:            the name errors give ``root`` (a caller's option, e.g. ``'data_root'``)

    Subjects without a video folder or CSV rows, and trials without a video file, are skipped
    and listed in the result's ``skipped`` (each also logged as a warning).
    """
    root = Path(root)
    layout = f"expected the DEAP layout ({DAT_DIR}/sXX.dat, {VIDEO_DIR}/sXX/sXX_trialYY.avi, {RATINGS_CSV})"
    check_path_exists(param, root, "dir", hint=layout)
    dat_dir, video_dir, csv_path = root / DAT_DIR, root / VIDEO_DIR, root / RATINGS_CSV
    check_path_exists(param, dat_dir, "dir", hint=layout)
    check_path_exists(param, csv_path, hint="it maps the videos' presentation order to the .dat rows' experiment order and is required")
    wanted = _subject_ids("subjects", subjects)
    excluded = _subject_ids("exclude_subjects", exclude_subjects) or set()

    available = {}
    for p in dat_dir.glob("s*.dat"):
        digits = p.stem[1:]
        if digits.isdigit():
            available[int(digits)] = p
    if wanted is None:
        chosen = sorted(set(available) - excluded)
    else:
        check_subset("subjects", sorted(wanted), sorted(available), among=f"those with a {DAT_DIR}/sXX.dat", what="subjects")
        chosen = sorted(wanted - excluded)

    table = _read_ratings_csv(csv_path)
    records: list[TrialRecord] = []
    skipped: list[Skipped] = []
    for subject in chosen:
        folder = video_dir / f"s{subject:02d}"
        if not folder.is_dir():
            skipped.append(Skipped(subject, None, f"no face video folder {VIDEO_DIR}/s{subject:02d}/"))
            continue
        if subject not in table:
            skipped.append(Skipped(subject, None, f"participant {subject} has no rows in {RATINGS_CSV}"))
            continue
        for trial, (eid, ratings) in sorted(table[subject].items()):
            video = folder / f"s{subject:02d}_trial{trial:02d}.avi"
            if not video.is_file():
                skipped.append(Skipped(subject, trial, f"video file missing: {VIDEO_DIR}/s{subject:02d}/{video.name}"))
                continue
            records.append(
                TrialRecord(subject, trial, eid, available[subject], eid - 1, video, ratings)
            )
    for item in skipped:
        log.warning("DEAP index: skipped %s", item)
    check_nonempty(
        param, records, "usable trial (EEG + face video)",
        hint=f"none under {str(root)!r} for subjects {chosen}; skipped: {'; '.join(map(str, skipped)) or 'none'}",
    )
    return DeapIndex(root, records, skipped)
