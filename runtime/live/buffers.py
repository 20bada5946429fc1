"""Thread-safe rolling buffers of what arrived: EEG samples and video frames, with their LSL times.

Writers (the LSL reader thread, the video thread) append; the engine reads windows out. Each
buffer keeps a bounded history (``keep_s`` seconds behind the newest item), so memory is flat over
hours. Samples are counted from the first one received (``n_total``): window positions in the
EEG are sample indices of the stream, the same indices a recording of it has.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

__all__ = ["EEGBuffer", "EEGSlice", "FrameBuffer"]


@dataclass(frozen=True)
class EEGSlice:
    """Samples ``first .. first + n`` of the stream: data (C, n) float64 as sent, stamps (n,) s."""

    first: int
    data: np.ndarray
    stamps: np.ndarray


class EEGBuffer:
    """The last ``keep_s`` seconds of a ``(C,)``-sample stream at ``sfreq`` Hz.

    A gap is two consecutive samples more than ``gap_s`` apart in LSL time (samples the amplifier
    or the network lost); :meth:`gaps_between` finds them.
    """

    def __init__(self, n_channels: int, sfreq: float, keep_s: float) -> None:
        self.n_channels, self.sfreq = n_channels, sfreq
        self.capacity = int(np.ceil(keep_s * sfreq)) + 1
        self._data = np.zeros((n_channels, self.capacity), np.float64)  # (C, capacity) ring
        self._stamps = np.full(self.capacity, np.nan)
        self.n_total = 0
        self.gap_s = max(2.5 / sfreq, 0.02)
        self._lock = threading.Lock()

    def append(self, samples: np.ndarray, stamps: np.ndarray) -> None:
        """samples (n, C), stamps (n,) LSL seconds."""
        with self._lock:
            for k in range(0, len(stamps), self.capacity):
                part, st = samples[k : k + self.capacity], stamps[k : k + self.capacity]
                idx = (self.n_total + np.arange(len(st))) % self.capacity
                self._data[:, idx] = part.T
                self._stamps[idx] = st
                self.n_total += len(st)

    @property
    def first_kept(self) -> int:
        return max(0, self.n_total - self.capacity)

    def last_stamp(self) -> float:
        with self._lock:
            return float(self._stamps[(self.n_total - 1) % self.capacity]) if self.n_total else float("-inf")

    def oldest_stamp(self) -> float:
        """Timestamp of the oldest sample kept (-inf before any)."""
        with self._lock:
            return float(self._stamps[self.first_kept % self.capacity]) if self.n_total else float("-inf")

    def index_at(self, t: float) -> int | None:
        """Index of the first kept sample stamped at or after ``t`` (half a sample early counts);
        None when no kept sample is that late yet."""
        with self._lock:
            lo, hi = self.first_kept, self.n_total
            idx = np.arange(lo, hi) % self.capacity
            stamps = self._stamps[idx]
        k = int(np.searchsorted(stamps, t - 0.5 / self.sfreq))
        return lo + k if k < len(stamps) else None

    def read(self, first: int, n: int) -> EEGSlice | None:
        """Samples ``first .. first + n`` (None unless all of them are kept)."""
        with self._lock:
            if first < self.first_kept or first + n > self.n_total or n <= 0:
                return None
            idx = np.arange(first, first + n) % self.capacity
            return EEGSlice(first, self._data[:, idx].copy(), self._stamps[idx].copy())

    def gaps_between(self, sl: EEGSlice) -> np.ndarray:
        """Positions ``k`` in ``sl`` where samples ``k-1`` and ``k`` are more than ``gap_s`` apart."""
        return np.flatnonzero(np.diff(sl.stamps) > self.gap_s) + 1


class FrameBuffer:
    """The last ``keep_s`` seconds of video frames, each (H, W, 3) uint8 RGB with its LSL arrival time."""

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self._frames: list[np.ndarray] = []
        self._stamps: list[float] = []
        self.n_total = 0
        #: arrival time of the first frame ever received (None before it)
        self.first_stamp: float | None = None
        self._lock = threading.Lock()

    def append(self, frame: np.ndarray, stamp: float) -> None:
        with self._lock:
            if self.first_stamp is None:
                self.first_stamp = stamp
            self._frames.append(frame)
            self._stamps.append(stamp)
            self.n_total += 1
            cut = 0
            while cut < len(self._stamps) and self._stamps[cut] < stamp - self.keep_s:
                cut += 1
            if cut:
                del self._frames[:cut], self._stamps[:cut]

    def last_stamp(self) -> float:
        with self._lock:
            return self._stamps[-1] if self._stamps else float("-inf")

    def oldest_stamp(self) -> float:
        """Arrival time of the oldest frame kept (-inf before any)."""
        with self._lock:
            return self._stamps[0] if self._stamps else float("-inf")

    def interval_s(self) -> float:
        """Median spacing of the kept frames (s); 1/30 s before two frames are in."""
        with self._lock:
            stamps = np.asarray(self._stamps)
        return float(np.median(np.diff(stamps))) if len(stamps) > 2 else 1 / 30.0

    def nearest(self, times: np.ndarray) -> tuple[list[np.ndarray | None], np.ndarray]:
        """For each requested time (F,): the nearest kept frame (None when none is kept) and its
        stamp (NaN then). Ties go to the earlier frame."""
        with self._lock:
            stamps = np.asarray(self._stamps)
            frames = list(self._frames)
        out: list[np.ndarray | None] = []
        got = np.full(len(times), np.nan)
        if not len(stamps):
            return [None] * len(times), got
        for i, t in enumerate(times):
            k = int(np.searchsorted(stamps, t))
            cands = [j for j in (k - 1, k) if 0 <= j < len(stamps)]
            j = min(cands, key=lambda c: (abs(stamps[c] - t), stamps[c]))
            out.append(frames[j])
            got[i] = stamps[j]
        return out, got
