"""Streaming with the overlap (decode + detect in a background thread while the model scores):
the same predictions, order, flags and errors as without it, and no thread left behind."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.face import extract as face_extract
from milmer.runtime.face.extract import FRAME_NO_FACE, FaceWindow
from milmer.runtime.pipeline import Pipeline
from milmer.runtime.results import RunStats, WindowPrediction
from milmer.runtime.windows import EEGWindows

FIELDS = [f for f in WindowPrediction.__dataclass_fields__]


def _face_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "milmer-faces"]


def _assert_same(a: list[WindowPrediction], b: list[WindowPrediction]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for name in FIELDS:
            u, v = getattr(x, name), getattr(y, name)
            if isinstance(u, np.ndarray):
                assert u.dtype == v.dtype, name
                np.testing.assert_array_equal(u, v, err_msg=name)
            else:
                assert u == v, name


def _predict(model, recording, overlap: bool, batch: int = 2) -> tuple[list[WindowPrediction], RunStats]:
    stats = RunStats()
    with Pipeline(model, batch=batch, intra_op_threads=1, overlap=overlap) as pipe:
        assert pipe.overlap is overlap
        preds = list(pipe.run(*recording, stats=stats))
    return preds, stats


def test_overlap_is_on_by_default_and_checked(tiny_model):
    with Pipeline(tiny_model, intra_op_threads=1) as pipe:
        assert pipe.overlap is True
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'overlap': expected a bool, got str\.$"):
        Pipeline(tiny_model, overlap="yes")  # type: ignore[arg-type]


def test_overlap_gives_the_same_predictions_order_and_flags(tiny_model, recording):
    """The real recording (a faceless second, 3 frames of window 1): every field identical."""
    on, stats_on = _predict(tiny_model, recording, overlap=True)
    off, stats_off = _predict(tiny_model, recording, overlap=False)
    _assert_same(on, off)
    assert [p.index for p in on] == [0, 1, 2, 3]
    assert [p.faces_found for p in on] == [10, 7, 10, 10]
    assert [p.flags for p in on] == [(), ("some-frames-without-face",), (), ()]
    assert [int(np.count_nonzero(p.frame_flags & FRAME_NO_FACE)) for p in on] == [0, 3, 0, 0]
    assert stats_on.face.counts() == stats_off.face.counts()
    assert (stats_on.n_windows, stats_on.n_batches, stats_on.max_batch) == (4, 2, 2)
    assert (stats_off.n_windows, stats_off.n_batches, stats_off.max_batch) == (4, 2, 2)
    assert _face_threads() == []


def test_face_warnings_from_the_background_thread_reach_the_caller(tiny_model, recording, tmp_path):
    """A window without a face: the FaceWarning (issued when the face stream ends, in the
    background thread) reaches the caller as without the overlap, and the flags agree."""
    from milmer.runtime.face.extract import FaceWarning

    from .conftest import write_video

    video = write_video(tmp_path / "faceless.avi", 12.0, blank=lambda k: 20 <= k < 140)
    runs = {}
    for overlap in (True, False):
        with pytest.warns(FaceWarning, match=r"^1 of 4 windows have no face \(none found in 20 of 40 frames\)"):
            runs[overlap] = _predict(tiny_model, (video, recording[1]), overlap=overlap)[0]
    _assert_same(runs[True], runs[False])
    assert [p.flags for p in runs[True]] == [
        ("some-frames-without-face",), ("no-face",), ("some-frames-without-face",), (),
    ]
    assert [p.predicted for p in runs[True]] == [True, False, True, True]


def _synthetic(spec, n: int, faceless=frozenset(), fail_at: int | None = None, seed: int = 0):
    """EEG windows and a face-window generator factory; the generator records what it yielded
    and whether it was closed."""
    rng = np.random.default_rng(seed)
    f, s = spec.face.frames_per_window, spec.face.frame_size
    eeg = EEGWindows(
        data=rng.standard_normal((n, spec.eeg.n_channels, spec.eeg.window_samples)).astype(np.float32),
        starts=np.arange(n) * spec.eeg.window_s,
        flags=[("bad-span:BAD_muscle",) if i == 2 else () for i in range(n)],
    )
    crops = rng.integers(0, 256, (n, f, s, s, 3), dtype=np.uint8)
    log = {"pulled": 0, "closed": False}

    def faces():
        try:
            for i in range(n):
                if i == fail_at:
                    raise MilmerInputError(f"Invalid value for 'video': cannot decode the frame at {3.0 * i:.1f} s.")
                found = np.full(f, i not in faceless)
                flags = np.where(found, 0, FRAME_NO_FACE).astype(np.uint8)
                log["pulled"] += 1
                yield FaceWindow(i, crops[i].copy(), found, spec.eeg.window_s * i + np.arange(f) * 0.3, flags)
        finally:
            log["closed"] = True

    return eeg, faces, log


@pytest.mark.parametrize("predict_without_face", [False, True])
def test_run_windows_same_with_and_without_overlap(tiny_model, predict_without_face):
    """11 windows, batch 3, two faceless and one flagged EEG window."""
    results = {}
    with Pipeline(tiny_model, batch=3, intra_op_threads=1) as pipe:
        for overlap in (True, False):
            pipe.overlap = overlap
            eeg, faces, log = _synthetic(pipe.spec, 11, faceless={4, 5})
            stats = RunStats()
            results[overlap] = list(pipe.run_windows(eeg, faces(), stats=stats, predict_without_face=predict_without_face))
            assert log["closed"] and stats.n_windows == 11
    _assert_same(results[True], results[False])
    preds = results[True]
    assert [p.index for p in preds] == list(range(11))
    assert [p.predicted for p in preds] == [predict_without_face or i not in (4, 5) for i in range(11)]
    assert preds[2].flags == ("bad-span:BAD_muscle",) and preds[4].flags == ("no-face",)


def test_producer_error_surfaces_unchanged_and_no_thread_is_left(tiny_model):
    """A face-stream error (here at window 5) reaches the caller as the same MilmerInputError,
    after the same predictions, with and without the overlap."""
    seen = {}
    with Pipeline(tiny_model, batch=2, intra_op_threads=1) as pipe:
        for overlap in (True, False):
            pipe.overlap = overlap
            eeg, faces, log = _synthetic(pipe.spec, 8, fail_at=5)
            got = []
            with pytest.raises(MilmerInputError, match=r"^Invalid value for 'video': cannot decode the frame at 15\.0 s\.$"):
                for p in pipe.run_windows(eeg, faces()):
                    got.append(p.index)
            seen[overlap] = got
            assert log["closed"]
            assert _face_threads() == []
    assert seen[True] == seen[False] == [0, 1, 2, 3]


def test_producer_error_in_run_reaches_the_caller(tiny_model, recording, monkeypatch):
    """Through run(): iter_face_windows failing mid-stream gives the same clean error."""
    real = face_extract.iter_face_windows

    def failing(*args, **kwargs):
        inner = real(*args, **kwargs)

        def gen():
            for window in inner:
                if window.index == 2:
                    raise MilmerInputError("Invalid value for 'video': the stream ended at 6.1 s.")
                yield window

        return gen()

    monkeypatch.setattr(face_extract, "iter_face_windows", failing)
    for overlap in (True, False):
        with Pipeline(tiny_model, batch=1, intra_op_threads=1, overlap=overlap) as pipe:
            got = []
            with pytest.raises(MilmerInputError, match=r"^Invalid value for 'video': the stream ended at 6\.1 s\.$"):
                for p in pipe.run(*recording):
                    got.append(p.index)
        assert got == [0, 1]
        assert _face_threads() == []


def test_scoring_error_stops_the_producer(tiny_model):
    """An error while the model scores (the consumer side) closes the face stream and leaves no
    thread running."""
    with Pipeline(tiny_model, batch=2, intra_op_threads=1) as pipe:
        real = pipe.scorer.score_bags
        calls = []

        def failing(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("backbone failed")
            return real(*args, **kwargs)

        pipe.scorer.score_bags = failing  # type: ignore[method-assign]
        eeg, faces, log = _synthetic(pipe.spec, 40)
        with pytest.raises(RuntimeError, match="backbone failed"):
            list(pipe.run_windows(eeg, faces()))
    assert log["closed"] and log["pulled"] < 40
    assert _face_threads() == []


def test_overlap_reads_at_most_one_batch_ahead(tiny_model):
    """While the caller holds a prediction, the background thread decodes ahead, but at most one
    batch (the queue) plus the window in hand: memory stays flat."""
    batch, n = 3, 30
    with Pipeline(tiny_model, batch=batch, intra_op_threads=1) as pipe:
        eeg, faces, log = _synthetic(pipe.spec, n)
        stream = pipe.run_windows(eeg, faces())
        first = next(stream)  # the first batch (3 windows) is scored
        end = time.monotonic() + 10
        while log["pulled"] < 2 * batch + 1 and time.monotonic() < end:
            time.sleep(0.005)
        time.sleep(0.1)
        # 3 scored + 3 queued + 1 waiting to be queued, and no more.
        assert log["pulled"] == 2 * batch + 1
        rest = list(stream)
    assert first.index == 0 and [p.index for p in rest] == list(range(1, n))
    assert _face_threads() == []


def test_stopping_early_closes_the_stream(tiny_model):
    with Pipeline(tiny_model, batch=2, intra_op_threads=1) as pipe:
        eeg, faces, log = _synthetic(pipe.spec, 30)
        stream = pipe.run_windows(eeg, faces())
        assert [next(stream).index for _ in range(3)] == [0, 1, 2]
        stream.close()
        assert log["closed"] and log["pulled"] <= 4 + 2 + 1
    assert _face_threads() == []
