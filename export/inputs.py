"""Inputs that exported graphs are checked on: random tensors and realistic demo bags.

Random inputs exercise every weight with unit-variance values; demo inputs have the statistics
the deployed model sees (real face pixels normalised the runtime's way, EEG in microvolts), so
a graph that only breaks on realistic value ranges (masks, overflow in fp16, int8 ranges) is
caught too. Demo bags come from a ``windows.npz`` written by ``milmer preprocess`` when one is
given, else they are synthesised: crops of the astronaut photo bundled with scikit-image cut
with the runtime's crop rule, and 1/f EEG with an alpha rhythm.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..runtime.check import check_array, check_nonempty, check_path_exists, check_same_length, read_error
from ..runtime.spec import ModelSpec

__all__ = ["InputSet", "random_inputs", "synthetic_demo_inputs", "load_demo_windows", "demo_inputs"]

# Synthetic EEG: broadband 1/f background plus an alpha rhythm, roughly scalp-EEG amplitudes.
_EEG_RMS_UV = 15.0
_ALPHA_HZ = 10.0
_ALPHA_UV = 8.0
# The astronaut photo's face, in pixels of the 512x512 image: centre and a typical box side.
_FACE_CENTER = (222.0, 115.0)
_FACE_SIDE = 150.0


@dataclass(frozen=True)
class InputSet:
    """Bags to run both graphs on.

    name:   'random', 'demo' or 'windows' (from a preprocessed recording)
    eeg:    (B, C, T) float32
    frames: (B, F, 3, S, S) float32, normalised
    """

    name: str
    eeg: np.ndarray
    frames: np.ndarray

    def __post_init__(self) -> None:
        assert self.eeg.dtype == np.float32 and self.frames.dtype == np.float32
        assert self.eeg.ndim == 3 and self.frames.ndim == 5 and len(self.eeg) == len(self.frames)

    @property
    def n_bags(self) -> int:
        return int(self.eeg.shape[0])

    def take(self, n_bags: int) -> InputSet:
        """The first ``n_bags`` bags."""
        return InputSet(self.name, self.eeg[:n_bags], self.frames[:n_bags])


def _shape(spec: ModelSpec) -> tuple[int, int, int, int]:
    return spec.eeg.n_channels, spec.eeg.window_samples, spec.face.frames_per_window, spec.face.frame_size


def random_inputs(spec: ModelSpec, n_bags: int, *, seed: int = 0) -> InputSet:
    """Standard-normal frames and EEG scaled to ~20 uV, from ``seed``."""
    c, t, f, s = _shape(spec)
    rng = np.random.default_rng(seed)
    eeg = (20.0 * rng.standard_normal((n_bags, c, t))).astype(np.float32)
    frames = rng.standard_normal((n_bags, f, 3, s, s)).astype(np.float32)
    return InputSet("random", eeg, frames)


def _pink_eeg(rng: np.random.Generator, n_bags: int, c: int, t: int, sfreq: float) -> np.ndarray:
    """(B, C, T) float32 microvolts: 1/f noise (1 Hz up) plus an alpha rhythm of random phase."""
    freqs = np.fft.rfftfreq(t, 1.0 / sfreq)
    amp = np.where(freqs >= 1.0, 1.0 / np.sqrt(np.maximum(freqs, 1.0)), 0.0)
    spectrum = np.fft.rfft(rng.standard_normal((n_bags, c, t)), axis=-1) * amp
    noise = np.fft.irfft(spectrum, n=t, axis=-1)
    noise *= _EEG_RMS_UV / noise.std(axis=-1, keepdims=True)
    times = np.arange(t) / sfreq
    phase = rng.uniform(0, 2 * np.pi, (n_bags, c, 1))
    alpha = _ALPHA_UV * rng.uniform(0.5, 1.5, (n_bags, c, 1)) * np.sin(2 * np.pi * _ALPHA_HZ * times + phase)
    return (noise + alpha).astype(np.float32)


def _face_crops(rng: np.random.Generator, n_bags: int, f: int, size: int) -> np.ndarray:
    """(B, F, S, S, 3) uint8 RGB: the astronaut's face, cut with the runtime's crop rule.

    Each bag gets its own box scale, position, brightness and mirroring; its frames move a
    little around that (like a face in a 3 s video), with sensor noise.
    """
    from skimage.data import astronaut

    from ..runtime.face.crop import crop_pad_resize
    from ..runtime.face.detect import Box

    image = astronaut()  # (512, 512, 3) uint8 RGB
    out = np.empty((n_bags, f, size, size, 3), np.uint8)
    for b in range(n_bags):
        side = _FACE_SIDE * rng.uniform(0.85, 1.25)
        cx, cy = np.asarray(_FACE_CENTER) + rng.uniform(-15, 15, 2)
        gain = rng.uniform(0.7, 1.2)
        mirror = rng.random() < 0.5
        for i in range(f):
            dx, dy = rng.normal(0, 3, 2)
            half = 0.5 * side * rng.uniform(0.97, 1.03)
            box = Box(cx + dx - half, cy + dy - half, cx + dx + half, cy + dy + half)
            crop = crop_pad_resize(image, box, size).astype(np.float32) * gain
            crop += rng.normal(0, 3, crop.shape)
            crop = np.clip(np.rint(crop), 0, 255).astype(np.uint8)
            out[b, i] = crop[:, ::-1] if mirror else crop
    return out


def synthetic_demo_inputs(spec: ModelSpec, n_bags: int, *, seed: int = 0) -> InputSet:
    """Realistic bags without a recording: photo face crops and synthetic EEG (see module doc)."""
    from ..runtime.face.crop import normalize

    c, t, f, s = _shape(spec)
    rng = np.random.default_rng(seed)
    eeg = _pink_eeg(rng, n_bags, c, t, spec.eeg.sfreq)
    frames = normalize(_face_crops(rng, n_bags, f, s), spec.face.mean, spec.face.std)
    return InputSet("demo", eeg, frames)


def load_demo_windows(
    path: str | os.PathLike[str], spec: ModelSpec, *, max_bags: int, name: str = "demo_windows"
) -> InputSet:
    """The first ``max_bags`` windows of a ``milmer preprocess`` output (``windows.npz`` or its folder).

    The file's ``eeg`` (W, C, T) float32 and ``faces`` (W, F, S, S, 3) uint8 must have the
    spec's sizes; faces are normalised with the spec's mean/std.
    """
    from ..runtime.face.crop import normalize

    path = Path(path)
    if path.is_dir():
        path = path / "windows.npz"
    check_path_exists(name, path)
    c, t, f, s = _shape(spec)
    try:
        with np.load(path, allow_pickle=False) as data:
            eeg, faces = data["eeg"][:max_bags], data["faces"][:max_bags]
    except (OSError, ValueError, KeyError) as err:
        raise read_error(name, path, err, what="windows file", hint="expected the windows.npz written by 'milmer preprocess'") from None
    spec_hint = "the windows must be made for this model's spec"
    check_array(name, eeg, shape=("W", c, t), what=f"eeg of shape (W, {c}, {t})", hint=spec_hint)
    check_array(name, faces, shape=("W", f, s, s, 3), dtype=np.uint8, what=f"faces of shape (W, {f}, {s}, {s}, 3) uint8", hint=spec_hint)
    check_same_length((f"{name} eeg", f"{name} faces"), (eeg, faces))
    check_nonempty(name, eeg, "window")
    frames = normalize(faces, spec.face.mean, spec.face.std)
    return InputSet("windows", np.ascontiguousarray(eeg, dtype=np.float32), frames)


def demo_inputs(
    spec: ModelSpec,
    n_bags: int,
    *,
    windows: str | os.PathLike[str] | None = None,
    seed: int = 0,
    name: str = "demo_windows",
) -> InputSet:
    """Real preprocessed windows from ``windows`` when given, else synthetic demo bags; ``name``
    is what errors call ``windows``."""
    if windows is not None:
        return load_demo_windows(windows, spec, max_bags=n_bags, name=name)
    return synthetic_demo_inputs(spec, n_bags, seed=seed)
