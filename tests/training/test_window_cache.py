from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.spec import EEGSpec, ICASpec, ModelSpec
from milmer.runtime.windows import EEGWindows, FaceWindows
from milmer.training import window_cache as cache_mod
from milmer.training import window_cache_build as build_mod
from milmer.training.window_cache import ShardedArray, cache_config, cache_dir, open_cache
from milmer.training.window_cache_build import build_cache
from milmer.training.deap import index_deap

# ICA is the slow step (seconds per trial); most tests do not need it. One test runs it.
FAST = ModelSpec(eeg=EEGSpec(ica=ICASpec(enabled=False)))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from milmer.synthetic.make import make_demo_data

    out = tmp_path_factory.mktemp("demo")
    make_demo_data(out, n_subjects=1, n_trials=4, trial_s=6.0, baseline_s=3.0, video_fps=10.0, recording_s=1.0, seed=0)
    return out / "deap"


@pytest.fixture(scope="module")
def records(demo):
    return index_deap(demo).records


@pytest.fixture(scope="module")
def built(records, tmp_path_factory):
    return build_cache(records, FAST, tmp_path_factory.mktemp("cache"), workers=1, progress=False)


def direct(record, spec, *, baseline_s=3.0, offset_s=0.0):
    """The runtime calls the cache must reproduce, written out by hand."""
    from milmer.runtime.eeg.io import deap_trial_to_raw, load_deap_dat
    from milmer.runtime.eeg.preprocess import preprocess_raw
    from milmer.runtime.face.extract import extract_faces

    dat = load_deap_dat(record.dat_path)
    eeg = preprocess_raw(deap_trial_to_raw(dat["data"][record.row]), spec.eeg, baseline_s=baseline_s)
    faces = extract_faces(record.video_path, eeg.starts, spec.face, spec.eeg.window_s, offset_s=offset_s)
    return eeg, faces


def assert_trial_equals(cached, trial, eeg, faces):
    rows = np.flatnonzero(cached.trial == trial)
    assert rows.size == eeg.data.shape[0] > 0
    assert np.array_equal(cached.eeg[rows], eeg.data)
    assert np.array_equal(cached.faces[rows], faces.frames)
    assert np.array_equal(cached.face_found[rows], faces.found)
    assert np.array_equal(cached.face_timestamps[rows], faces.timestamps)
    assert np.array_equal(cached.start[rows], eeg.starts)


# ----------------------------------------------------------------------------- real preprocessing
def test_contents_equal_direct_runtime_calls(built, records):
    # 1 subject x 4 trials of 3 s baseline + 6 s: two 3 s windows each, starting at 3 and 6 s.
    assert len(built) == 8
    assert built.eeg.shape == (8, 32, 384) and built.eeg.dtype == np.float32
    assert built.faces.shape == (8, 10, 224, 224, 3) and built.faces.dtype == np.uint8
    assert built.start.tolist() == [3.0, 6.0] * 4
    rec = records[2]
    eeg, faces = direct(rec, FAST)
    assert_trial_equals(built, rec.trial, eeg, faces)


def test_contents_equal_direct_calls_with_ica(records, tmp_path):
    spec = ModelSpec(eeg=EEGSpec(ica=ICASpec(max_iter=50)))
    rec = records[1]
    cached = build_cache([rec], spec, tmp_path, workers=1, progress=False)
    eeg, faces = direct(rec, spec)
    assert eeg.info["ica_excluded"]  # the demo EEG has blinks: ICA did remove something
    assert_trial_equals(cached, rec.trial, eeg, faces)


def test_index_columns_follow_the_records(built, records):
    assert built.subject.tolist() == [1] * 8
    assert built.trial.tolist() == [1, 1, 2, 2, 3, 3, 4, 4]
    assert built.experiment_id.tolist() == [r.experiment_id for r in records for _ in (0, 1)]
    assert np.array_equal(built.ratings, np.repeat([r.ratings for r in records], 2, axis=0))
    assert built.window_has_face.all()


def test_faces_are_sampled_inside_their_eeg_window(built, records, tmp_path):
    # 10 frames per 3 s window at sub-interval centres, nearest frame of the 10 fps video.
    assert np.allclose(built.face_timestamps[0], np.arange(3.1, 6.0, 0.3))
    assert np.all((built.face_timestamps >= built.start[:, None]) & (built.face_timestamps < built.start[:, None] + 3))
    shifted = build_cache(records[:1], FAST, tmp_path, offset_s=0.5, workers=1, progress=False)
    assert np.allclose(shifted.face_timestamps[0], np.arange(3.1, 6.0, 0.3) + 0.5)
    assert shifted.folder != built.folder


def test_a_wrong_row_is_refused(records, tmp_path):
    wrong = dataclasses.replace(records[0], row=records[1].row)
    with pytest.raises(MilmerInputError, match=r"(?s)1 of 1 trials could not be cached.*s01_trial01: .*do not belong together"):
        build_cache([wrong], FAST, tmp_path, workers=1, progress=False)


def test_process_pool_gives_the_same_shards(built, records, tmp_path):
    # One trial keeps the (spawned) pool to one process: starting one costs seconds of imports.
    pooled = build_cache(records[3:], FAST, tmp_path, workers=2, progress=False)
    rows = np.flatnonzero(built.trial == 4)
    assert np.array_equal(pooled.eeg[:], built.eeg[rows])
    assert np.array_equal(pooled.faces[:], built.faces[rows])


# ----------------------------------------------------------------------------- bookkeeping (fake work)
@pytest.fixture
def calls(monkeypatch):
    """Replace the preprocessing with a counter returning one tiny window per trial."""
    done = []

    def fake(task):
        done.append(task.record.name)
        dat = build_mod._load_dat(task.record.dat_path, task.sources["dat"])
        eeg = EEGWindows(np.full((1, 32, 384), len(done), np.float32), np.array([3.0]))
        faces = FaceWindows(np.zeros((1, 10, 224, 224, 3), np.uint8), np.ones((1, 10), bool), np.full((1, 10), 3.5))
        return eeg, faces, np.asarray(dat["labels"][task.record.row], np.float64)

    monkeypatch.setattr(build_mod, "_compute_trial", fake)
    return done


def build(records, root, spec=FAST, **kw):
    return build_cache(records, spec, root, workers=1, progress=False, **kw)


def test_resume_skips_completed_shards(records, tmp_path, calls):
    first = build(records, tmp_path)
    assert len(calls) == 4
    assert build(records, tmp_path).index_path == first.index_path
    assert len(calls) == 4  # nothing rebuilt
    shutil.rmtree(first.folder / "shards" / first.shards[2]["name"])
    dead = first.folder / "shards" / ".tmp-s01_trial09-abc-999999999-deadbeef"  # from a killed run
    dead.mkdir()
    again = build(records, tmp_path)
    assert calls == ["s01_trial01", "s01_trial02", "s01_trial03", "s01_trial04", "s01_trial03"]
    assert again.eeg[2][0, 0] == 5.0  # the rebuilt shard's data
    assert not dead.exists()


def test_an_interrupted_build_leaves_no_partial_shard(records, tmp_path, calls, monkeypatch):
    real_save = np.save

    def crash_on_third(path, arr):
        if len(calls) == 3 and str(path).endswith("faces.npy"):
            raise KeyboardInterrupt
        real_save(path, arr)

    monkeypatch.setattr(cache_mod.np, "save", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        build(records, tmp_path)
    folder = cache_dir(tmp_path, cache_config(FAST))
    assert sorted(p.name[:11] for p in (folder / "shards").iterdir()) == ["s01_trial01", "s01_trial02"]
    monkeypatch.setattr(cache_mod.np, "save", real_save)
    build(records, tmp_path)
    assert calls[3:] == ["s01_trial03", "s01_trial04"]


def test_spec_options_and_code_version_change_the_folder(records, tmp_path, calls, monkeypatch):
    base = build(records[:1], tmp_path)
    other_spec = build(records[:1], tmp_path, spec=ModelSpec(eeg=EEGSpec(l_freq=4.0, ica=ICASpec(enabled=False))))
    other_baseline = build(records[:1], tmp_path, baseline_s=2.0)
    monkeypatch.setattr(cache_mod, "PREPROCESSING_CODE_VERSION", cache_mod.PREPROCESSING_CODE_VERSION + 1)
    other_code = build(records[:1], tmp_path)
    folders = {c.folder for c in (base, other_spec, other_baseline, other_code)}
    assert len(folders) == 4 and len(calls) == 4
    # Only the preprocessing part of the spec counts: the label scheme shares the cache.
    monkeypatch.undo()
    assert build(records[:1], tmp_path, spec=FAST.for_scheme("deap2-valence", eeg=FAST.eeg)).folder == base.folder
    assert len(calls) == 4


def test_a_changed_source_file_is_never_loaded(records, tmp_path, calls):
    old = build(records, tmp_path)
    video = records[1].video_path
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(MilmerInputError, match=r"Stale cache .*s01_trial02.avi.* changed since it was built"):
        open_cache(old.index_path)
    new = build(records, tmp_path)
    assert calls[4:] == ["s01_trial02"]  # only that trial is rebuilt, into a new shard
    assert new.shards[1]["name"] != old.shards[1]["name"] and new.shards[0]["name"] == old.shards[0]["name"]
    assert open_cache(new.index_path).eeg[1][0, 0] == 5.0


def test_tampered_key_file_is_refused(records, tmp_path, calls):
    cached = build(records[:1], tmp_path)
    key = json.loads((cached.folder / "key.json").read_text())
    key["baseline_s"] = 0.0
    (cached.folder / "key.json").write_text(json.dumps(key))
    with pytest.raises(MilmerInputError, match="key.json does not match"):
        open_cache(cached.index_path)
    with pytest.raises(MilmerInputError, match="key.json does not match"):
        build(records[:1], tmp_path)


def test_progress_bar_reports_trials(records, tmp_path, calls, capsys):
    build_cache(records[:2], FAST, tmp_path, workers=1, progress=True)
    assert "DEAP cache" in capsys.readouterr().out


def test_bad_arguments(records, tmp_path):
    with pytest.raises(MilmerInputError, match="'records': expected at least one trial"):
        build_cache([], FAST, tmp_path)
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'records': expected each trial once, got 's01_trial01' twice\.$"):
        build_cache([records[0], records[0]], FAST, tmp_path)
    with pytest.raises(MilmerInputError, match="'workers': expected an integer >= 1, got 0"):
        build_cache(records, FAST, tmp_path, workers=0)
    with pytest.raises(MilmerInputError, match="'baseline_s': expected a number >= 0, got -1"):
        build_cache(records, FAST, tmp_path, baseline_s=-1)
    gone = dataclasses.replace(records[0], video_path=tmp_path / "missing.avi")
    with pytest.raises(MilmerInputError, match="'s01_trial01.video_path': file not found"):
        build_cache([gone], FAST, tmp_path)
    with pytest.raises(MilmerInputError, match="'index_path': file not found"):
        open_cache(tmp_path / "index-none.json")


# ----------------------------------------------------------------------------- ShardedArray
def test_sharded_array_indexing(tmp_path):
    files = []
    for k, n in enumerate((2, 3)):
        files.append(tmp_path / f"{k}.npy")
        np.save(files[-1], np.arange(n * 2, dtype=np.float32).reshape(n, 2) + 10 * k)
    a = ShardedArray(files, [2, 3], (2,), np.float32)
    assert a.shape == (5, 2) and len(a) == 5
    assert a[2].tolist() == [10.0, 11.0] and a[-1].tolist() == [14.0, 15.0]
    assert a[[4, 0]].tolist() == [[14.0, 15.0], [0.0, 1.0]]
    assert np.asarray(a)[:, 0].tolist() == [0.0, 2.0, 10.0, 12.0, 14.0]
    with pytest.raises(IndexError, match="index 5 is out of bounds for 5 windows"):
        a[5]
    assert pickle.loads(pickle.dumps(a))._maps == {} and a._maps  # maps reopen in workers
    bad = ShardedArray(files, [2, 2], (2,), np.float32)
    with pytest.raises(MilmerInputError, match=r"holds \(3, 2\) float32, the index expects \(2, 2\) float32"):
        bad[3]
