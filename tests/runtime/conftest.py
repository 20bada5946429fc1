"""Fixtures for the inference tests: a tiny model directory and a short synthetic recording.

The model is the hand-built tiny swin/fusion pair of ``backends/tiny_graphs.py`` (8-dim tokens),
the recording 12 s of 32-channel EEG at 128 Hz (EDF) and a 20 fps MJPG video of a real face
(scikit-image's astronaut) drifting on a dark canvas.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

EEG_SECONDS = 12.0
VIDEO_FPS = 20.0
WIDTH, HEIGHT, FACE_SIDE = 320, 240, 140


def load_tiny_graphs():
    """Import backends/tiny_graphs.py by path (tests run with --import-mode=importlib)."""
    name = "milmer_tests_tiny_graphs"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "backends" / "tiny_graphs.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def write_edf(path: Path, seconds: float = EEG_SECONDS, seed: int = 0) -> Path:
    """32 spec channels (~20 uV) at 128 Hz, as EDF: uniform random sources, randomly mixed.

    Non-Gaussian sources let FastICA converge in a fraction of a second (on Gaussian noise it
    runs to max_iter), which keeps every pipeline run in these tests fast.
    """
    import mne

    from milmer.runtime.spec import DEAP_CHANNELS

    rng = np.random.default_rng(seed)
    n = int(seconds * 128)
    sources = rng.uniform(-1.0, 1.0, (len(DEAP_CHANNELS), n))
    mixed = rng.standard_normal((len(DEAP_CHANNELS), len(DEAP_CHANNELS))) @ sources
    data = 20e-6 * mixed / mixed.std(axis=1, keepdims=True)
    info = mne.create_info(list(DEAP_CHANNELS), 128.0, "eeg")
    raw = mne.io.RawArray(data, info, verbose="error")
    mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")
    return path


def _bounce(v: int, span: int) -> int:
    """0 .. span and back: the face moves like a head, it never jumps."""
    v %= 2 * span
    return v if v <= span else 2 * span - v


def write_video(path: Path, seconds: float, fps: float = VIDEO_FPS, blank=lambda k: False) -> Path:
    """A face on a dark canvas, drifting slowly to and fro; frames where ``blank(k)`` have no face."""
    import cv2
    from skimage import data

    face = cv2.resize(data.astronaut()[30:230, 125:325], (FACE_SIDE, FACE_SIDE), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for k in range(int(round(seconds * fps))):
        frame = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
        if not blank(k):
            x, y = 20 + _bounce(k * 3, 160), 20 + _bounce(k * 2, 60)
            frame[y : y + FACE_SIDE, x : x + FACE_SIDE] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="session")
def tiny_graphs():
    return load_tiny_graphs()


@pytest.fixture(scope="session")
def tiny_model(tiny_graphs, tmp_path_factory) -> Path:
    """spec.json, swin.onnx, fusion.onnx of the tiny graphs (default spec, 8-dim tokens)."""
    return tiny_graphs.write_model_dir(tmp_path_factory.mktemp("model") / "tiny", tiny_graphs.tiny_spec())


@pytest.fixture(scope="session")
def recording(tmp_path_factory) -> tuple[Path, Path]:
    """(video, eeg): 12 s each; frames 60-79 (3.0-4.0 s) have no face."""
    root = tmp_path_factory.mktemp("recording")
    video = write_video(root / "face.avi", EEG_SECONDS, blank=lambda k: 60 <= k < 80)
    return video, write_edf(root / "eeg.edf")


@pytest.fixture(scope="session")
def short_video(tmp_path_factory) -> Path:
    """8 s of video: covers two of the recording's four 3 s EEG windows."""
    return write_video(tmp_path_factory.mktemp("short") / "short.avi", 8.0)


def _prediction_window(index, probs, weights, selected, found, flags=()):
    from milmer.runtime.results import WindowPrediction
    from milmer.runtime.spec import ModelSpec

    probs = np.asarray(probs, np.float32)
    k = int(np.argmax(probs))
    return WindowPrediction(
        index=index,
        start=3.0 * index,
        end=3.0 * index + 3.0,
        label=ModelSpec().class_names[k],
        class_index=k,
        probabilities=probs,
        logits=np.log(probs),
        mil_weights=np.asarray(weights, np.float32),
        selected=np.asarray(selected, np.int64),
        found=np.asarray(found, bool),
        frame_times=3.0 * index + 0.15 + 0.3 * np.arange(len(found)),
        flags=tuple(flags),
    )


@pytest.fixture
def prediction_result():
    """A hand-made two-window PredictionResult (the output writers' and the renderers' input):
    window 1 HAHV with a face in every frame, window 2 LALV without a face, flagged."""
    from milmer.runtime.eeg.report import EEGNote
    from milmer.runtime.recording import window_coverage
    from milmer.runtime.results import PredictionResult, RunStats
    from milmer.runtime.spec import ModelSpec
    from milmer.runtime.timebase import Alignment, Fact, StreamClock
    from milmer.runtime.windows import EEGWindows

    w = np.full(10, 0.04, np.float32)
    w[[2, 5, 7]] = [0.31, 0.22, 0.19]  # sums to 1 with the seven 0.04s... (0.72 + 0.28)
    first = _prediction_window(1, [0.7, 0.1, 0.15, 0.05], w, [2, 5, 7], [True] * 10)
    second = _prediction_window(
        2, [0.1, 0.2, 0.3, 0.4], np.full(10, 0.1, np.float32), [0, 1, 2], [False] * 10,
        flags=("bad-span:BAD_move", "interpolated:T7,T8", "no-face"),
    )
    eeg = EEGWindows(np.zeros((4, 1, 1), np.float32), np.arange(4) * 3.0, {"duration_s": 12.0})
    stats = RunStats(
        timings={"eeg_read": 0.01, "eeg_preprocess": 0.5, "faces": 0.2, "normalise": 0.02, "backbone": 0.4, "fusion": 0.02},
        n_windows=2,
        n_frames=20,
        n_batches=1,
        max_batch=2,
        wall_s=1.5,
        coverage=window_coverage(eeg, 3.0, 8.5, -3.0),
        eeg_info={"ica_excluded": [1], "eog_source": "proxy Fp1/Fp2", "resampled_from": None, "duration_s": 12.0},
        notes=[EEGNote.of("interpolated", "interpolated 2 channel(s) from their neighbours: T7, T8 (every window is flagged)")],
        # --offset -3: the video started 3 s after the EEG (EEG 3 s = video 0 s).
        alignment=Alignment(StreamClock("eeg", 128.0), StreamClock("video", 25.0, Fact(3.0, "option", "--offset"))),
    )
    return PredictionResult(
        windows=[first, second],
        spec=ModelSpec(),
        model_dir=Path("models/demo"),
        settings={"backend": {"swin": "ort", "fusion": "ort"}, "device": {"swin": "cpu", "fusion": "cpu"},
                  "precision": "fp32", "batch": 8, "video": "face.mp4", "eeg": "eeg.edf",
                  "offset_s": -3.0, "baseline_s": 0.0},  # fmt: skip
        stats=stats,
    )


@pytest.fixture
def scratch_dir(tmp_path, monkeypatch) -> Path:
    """An empty scratch folder for :mod:`milmer.runtime.scratch` (``MILMER_SCRATCH`` set to it)."""
    from milmer.runtime.scratch import SCRATCH_ENV

    path = tmp_path / "scratch"
    monkeypatch.setenv(SCRATCH_ENV, str(path))
    return path


@pytest.fixture
def scratch_mappings(scratch_dir):
    """A count of this process's mappings of files in :func:`scratch_dir` (the files are
    unlinked at once: ``/proc/self/maps`` still names them)."""
    return lambda: Path("/proc/self/maps").read_text().count(str(scratch_dir))
