"""A torch Dataset over cached DEAP windows, normalised by the runtime's own function.

Each item is ``(eeg, frames, label)``:

- ``eeg``:    (32, 384) float32, microvolts, exactly as ``runtime.eeg.preprocess`` wrote it;
- ``frames``: (10, 3, 224, 224) float32, ``runtime.face.crop.normalize(crops, spec.face.mean,
  spec.face.std)``, the normalisation the deployed pipeline applies;
- ``label``:  int64 class index under ``spec.label_scheme``.

Augmentation is off by default. When on (:class:`Augment`), it flips a whole bag of frames
horizontally (faces are roughly symmetric; every frame of the bag flips together so the bag stays
one scene) and adds Gaussian noise to the EEG scaled to each channel's standard deviation in the
window. Random draws use torch's RNG (see :func:`make_loader` for how it is seeded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch.utils.data import DataLoader, Dataset

from ..runtime.check import check_array, check_equal, check_int, check_number
from ..runtime.face.crop import normalize
from ..runtime.spec import ModelSpec
from .window_cache import CachedWindows

__all__ = ["Augment", "WindowDataset", "make_loader"]


@dataclass(frozen=True)
class Augment:
    """Light augmentation. hflip_p: chance to mirror a bag; eeg_noise: noise std / channel std."""

    hflip_p: float = 0.5
    eeg_noise: float = 0.05

    def __post_init__(self) -> None:
        check_number("hflip_p", self.hflip_p, low=0, high=1)
        check_number("eeg_noise", self.eeg_noise, low=0, finite=True)


class WindowDataset(Dataset):
    """Windows ``indices`` of ``cache`` (default: all) as model inputs; see the module docstring.

    labels: (N,) class index of every window of the cache (default: from its ratings under
            ``spec.label_scheme``); indexed by the same window numbers as ``cache``.
    """

    def __init__(
        self,
        cache: CachedWindows,
        spec: ModelSpec,
        indices: ArrayLike | None = None,
        *,
        labels: ArrayLike | None = None,
        augment: Augment | None = None,
    ) -> None:
        n = len(cache)
        self.cache = cache
        self.spec = spec
        self.indices = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
        check_array("indices", self.indices, shape=("N",), low=0, high=n - 1, what="a 1-D array of window numbers")
        expected_eeg = (spec.eeg.n_channels, spec.eeg.window_samples)
        expected_faces = (spec.face.frames_per_window, spec.face.frame_size, spec.face.frame_size, 3)
        check_equal(
            "spec", (expected_eeg, expected_faces), (cache.eeg.shape[1:], cache.faces.shape[1:]),
            why="the (EEG, faces) window shapes the cache holds", hint="build the cache with this spec",
        )
        self.labels = cache.labels(spec.label_scheme) if labels is None else np.asarray(labels, dtype=np.int64)
        check_array("labels", self.labels, shape=(n,))
        self.augment = augment
        self._mean, self._std = spec.face.mean, spec.face.std

    def __len__(self) -> int:
        return self.indices.size

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w = int(self.indices[i])
        eeg = torch.from_numpy(np.array(self.cache.eeg[w], dtype=np.float32))  # (32, 384), a copy
        frames = torch.from_numpy(normalize(self.cache.faces[w], self._mean, self._std))  # (10, 3, 224, 224)
        if self.augment is not None:
            eeg, frames = self._augment(eeg, frames)
        return eeg, frames, torch.tensor(self.labels[w], dtype=torch.int64)

    def _augment(self, eeg: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        aug = self.augment
        assert aug is not None
        if aug.hflip_p > 0 and torch.rand(()) < aug.hflip_p:
            frames = frames.flip(-1)
        if aug.eeg_noise > 0:
            eeg = eeg + aug.eeg_noise * eeg.std(dim=-1, keepdim=True) * torch.randn_like(eeg)
        return eeg, frames


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader whose shuffling order depends only on ``seed``.

    With ``num_workers > 0`` DataLoader also seeds each worker's torch RNG from this generator,
    so augmentation repeats too; with ``num_workers=0`` augmentation draws from torch's global
    RNG (seed it with ``torch.manual_seed``).
    """
    check_int("batch_size", batch_size, low=1)
    check_int("num_workers", num_workers, low=0)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=generator,
        persistent_workers=num_workers > 0,
    )
