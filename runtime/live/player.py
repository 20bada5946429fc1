"""Play an EEG recording into an LSL outlet at its real pace: a stand-in for an amplifier, for
trying ``milmer live`` (and its benchmarks and tests) without a headset.

Samples go out in chunks of 1/16 s, each stamped ``t0 + i / sfreq`` in the LSL clock (``t0``: when
the first consumer connected), with the channel labels, types and unit (microvolts) in the
stream's description. Faults can be injected: ``drop`` never sends a span, ``stall`` holds a span
back and sends it ``hold_s`` after the span's end (a stalled amplifier or network).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np

from .lsl import import_pylsl

__all__ = ["EEGPlayer"]


class EEGPlayer:
    """Push ``data`` (n, C) microvolts at ``sfreq`` through an LSL outlet called ``name`` (thread).

    drop:  (start_s, end_s) recording seconds whose samples are never sent
    stall: (start_s, end_s) recording seconds held back until ``end_s + hold_s`` (and everything
           after them meanwhile: LSL keeps order)
    """

    def __init__(
        self,
        name: str,
        data: np.ndarray,
        sfreq: float,
        channels: Sequence[str],
        types: Sequence[str],
        *,
        drop: tuple[float, float] | None = None,
        stall: tuple[float, float] | None = None,
        hold_s: float = 4.0,
    ) -> None:
        pylsl = self._lsl = import_pylsl()
        info = pylsl.StreamInfo(name, "EEG", data.shape[1], sfreq, "float32", f"milmer-player-{name}")
        chans = info.desc().append_child("channels")
        for c, t in zip(channels, types):
            ch = chans.append_child("channel")
            ch.append_child_value("label", c)
            ch.append_child_value("type", t.upper())
            ch.append_child_value("unit", "microvolts")
        self.outlet = pylsl.StreamOutlet(info, chunk_size=0, max_buffered=60)
        self.data, self.sfreq, self.drop, self.stall, self.hold_s = data, sfreq, drop, stall, hold_s
        self.thread = threading.Thread(target=self._run, name="milmer-eeg-player", daemon=True)
        self.t0: float | None = None
        self.done = threading.Event()
        self._stop = threading.Event()

    @classmethod
    def from_file(cls, name: str, path: str, *, seconds: float | None = None, **kwargs: object) -> EEGPlayer:
        """A player of an EEG file (anything MNE reads), ``seconds`` of it (None: all)."""
        from ..eeg.io import read_raw

        raw = read_raw(path)
        raw.load_data(verbose="error")
        data = raw.get_data().T * 1e6  # (n, C) microvolts
        if seconds is not None:
            data = data[: int(round(seconds * raw.info["sfreq"]))]
        types = raw.get_channel_types()
        return cls(name, data, float(raw.info["sfreq"]), raw.ch_names, types, **kwargs)  # type: ignore[arg-type]

    def start(self) -> EEGPlayer:
        self.thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(5.0)

    def _push(self, d: np.ndarray, stamps: np.ndarray) -> None:
        self.outlet.push_chunk(np.ascontiguousarray(d, np.float32), stamps.tolist())

    def _run(self) -> None:
        pylsl = self._lsl
        while not self.outlet.wait_for_consumers(0.2):
            if self._stop.is_set():
                return
        time.sleep(0.2)  # the consumer finishes opening the stream
        n, chunk = len(self.data), max(1, int(self.sfreq // 16))
        t0 = self.t0 = pylsl.local_clock()
        held: list[tuple[np.ndarray, np.ndarray]] = []
        for a in range(0, n, chunk):
            if self._stop.is_set():
                return
            b = min(n, a + chunk)
            stamps = t0 + np.arange(a, b) / self.sfreq
            delay = stamps[-1] - pylsl.local_clock()
            if delay > 0:
                time.sleep(delay)
            sec = a / self.sfreq
            if self.drop and self.drop[0] <= sec < self.drop[1]:
                continue
            if self.stall and held and sec >= self.stall[1] + self.hold_s:
                for d, s in held:
                    self._push(d, s)
                held = []
            if (self.stall and self.stall[0] <= sec < self.stall[1]) or held:
                held.append((self.data[a:b], stamps))
                continue
            self._push(self.data[a:b], stamps)
        for d, s in held:
            self._push(d, s)
        self.done.set()
