from __future__ import annotations

import logging

import numpy as np

import pytest

from milmer.runtime.check import MilmerInputError
from milmer.training.deap import PAPER_EXCLUDED_SUBJECTS, index_deap

HEADER = "Participant_id,Trial,Experiment_id,Start_time,Valence,Arousal,Dominance,Liking,Familiarity\n"


def write_layout(root, table, *, videos, dats):
    """A DEAP-shaped folder whose data files are empty (indexing never opens them).

    table: {subject: [(trial, experiment_id, valence, arousal), ...]}
    videos: {subject: [trials with a video file]} (a subject absent here has no folder)
    """
    (root / "data_preprocessed_python").mkdir(parents=True)
    for s in dats:
        (root / "data_preprocessed_python" / f"s{s:02d}.dat").write_bytes(b"")
    lines = [HEADER]
    for s, rows in table.items():
        for trial, eid, v, a in rows:
            lines.append(f"{s},{trial},{eid},0,{v},{a},5.0,6.5,3\n")
    (root / "participant_ratings.csv").write_text("".join(lines))
    for s, trials in videos.items():
        folder = root / "face_video" / f"s{s:02d}"
        folder.mkdir(parents=True)
        for t in trials:
            (folder / f"s{s:02d}_trial{t:02d}.avi").write_bytes(b"")
    return root


@pytest.fixture
def layout(tmp_path):
    table = {
        1: [(1, 3, 7.0, 2.0), (2, 1, 1.5, 8.0), (3, 2, 5.0, 5.0)],
        2: [(1, 2, 4.0, 4.0), (2, 3, 9.0, 9.0), (3, 1, 2.0, 3.0)],
        3: [(1, 1, 5.0, 5.0)],
    }
    return write_layout(tmp_path, table, videos={1: [1, 2, 3], 2: [1, 3]}, dats=[1, 2, 3])


def test_rows_come_from_experiment_id_not_presentation_order(layout):
    index = index_deap(layout)
    got = [(r.subject, r.trial, r.experiment_id, r.row, r.video_path.name, r.ratings[:2]) for r in index]
    assert got == [
        (1, 1, 3, 2, "s01_trial01.avi", (7.0, 2.0)),
        (1, 2, 1, 0, "s01_trial02.avi", (1.5, 8.0)),
        (1, 3, 2, 1, "s01_trial03.avi", (5.0, 5.0)),
        (2, 1, 2, 1, "s02_trial01.avi", (4.0, 4.0)),
        (2, 3, 1, 0, "s02_trial03.avi", (2.0, 3.0)),
    ]
    assert index[0].dat_path == layout / "data_preprocessed_python" / "s01.dat"
    assert index[0].ratings == (7.0, 2.0, 5.0, 6.5)
    assert len(index) == 5 and index.subjects == [1, 2]


def test_skipped_subjects_and_videos_are_reported(layout, caplog):
    with caplog.at_level(logging.WARNING, logger="milmer.training.deap"):
        index = index_deap(layout)
    assert [str(s) for s in index.skipped] == [
        "s02_trial02: video file missing: face_video/s02/s02_trial02.avi",
        "s03: no face video folder face_video/s03/",
    ]
    assert [(s.subject, s.trial) for s in index.skipped] == [(2, 2), (3, None)]
    assert "skipped s03: no face video folder" in caplog.text


def test_subject_selection_and_exclusion(layout):
    assert index_deap(layout, subjects=[2]).subjects == [2]
    assert index_deap(layout, exclude_subjects=[1]).subjects == [2]
    assert PAPER_EXCLUDED_SUBJECTS == (11,)
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'subjects': expected subjects among those with a data_preprocessed_python/sXX\.dat \(1, 2, 3\), got 7, which is not\.$"):
        index_deap(layout, subjects=[1, 7])
    with pytest.raises(MilmerInputError, match=r"'subjects\[0\]': expected an integer >= 1, got 0"):
        index_deap(layout, subjects=[0])
    with pytest.raises(MilmerInputError, match=r"expected at least one usable trial \(EEG \+ face video\), got none; none under .* skipped: s03: no face video folder"):
        index_deap(layout, subjects=[3])


def test_subject_without_csv_rows_is_skipped(tmp_path):
    root = write_layout(tmp_path, {1: [(1, 1, 5.0, 5.0)]}, videos={1: [1], 2: [1]}, dats=[1, 2])
    index = index_deap(root)
    assert [str(s) for s in index.skipped] == ["s02: participant 2 has no rows in participant_ratings.csv"]


def test_missing_layout_pieces_are_clear_errors(tmp_path):
    with pytest.raises(MilmerInputError, match="directory not found: .*data_preprocessed_python'; expected the DEAP layout"):
        index_deap(tmp_path)
    (tmp_path / "data_preprocessed_python").mkdir()
    with pytest.raises(MilmerInputError, match="file not found: .*participant_ratings.csv'; it maps"):
        index_deap(tmp_path)


def test_bad_csv_is_rejected(tmp_path):
    root = write_layout(tmp_path, {1: [(1, 1, 5.0, 5.0)]}, videos={1: [1]}, dats=[1])
    (root / "participant_ratings.csv").write_text("Participant_id,Trial,Valence\n1,1,5\n")
    with pytest.raises(MilmerInputError, match="missing column.s. Experiment_id, Arousal, Dominance, Liking"):
        index_deap(root)
    (root / "participant_ratings.csv").write_text(HEADER + "1,1,41,0,5,5,5,5,1\n")
    with pytest.raises(MilmerInputError, match="line 2: expected Trial and Experiment_id in 1-40, got Trial=1, Experiment_id=41"):
        index_deap(root)
    (root / "participant_ratings.csv").write_text(HEADER + "1,1,x,0,5,5,5,5,1\n")
    with pytest.raises(MilmerInputError, match="line 2 is not numeric"):
        index_deap(root)
    (root / "participant_ratings.csv").write_text(HEADER + "1,1,1,0,5,5,5,5,1\n1,1,2,0,5,5,5,5,1\n")
    with pytest.raises(MilmerInputError, match="line 3: participant 1 trial 1 appears twice"):
        index_deap(root)



@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from milmer.synthetic.make import make_demo_data

    out = tmp_path_factory.mktemp("demo")
    return make_demo_data(out, n_subjects=1, n_trials=4, trial_s=3.0, baseline_s=3.0, video_fps=10.0, recording_s=1.0)


def test_demo_pairing_needs_the_csv(demo):
    from milmer.runtime.eeg.io import load_deap_dat

    index = index_deap(demo.deap_root)
    assert [(r.trial, r.experiment_id) for r in index] == [(t.trial, t.experiment_id) for t in demo.trials]
    # The demo presents the videos in a permuted order: 1->2, 2->4, 3->1, 4->3.
    assert [r.row for r in index] == [1, 3, 0, 2]
    labels = load_deap_dat(index[0].dat_path)["labels"]
    assert all(np.array_equal(labels[r.row], r.ratings) for r in index)
    # Pairing video sXX_trialYY with .dat row YY-1 would give every trial another trial's ratings.
    assert sum(np.array_equal(labels[r.trial - 1], r.ratings) for r in index) == 0
    assert index.skipped == []
