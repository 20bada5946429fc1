"""Inference pipeline: parity with the preprocessing path + numpy references, batching, coverage,
flat memory."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.backends import resolve_backend
from milmer.runtime.face import extract as face_extract
from milmer.runtime.face.extract import FaceWindow
from milmer.runtime.model_dir import load_model_dir
from milmer.runtime.pipeline import CoverageWarning, Pipeline
from milmer.runtime.results import STAGES, RunStats
from milmer.runtime.preprocess import preprocess_recording
from milmer.runtime.recording import window_coverage
from milmer.runtime.windows import EEGWindows


class TrackedFaces:
    """Wraps ``iter_face_windows``: records how many windows were pulled and which crops live."""

    def __init__(self, real):
        self.real = real
        self.crops: list[weakref.ref] = []
        self.max_alive_before_yield = 0  # crops of earlier windows still alive when a new one comes
        self.pulled = 0

    def alive(self) -> int:
        return sum(ref() is not None for ref in self.crops)

    def __call__(self, *args, **kwargs):
        inner = self.real(*args, **kwargs)

        def gen():
            for window in inner:
                # No gc.collect(): crops must go by reference counting, the moment they are let go.
                self.max_alive_before_yield = max(self.max_alive_before_yield, self.alive())
                self.crops.append(weakref.ref(window.crops))
                self.pulled += 1
                yield window
                del window

        return gen()


def _run_tracked(model, recording, batch):
    """The stream without the overlap: it pulls a face window only when the batch needs it."""
    tracker = TrackedFaces(face_extract.iter_face_windows)
    pulled_at_yield = []
    with pytest.MonkeyPatch.context() as mp, Pipeline(model, batch=batch, intra_op_threads=1, overlap=False) as pipe:
        mp.setattr(face_extract, "iter_face_windows", tracker)
        stats = RunStats()
        preds = []
        for p in pipe.run(*recording, stats=stats):
            pulled_at_yield.append(tracker.pulled)
            preds.append(p)
    return preds, stats, tracker, pulled_at_yield


@pytest.fixture(scope="module")
def unbatched(tiny_model, recording):
    return _run_tracked(tiny_model, recording, batch=1)


@pytest.fixture(scope="module")
def batched(tiny_model, recording):
    with Pipeline(tiny_model, batch=4, intra_op_threads=1) as pipe:
        return pipe.predict(*recording)


@pytest.fixture(scope="module")
def reference(tiny_graphs, tiny_model, recording):
    """``milmer preprocess``'s path (same EEG and face functions) + the tiny graphs' numpy maths."""
    spec = load_model_dir(tiny_model).spec
    pre = preprocess_recording(*recording, spec)
    crops = pre.faces.frames  # (W, F, S, S, 3)
    w, f, s = crops.shape[:3]
    mean, std = np.array(spec.face.mean), np.array(spec.face.std)
    frames = ((crops / 255.0 - mean) / std).transpose(0, 1, 4, 2, 3).reshape(w * f, 3, s, s)
    tokens = tiny_graphs.swin_reference(spec, frames.astype(np.float32))
    tokens = tokens.reshape(w, f, spec.graph.tokens_per_frame, spec.graph.token_dim)
    return pre, tiny_graphs.fusion_reference(spec, pre.eeg.data, tokens)


def test_predictions_match_preprocessing_and_reference_maths(batched, reference):
    pre, ref = reference
    windows = batched.windows
    assert [w.index for w in windows] == [0, 1, 2, 3]
    assert [(w.start, w.end) for w in windows] == [(0.0, 3.0), (3.0, 6.0), (6.0, 9.0), (9.0, 12.0)]
    # Frames 60-79 (3.0-4.0 s) have no face: window 1 samples 3.15, 3.45, 3.75 s there.
    assert [w.faces_found for w in windows] == [10, 7, 10, 10]
    assert [w.found.tolist() for w in windows] == pre.faces.found.tolist()
    np.testing.assert_array_equal(np.stack([w.frame_times for w in windows]), pre.faces.timestamps)
    for name, key in (("probabilities", "probabilities"), ("logits", "logits"), ("mil_weights", "mil_weights")):
        np.testing.assert_allclose(np.stack([getattr(w, name) for w in windows]), ref[key], atol=1e-5, err_msg=name)
    # Top-K by MIL score: window 1's faceless frames reuse one crop, so their scores tie, and which
    # of the tied frames a backend (ONNX Runtime, OpenVINO) lists is arbitrary; the selected
    # frames' weights are not.
    got_w = np.sort(np.stack([w.mil_weights[w.selected] for w in windows]), axis=1)
    want_w = np.sort(np.take_along_axis(ref["mil_weights"], ref["selected"], axis=1), axis=1)
    np.testing.assert_allclose(got_w, want_w, atol=1e-5)
    untied = [0, 2, 3]
    np.testing.assert_array_equal(np.stack([w.selected for w in windows])[untied], ref["selected"][untied])
    names = batched.class_names
    assert [w.label for w in windows] == [names[i] for i in ref["probabilities"].argmax(axis=1)]
    assert [w.class_index for w in windows] == ref["probabilities"].argmax(axis=1).tolist()
    for w in windows:
        assert w.probabilities.shape == (4,) and w.mil_weights.shape == (10,) and w.selected.shape == (3,)
        assert w.selected.dtype == np.int64
        np.testing.assert_allclose(w.probabilities.sum(), 1.0, atol=1e-6)
        np.testing.assert_array_equal(w.selected_weights, w.mil_weights[w.selected])


def test_stats_and_settings(batched, tiny_model):
    stats = batched.stats
    assert (stats.n_windows, stats.n_frames, stats.n_batches, stats.max_batch) == (4, 40, 1, 4)
    assert set(stats.timings) == set(STAGES)
    assert all(v > 0 for v in stats.timings.values()), stats.timings
    assert sum(stats.timings.values()) <= stats.wall_s
    assert stats.face.frames_total == 40 and stats.face.frames_without_face == 3
    assert stats.coverage.n_covered == 4 and stats.coverage.describe() is None
    # 'auto' on a CPU: OpenVINO where it is installed on an x86 CPU, else ONNX Runtime.
    auto = resolve_backend(tiny_model / "swin.onnx", device="cpu")
    assert auto in ("openvino", "ort")
    assert batched.settings["backend"] == {"swin": auto, "fusion": auto}
    assert batched.settings["device"] == {"swin": "cpu", "fusion": "cpu"}
    assert (batched.settings["precision"], batched.settings["batch"]) == ("fp32", 4)
    assert batched.seconds_covered == 12.0
    assert batched.real_time_factor == pytest.approx(stats.wall_s / 12.0)
    assert sum(batched.class_counts().values()) == 4 and list(batched.class_counts()) == list(batched.class_names)


def test_batched_equals_unbatched(batched, unbatched):
    preds, stats, _, _ = unbatched
    assert (stats.n_batches, stats.max_batch) == (4, 1)
    assert len(preds) == len(batched.windows) == 4
    for one, four in zip(preds, batched.windows):
        assert (one.index, one.label, one.start) == (four.index, four.label, four.start)
        for name in ("probabilities", "logits", "mil_weights"):
            np.testing.assert_allclose(getattr(one, name), getattr(four, name), atol=1e-6, err_msg=name)
        np.testing.assert_array_equal(one.selected, four.selected)
        np.testing.assert_array_equal(one.found, four.found)


@pytest.mark.parametrize("batch", [2, 3])
def test_partial_last_batch_equals_unbatched(tiny_model, reference, unbatched, batch):
    """4 windows in batches of 3 (3 + 1) or 2 (2 + 2) through run_windows."""
    pre, _ = reference
    faces = (
        FaceWindow(i, pre.faces.frames[i], pre.faces.found[i], pre.faces.timestamps[i]) for i in range(4)
    )
    stats = RunStats()
    with Pipeline(tiny_model, batch=batch, intra_op_threads=1) as pipe:
        preds = list(pipe.run_windows(pre.eeg, faces, stats=stats))
    assert stats.n_batches == -(-4 // batch)
    for a, b in zip(preds, unbatched[0]):
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)
        np.testing.assert_allclose(a.mil_weights, b.mil_weights, atol=1e-6)
        np.testing.assert_array_equal(a.selected, b.selected)


def test_run_streams_faces_window_by_window(unbatched):
    """run() pulls a face window only when the batch needs it and lets its crops go."""
    preds, _, tracker, pulled_at_yield = unbatched
    assert tracker.pulled == 4
    # With batch=1, prediction i is yielded after exactly i + 1 windows were pulled.
    assert pulled_at_yield == [1, 2, 3, 4]
    # When a window arrives, no earlier window's crop array is still alive.
    assert tracker.max_alive_before_yield == 0
    gc.collect()
    assert tracker.alive() == 0, "predictions must not keep crops alive"


def _synthetic_stream(spec, n_windows, seed=0):
    """EEG windows and a generator of random face windows (crops made on demand, never kept)."""
    rng = np.random.default_rng(seed)
    f, s = spec.face.frames_per_window, spec.face.frame_size
    eeg = EEGWindows(
        data=rng.standard_normal((n_windows, spec.eeg.n_channels, spec.eeg.window_samples)).astype(np.float32),
        starts=np.arange(n_windows) * spec.eeg.window_s,
    )

    def faces():
        for i in range(n_windows):
            yield FaceWindow(
                i,
                rng.integers(0, 256, (f, s, s, 3), dtype=np.uint8),
                np.ones(f, bool),
                spec.eeg.window_s * i + np.arange(f) * 0.3,
            )

    return eeg, faces()


def test_memory_is_flat_in_recording_length(tiny_model):
    """Peak traced memory for 48 windows is within one window's crops of that for 8 windows
    (without the overlap, whose read-ahead is bounded by test_overlap_reads_at_most_one_batch_ahead)."""
    with Pipeline(tiny_model, batch=4, intra_op_threads=1, overlap=False) as pipe:
        spec = pipe.spec
        per_window = spec.face.frames_per_window * spec.face.frame_size**2 * 3  # uint8 crops
        peaks = {}
        for n in (8, 48):
            eeg, faces = _synthetic_stream(spec, n)
            gc.collect()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            count = sum(1 for _ in pipe.run_windows(eeg, faces))
            peaks[n] = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
            assert count == n
    # Holding every window would add 40 windows' crops (~60 MB) and their float copies.
    assert peaks[48] - peaks[8] < per_window, peaks
    # About one batch: its uint8 crops (1x) and normalisation's float32 copies (2 x 4x) ~ 9x a
    # batch of crops; all 48 windows held would be 12 batches.
    assert peaks[48] < 12 * 4 * per_window, peaks


def test_run_windows_holds_at_most_one_batch(tiny_model):
    batch = 4
    with Pipeline(tiny_model, batch=batch, intra_op_threads=1, overlap=False) as pipe:
        eeg, faces = _synthetic_stream(pipe.spec, 22)
        tracker = TrackedFaces(lambda: faces)
        pulled_at_yield = []
        for i, _ in enumerate(pipe.run_windows(eeg, tracker())):
            pulled_at_yield.append(tracker.pulled)
    # Prediction i comes once its batch is full (or the stream ended), never later.
    assert pulled_at_yield == [min(22, (i // batch + 1) * batch) for i in range(22)]
    assert tracker.max_alive_before_yield < batch


def test_disk_backed_windows_score_the_same_and_are_released_batch_by_batch(tiny_model, monkeypatch, tmp_path):
    """A long recording's windows live in a scratch file (runtime.scratch): the scorer reads
    them a batch at a time and hands the pages back after each batch."""
    from milmer.runtime import streaming
    from milmer.runtime import scratch

    monkeypatch.setenv(scratch.SCRATCH_ENV, str(tmp_path))
    monkeypatch.setattr(scratch, "MAX_IN_MEMORY_BYTES", 0)
    released, real = [], streaming.release
    monkeypatch.setattr(streaming, "release", lambda a: released.append(scratch.is_disk_backed(a)) or real(a))
    with Pipeline(tiny_model, batch=4, intra_op_threads=1, overlap=False) as pipe:
        eeg, faces = _synthetic_stream(pipe.spec, 10)
        expected = [p.probabilities for p in pipe.run_windows(eeg, faces)]
        assert released == [False] * 3
        eeg, faces = _synthetic_stream(pipe.spec, 10)
        data = scratch.empty(eeg.data.shape, np.float32)
        data[:] = eeg.data
        on_disk = EEGWindows(data=data, starts=eeg.starts)
        got = [p.probabilities for p in pipe.run_windows(on_disk, faces)]
    assert scratch.is_disk_backed(on_disk.data) and released[3:] == [True] * 3  # batches of 4, 4, 2
    np.testing.assert_array_equal(np.array(got), np.array(expected))


def test_unequal_lengths_warn_and_predict_the_overlap(tiny_model, recording, short_video, batched):
    _, eeg = recording
    with Pipeline(tiny_model, batch=4, intra_op_threads=1) as pipe:
        with pytest.warns(CoverageWarning) as caught:
            result = pipe.predict(short_video, eeg)
    # An AVI carries no frame timestamps, so its 8 s against 12 s of EEG is also flagged as a
    # possibly wrong header rate (the AVI check runs at any length); the coverage is one warning.
    coverage = [w for w in caught if w.category is CoverageWarning]
    assert [w.category.__name__ for w in caught if w not in coverage] == ["AlignmentWarning"]
    assert len(coverage) == 1
    assert str(coverage[0].message) == (
        "The video (8.0 s, offset +0.0 s) and the EEG (12.0 s) differ in length: predicting on the "
        "overlap only, 2 of 4 windows (EEG 0.0-6.0 s); dropped 2 windows (6 s) at the end "
        "(EEG 6.0-12.0 s lies past the video's end)."
    )
    assert [w.index for w in result.windows] == [0, 1]
    cov = result.stats.coverage
    assert (cov.n_dropped_start, cov.n_dropped_end, cov.n_covered) == (0, 2, 2)
    # The short video has a face in every frame; window 0 (no blank frames) scores as before.
    np.testing.assert_allclose(result.windows[0].probabilities, batched.windows[0].probabilities, atol=1e-6)


def _eeg(n, window_s=3.0, duration=None):
    return EEGWindows(
        data=np.zeros((n, 1, 1), np.float32),
        starts=np.arange(n) * window_s,
        info={"duration_s": duration if duration is not None else n * window_s},
    )


@pytest.mark.parametrize(
    "n, video_s, offset, covered, message",
    [
        (4, 12.0, 0.0, [1, 1, 1, 1], None),
        (4, 12.5, 0.0, [1, 1, 1, 1], None),
        (
            4, 12.0, -3.0, [0, 1, 1, 1],
            "The video (12.0 s, offset -3.0 s) and the EEG (12.0 s) differ in length: predicting on the "
            "overlap only, 3 of 4 windows (EEG 3.0-12.0 s); dropped 1 window (3 s) at the start "
            "(EEG 0.0-3.0 s lies before the video starts); the last 3.0 s of video come after the "
            "EEG's end and are not used.",
        ),
        (
            4, 10.0, -1.0, [0, 1, 1, 0],
            "The video (10.0 s, offset -1.0 s) and the EEG (12.0 s) differ in length: predicting on the "
            "overlap only, 2 of 4 windows (EEG 3.0-9.0 s); dropped 1 window (3 s) at the start "
            "(EEG 0.0-3.0 s lies before the video starts); dropped 1 window (3 s) at the end "
            "(EEG 9.0-12.0 s lies past the video's end).",
        ),
        (
            2, 20.0, 0.0, [1, 1],
            "The video (20.0 s, offset +0.0 s) and the EEG (6.0 s) differ in length: predicting on the "
            "overlap only, 2 of 2 windows (EEG 0.0-6.0 s); the last 14.0 s of video come after the "
            "EEG's end and are not used.",
        ),
    ],
)  # fmt: skip
def test_window_coverage(n, video_s, offset, covered, message):
    cov = window_coverage(_eeg(n), 3.0, video_s, offset)
    assert cov.covered.astype(int).tolist() == covered
    assert cov.describe() == message
    assert cov.select(_eeg(n)).starts.tolist() == [3.0 * i for i in range(n) if covered[i]]


def test_window_coverage_none_covered():
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid value for 'video': expected at least one 3 s EEG window it covers, got none; the video is 2\.0 s \(offset \+0\.0 s\), the EEG 12\.0 s: check --offset, the video time \(s\) at EEG t = 0\.$",
    ):
        window_coverage(_eeg(4), 3.0, 2.0, 0.0)


def test_run_checks_files_before_work(tiny_model, recording, tmp_path):
    video, eeg = recording
    with Pipeline(tiny_model) as pipe:
        with pytest.raises(MilmerInputError, match=r"^Invalid value for 'video': file not found: .*nope\.avi'\.$"):
            pipe.run(tmp_path / "nope.avi", eeg)
        with pytest.raises(MilmerInputError, match=r"^Invalid value for 'eeg': file not found"):
            pipe.run(video, tmp_path / "nope.edf")
        with pytest.raises(MilmerInputError, match=r"^Invalid value for 'offset_s': expected 'auto' or a finite number"):
            pipe.run(video, eeg, offset_s=float("nan"))


def test_progress_bar_and_early_stop(tiny_model, capfd):
    """A long stream with progress=True scores as usual (the bar stays off a non-terminal
    stderr), and stopping early closes the face stream."""
    closed = []
    with Pipeline(tiny_model, batch=4, intra_op_threads=1) as pipe:
        eeg, faces = _synthetic_stream(pipe.spec, 21)

        def watched():
            try:
                yield from faces
            finally:
                closed.append(True)

        stream = pipe.run_windows(eeg, watched(), progress=True)
        first = [next(stream) for _ in range(5)]
        stream.close()
    assert [p.index for p in first] == [0, 1, 2, 3, 4]
    assert closed == [True]
    assert capfd.readouterr().err == ""


def test_backend_options_pass_through_to_the_runners(tiny_model):
    """``backend_options`` reach both graphs' runners; a bad key is refused before any graph loads."""
    with Pipeline(tiny_model, backend="ort", device="cpu", backend_options={"ort": {"intra_op_num_threads": 1}}) as pipe:
        assert pipe.scorer.swin.intra_op_num_threads == pipe.scorer.fusion.intra_op_num_threads == 1
    with pytest.raises(MilmerInputError, match=r"Invalid options for backend 'openvino': unknown key\(s\) streams; expected some of "):
        Pipeline(tiny_model, backend="ort", device="cpu", backend_options={"openvino": {"streams": 2}})
    with pytest.raises(MilmerInputError, match=r"'intra_op_threads': expected 1 \(backend_options\['ort'\]\['intra_op_num_threads'\]\), got 2; give one of them"):
        Pipeline(tiny_model, backend="ort", device="cpu", intra_op_threads=2,
                 backend_options={"ort": {"intra_op_num_threads": 1}})  # fmt: skip


def test_openvino_options_pass_through(tiny_model):
    from milmer.runtime.backends.openvino import OpenVinoRunner

    if OpenVinoRunner.unavailable_reason("x.onnx", device="cpu", precision="fp32") is not None:
        pytest.skip("OpenVINO is not installed or this is not an x86 CPU")
    options = {"openvino": {"num_streams": 2, "num_threads": 2}}
    with Pipeline(tiny_model, backend="openvino", device="cpu", backend_options=options) as pipe:
        for runner in (pipe.scorer.swin, pipe.scorer.fusion):
            assert (runner.num_streams, runner.num_threads) == (2, 2)
            assert int(runner._compiled.get_property("NUM_STREAMS")) == 2


def test_pipeline_holds_any_scorer_and_writes_its_location(tiny_model):
    """Pipeline holds a scorer behind the small Scorer interface (a local BagScorer or a server's):
    the same streaming with a scorer made elsewhere, whose location is written as the model's."""
    from milmer.runtime.check import MilmerInputError
    from milmer.runtime.scoring import BagScorer, Scorer

    local = BagScorer(tiny_model, batch=2, intra_op_threads=1)

    class Elsewhere:  # only the interface: nothing inherited from BagScorer
        spec, batch, location = local.spec, 2, "http://scorer.invalid:8000"
        settings = {"server": location, "batch": 2}
        closed = False

        def score_bags(self, eeg, crops, *, timings=None):
            return local.score_bags(eeg, crops, timings=timings)

        def close(self):
            Elsewhere.closed = True

    assert isinstance(local, Scorer) and isinstance(Elsewhere(), Scorer)
    rng = np.random.default_rng(0)
    spec = local.spec
    windows = EEGWindows(
        data=rng.standard_normal((3, spec.eeg.n_channels, spec.eeg.window_samples)).astype(np.float32),
        starts=np.arange(3) * spec.eeg.window_s,
    )
    faces = [
        FaceWindow(i, rng.integers(0, 256, (10, 224, 224, 3), dtype=np.uint8), np.ones(10, bool), np.linspace(0, 3, 10))
        for i in range(3)
    ]
    with Pipeline(local) as held, Pipeline(Elsewhere(), overlap=False) as remote:
        assert held.scorer is local and remote.settings == {"server": "http://scorer.invalid:8000", "batch": 2}
        a = list(held.run_windows(windows, faces))
        b = list(remote.run_windows(windows, faces))
    assert Elsewhere.closed
    assert [w.label for w in a] == [w.label for w in b] and len(a) == 3
    np.testing.assert_array_equal([w.probabilities for w in a], [w.probabilities for w in b])
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'batch': 'batch' and 'model' exclude each other, got 4 and 'a made scorer \(Elsewhere\)'; give the options to the scorer, not to Pipeline\.$"):
        Pipeline(Elsewhere(), batch=4)


def test_detector_is_built_beside_the_eeg_and_always_closed(tiny_model, recording, tmp_path, monkeypatch, batched):
    """Pipeline.run builds the face detector in a background thread while the EEG is preprocessed
    (start-up cost off the critical path), gives the same predictions, and closes the detector
    at the end of the stream and when the recording is refused."""
    import threading

    from milmer.runtime.face import detect

    made = []
    real = detect.make_detector

    def recording_maker(*args, **kwargs):
        det = real(*args, **kwargs)
        made.append((threading.current_thread().name, det))
        return det

    monkeypatch.setattr(detect, "make_detector", recording_maker)
    video, eeg = recording
    with Pipeline(tiny_model, batch=4) as pipe:
        result = pipe.predict(video, eeg)
        assert [(n, d._runner) for n, d in made] == [("milmer-detector", None)]
        for got, want in zip(result.windows, batched.windows):
            np.testing.assert_array_equal(got.probabilities, want.probabilities)
        with pytest.raises(MilmerInputError, match=r"^Invalid value for 'eeg': file not found"):
            pipe.run(video, tmp_path / "nope.edf")
        assert len(made) == 2 and made[1][1]._runner is None
