"""The preprocessed form of a recording: what the model sees, window by window."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["EEGWindows", "FaceWindows"]


@dataclass
class EEGWindows:
    """EEG cut into windows.

    data:   (W, C, T) float32, channels in the spec's order, T = spec.eeg.window_samples
    starts: (W,) float64 window start times in seconds from the EEG recording's start
    info:   what preprocessing did (ICA components excluded, channels renamed, ...), JSON-able
    flags:  (W,) per window, what makes it less trustworthy: ``'bad-span:<annotation>'`` (it
            overlaps a BAD_* span of the file), ``'interpolated:<channels>'`` (some of its
            channels were interpolated); empty when nothing is known against it
    """

    data: np.ndarray
    starts: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    flags: list[tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        assert self.data.ndim == 3 and self.data.dtype == np.float32, (self.data.shape, self.data.dtype)
        assert self.starts.shape == (self.data.shape[0],), (self.starts.shape, self.data.shape)
        if self.flags is None:
            self.flags = [() for _ in range(self.data.shape[0])]
        self.flags = [tuple(f) for f in self.flags]
        assert len(self.flags) == self.data.shape[0], (len(self.flags), self.data.shape)

    def select(self, mask: np.ndarray) -> EEGWindows:
        """The windows where ``mask`` (W,) bool is True (``info`` shared). Data: ``self.data``
        itself when every window is kept, else a copy made a window at a time (in a scratch file
        when large, see :mod:`.scratch`: a long recording's windows never all in memory)."""
        from .scratch import empty, release

        assert self.flags is not None
        mask = np.asarray(mask, bool)
        if mask.all():
            data = self.data
        else:
            data = empty((int(mask.sum()), *self.data.shape[1:]), self.data.dtype)
            for j, i in enumerate(np.flatnonzero(mask)):
                data[j] = self.data[i]
                if j % 256 == 255:
                    release(self.data)
                    release(data)
            release(self.data)
            release(data)
        return EEGWindows(
            data=data,
            starts=self.starts[mask],
            info=self.info,
            flags=[f for f, m in zip(self.flags, mask) if m],
        )


@dataclass
class FaceWindows:
    """Face crops for each EEG window.

    frames:      (W, F, S, S, 3) uint8 RGB crops, F = frames per window, S = frame size
    found:       (W, F) bool, True where the detector found a face in that frame (else the crop
                 reuses the nearest detected box in the window)
    timestamps:  (W, F) float64 video time (s) of each chosen frame; NaN where the sampled time
                 lies outside the video (that crop is black)
    info:        counts and settings (detector, frames without a face, windows without a face)
    flags:       (W, F) uint8 per-frame flags (bits of ``face.extract.FRAME_FLAGS``: no face,
                 timing off, several faces, outside the video); None when not known
    """

    frames: np.ndarray
    found: np.ndarray
    timestamps: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    flags: np.ndarray | None = None

    @property
    def window_has_face(self) -> np.ndarray:
        """(W,) bool: at least one frame of the window had a detected face."""
        return self.found.any(axis=1)
