"""Per-stage latency of the pipeline, each stage timed on its own with the runtime's own code.

Preprocessing stages (independent of the model's precision), on one demo recording:

=================  ===========  ============================================================
stage              one call     what runs
=================  ===========  ============================================================
eeg_read           recording    ``eeg.io.read_raw`` (EDF, preloaded)
eeg_resample       recording    \\
eeg_filter         recording     ``eeg.preprocess.preprocess_raw``'s own step timings
eeg_ica            recording     (resample to the spec's rate, band-pass FIR, ICA (spec) + EOG
eeg_window         recording    /  component removal, cutting windows)
video_decode       recording    ``face.video.iter_frames_at`` over every window's frame times
face_detect        frame        the spec's detector (``face.detect.make_detector``)
crop               frame        ``face.crop.expand_box`` + ``crop_pad_resize``
normalise          bag          ``face.crop.normalize`` of one window's F crops
=================  ===========  ============================================================

Model stages, per backend and precision: ``backbone`` (one call on a bag's F frames) and
``fusion`` (one call on one bag), through the runtime's runners as :class:`BagScorer` (the
pipeline's scorer) loads them.

Every stage also gets ``per_window_s``: its median cost per 3 s window (recording-level costs
divided by the recording's windows, per-frame costs times F), so stages add up to the work the
pipeline does per window.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.spec import ModelSpec
from .timing import Timing, TimingConfig, time_call

__all__ = ["PREPROCESSING_STAGES", "MODEL_STAGES", "measure_preprocessing", "measure_model_stages", "random_bags"]

PREPROCESSING_STAGES: tuple[str, ...] = (
    "eeg_read",
    "eeg_resample",
    "eeg_filter",
    "eeg_ica",
    "eeg_window",
    "video_decode",
    "face_detect",
    "crop",
    "normalise",
)
MODEL_STAGES: tuple[str, ...] = ("backbone", "fusion")
# preprocess_raw's info['timings'] key for each EEG stage.
_EEG_STEPS = {"eeg_resample": "resample", "eeg_filter": "filter", "eeg_ica": "ica", "eeg_window": "window"}


def _entry(timing: Timing, per_window_factor: float) -> dict[str, Any]:
    return {**timing.to_dict(), "per_window_s": timing.median_s * per_window_factor}


def _cycling(items: list[Any], fn: Callable[[Any], object]) -> Callable[[], object]:
    """A no-argument callable applying ``fn`` to the next of ``items``, round and round."""
    it: Iterator[Any] = itertools.cycle(items)
    return lambda: fn(next(it))


def measure_preprocessing(
    video: str | os.PathLike[str],
    eeg: str | os.PathLike[str],
    spec: ModelSpec,
    timing: TimingConfig,
    recording_timing: TimingConfig,
) -> dict[str, Any]:
    """Time every preprocessing stage (module table) on one recording.

    timing:           for the per-frame and per-bag stages (milliseconds each)
    recording_timing: for the per-recording stages (seconds each: EEG steps, decoding)
    Returns ``{'recording': {...}, 'stages': {stage: summary + per_window_s}}``.
    """
    from ..runtime.eeg.io import read_raw
    from ..runtime.eeg.preprocess import preprocess_raw
    from ..runtime.face.crop import crop_pad_resize, expand_box, normalize
    from ..runtime.face.detect import make_detector
    from ..runtime.face.video import iter_frames_at, probe_video, sample_times

    face, window_s = spec.face, spec.eeg.window_s
    stages: dict[str, dict[str, Any]] = {}

    raw = read_raw(eeg)
    eeg_s = raw.n_times / float(raw.info["sfreq"])
    info = probe_video(video)
    n_windows = int(min(eeg_s, info.duration_s) // window_s)
    per_rec = 1.0 / n_windows

    stages["eeg_read"] = _entry(time_call(lambda: read_raw(eeg), recording_timing, per="recording"), per_rec)
    steps: dict[str, list[float]] = {name: [] for name in _EEG_STEPS}
    for call in range(recording_timing.warmup + recording_timing.repeats):
        result = preprocess_raw(raw, spec.eeg)
        if call >= recording_timing.warmup:
            for name, key in _EEG_STEPS.items():
                steps[name].append(float(result.info["timings"].get(key, 0.0)))
    for name, samples in steps.items():
        stages[name] = _entry(Timing(tuple(samples), "recording"), per_rec)
    ica = {k: result.info.get(k) for k in ("ica_method", "ica_n_components", "ica_n_iter", "ica_excluded", "ica_converged")}
    del raw

    times = sample_times(np.arange(n_windows) * window_s, window_s, face.frames_per_window)  # (W, F)

    def decode_all() -> int:
        return sum(1 for _ in iter_frames_at(video, times.ravel(), 0.0, info=info))

    stages["video_decode"] = _entry(time_call(decode_all, recording_timing, per="recording"), per_rec)

    # A few windows' frames, decoded once, feed the per-frame stages.
    sample = times[: min(n_windows, 3)].ravel()
    frames = [item.frame for item in iter_frames_at(video, sample, 0.0, info=info) if item.frame is not None]
    with make_detector(face.detector, face.min_confidence) as detector:
        boxes = [detector.detect(frame) for frame in frames]
        stages["face_detect"] = _entry(
            time_call(_cycling(frames, detector.detect), timing, per="frame"), face.frames_per_window
        )
    found = [(f, b) for f, b in zip(frames, boxes) if b is not None]
    if not found:
        from ..runtime.face.crop import center_square_box

        found = [(f, center_square_box(f.shape[1], f.shape[0])) for f in frames]

    def crop(pair: tuple[np.ndarray, Any]) -> np.ndarray:
        frame, box = pair
        grown = expand_box(box, face.box_expand, width=frame.shape[1], height=frame.shape[0])
        return crop_pad_resize(frame, grown, face.frame_size)

    stages["crop"] = _entry(time_call(_cycling(found, crop), timing, per="frame"), face.frames_per_window)
    crops, _ = random_bags(spec, 1)
    stages["normalise"] = _entry(time_call(lambda: normalize(crops, face.mean, face.std), timing, per="bag"), 1.0)
    return {
        "recording": {
            "video": str(Path(video).name),
            "eeg": str(Path(eeg).name),
            "seconds": round(eeg_s, 3),
            "n_windows": n_windows,
            "video_info": info.to_dict(),
            "faces_found_in_sample": f"{sum(b is not None for b in boxes)}/{len(frames)}",
            "ica": ica,
        },
        "stages": stages,
    }


def random_bags(spec: ModelSpec, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` bags of seeded random inputs: crops (n, F, S, S, 3) uint8, eeg (n, C, T) float32 (uV)."""
    rng = np.random.default_rng(seed)
    f, s = spec.face.frames_per_window, spec.face.frame_size
    crops = rng.integers(0, 256, (n, f, s, s, 3), dtype=np.uint8)
    eeg = (20.0 * rng.standard_normal((n, spec.eeg.n_channels, spec.eeg.window_samples))).astype(np.float32)
    return crops, eeg


def measure_model_stages(
    model_dir: str | os.PathLike[str],
    precision: str,
    timing: TimingConfig,
    *,
    backend: str = "ort",
    device: str = "cpu",
    threads: int | None = None,
) -> dict[str, Any]:
    """Time ``backbone`` (F frames, one call) and ``fusion`` (one bag) at ``precision``.

    Returns ``{'settings': BagScorer.settings, 'session_s': s, 'stages': {stage: summary + per_window_s}}``.
    """
    from ..runtime.face.crop import normalize
    from ..runtime.scoring import BagScorer

    with BagScorer(
        model_dir, backend=backend, device=device, precision=precision, batch=1, intra_op_threads=threads  # type: ignore[arg-type]
    ) as pipe:
        spec, g = pipe.spec, pipe.spec.graph
        f, s = spec.face.frames_per_window, spec.face.frame_size
        crops, eeg = random_bags(spec, 1)
        frames = normalize(crops, spec.face.mean, spec.face.std).reshape(f, 3, s, s)  # (F, 3, S, S)
        tokens = pipe.swin.infer({g.backbone_input: frames})[g.backbone_output]
        tokens = tokens.reshape(1, f, g.tokens_per_frame, g.token_dim)  # (1, F, P, D)
        feed = dict(zip(g.fusion_inputs, (eeg, tokens)))
        backbone = time_call(lambda: pipe.swin.infer({g.backbone_input: frames}), timing, per="bag")
        fusion = time_call(lambda: pipe.fusion.infer(feed), timing, per="bag")
        return {
            "settings": pipe.settings,
            "session_s": pipe.load_s,
            "stages": {"backbone": _entry(backbone, 1.0), "fusion": _entry(fusion, 1.0)},
        }
