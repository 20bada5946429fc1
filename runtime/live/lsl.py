"""Lab Streaming Layer (LSL) through ``pylsl``: find the EEG stream, read it, publish the output.

``pylsl`` comes with the ``live`` extra (``pip install 'milmer[live]'``); its x86_64 wheels bundle
liblsl, its linux-aarch64 wheels (a Jetson) need a system liblsl (docs/live.md). Nothing here is
imported until a live command runs, and a missing library is a :class:`~..check.MilmerInputError`
(exit 2) that names the extra.

Time: every timestamp is in the LSL clock of this machine (``pylsl.local_clock()``, seconds,
monotonic). EEG samples carry the sender's timestamps, corrected into our clock by the inlet's
clock synchronisation (``proc_clocksync``: LSL's estimate of the sender-to-receiver clock offset,
refreshed every few seconds); the offsets it measured are kept (:attr:`EEGInlet.clock_offsets`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..check import MilmerInputError, check_number, check_option

__all__ = ["EEGInlet", "EEGStreamInfo", "ProbabilityOutlet", "import_pylsl", "local_clock", "resolve_eeg"]

#: How the user gets LSL, said by every error about it.
INSTALL_HINT = (
    "install the live extra: pip install 'milmer[live]' (pylsl; on linux-aarch64, e.g. a Jetson, also a "
    "system liblsl: see the Live section of the docs)"
)


def import_pylsl() -> Any:
    """``pylsl``, or a :class:`MilmerInputError` naming the ``live`` extra (exit 2)."""
    try:
        import pylsl
    except ImportError as err:  # the package is missing
        raise MilmerInputError(
            f"milmer live needs the Lab Streaming Layer library pylsl, which is not installed: {INSTALL_HINT}."
        ) from err
    except RuntimeError as err:  # pylsl is there, liblsl is not (aarch64 pure-Python wheels)
        raise MilmerInputError(f"pylsl could not load liblsl ({err}): {INSTALL_HINT}.") from err
    return pylsl


def local_clock() -> float:
    """Now, in the LSL clock (s)."""
    return float(import_pylsl().local_clock())


@dataclass(frozen=True)
class EEGStreamInfo:
    """What the EEG stream says about itself (from its LSL description).

    channels: labels from ``desc/channels/channel/label`` (``Ch1``..``ChN`` when it has none,
              with ``labelled=False``); types from ``desc/channels/channel/type`` (lower case,
              'eeg' when absent); units from ``.../unit`` ('' when absent)
    """

    name: str
    type: str
    source_id: str
    hostname: str
    sfreq: float
    channels: tuple[str, ...]
    types: tuple[str, ...]
    units: tuple[str, ...]
    labelled: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _describe(info: Any) -> EEGStreamInfo:
    n = int(info.channel_count())
    labels, types, units = [], [], []
    ch = info.desc().child("channels").child("channel")
    while not ch.empty() and len(labels) < n:
        labels.append(ch.child_value("label"))
        types.append((ch.child_value("type") or "eeg").lower())
        units.append(ch.child_value("unit"))
        ch = ch.next_sibling()
    labelled = len(labels) == n and all(labels)
    if not labelled:
        labels, types, units = [f"Ch{i + 1}" for i in range(n)], ["eeg"] * n, [""] * n
    return EEGStreamInfo(
        name=info.name(), type=info.type(), source_id=info.source_id(), hostname=info.hostname(),
        sfreq=float(info.nominal_srate()), channels=tuple(labels), types=tuple(types), units=tuple(units),
        labelled=labelled,
    )


def resolve_eeg(name: str | None, *, stream_type: str | None = None, timeout_s: float = 10.0) -> Any:
    """The LSL ``StreamInfo`` of the EEG stream called ``name`` (or, without a name, of type
    ``stream_type``); a :class:`MilmerInputError` naming the streams that are there otherwise."""
    pylsl = import_pylsl()
    prop, value = ("name", name) if name else ("type", stream_type or "EEG")
    found = pylsl.resolve_byprop(prop, value, 0, timeout_s)
    if not found:
        # A stream that answers only now, after the wait, is no answer: leave it out of the list.
        there = sorted({getattr(s, prop)() for s in pylsl.resolve_streams(1.0)} - {value})
        check_option(
            "--eeg-stream", value, there, among=f"the stream {prop}s on the network",
            hint=f"no LSL stream with {prop} {value!r} answered within {timeout_s:g} s: start the amplifier's "
            "LSL app (or check the network: LSL finds streams by UDP multicast on the local network)",
        )
    if len(found) > 1:
        seen = ", ".join(f"{s.name()!r} (source {s.source_id()!r} on {s.hostname()})" for s in found)
        names = sorted({s.name() for s in found})
        way = (
            f"pick one with --eeg-stream NAME (e.g. --eeg-stream {names[0]!r})" if len(names) == len(found)
            else "they share a name: rename one in its LSL app, or stop the others"
        )  # fmt: skip
        raise MilmerInputError(
            f"Invalid value for '--eeg-stream': {len(found)} LSL streams have {prop} {value!r}: {seen}; {way}."
        )
    info = found[0]
    check_number(
        "--eeg-stream", info.nominal_srate(), low=0, low_open=True, unit="a nominal sampling rate in Hz",
        hint=f"stream {info.name()!r} has an irregular rate (LSL's 0); milmer needs an EEG stream with a fixed rate",
    )
    return info


class EEGInlet:
    """Pulls the EEG stream in a background thread and hands each chunk to ``sink``.

    sink(samples (n, C) float64, timestamps (n,) float64 LSL seconds, corrected) is called from
    the reader thread in arrival order. Stop with :meth:`close` (joins the thread).
    """

    def __init__(self, stream: Any, sink: Callable[[np.ndarray, np.ndarray], None], *, max_buflen_s: int = 360) -> None:
        pylsl = import_pylsl()
        flags = pylsl.proc_clocksync | pylsl.proc_monotonize
        self._inlet = pylsl.StreamInlet(stream, max_buflen=max_buflen_s, recover=True, processing_flags=flags)
        self.info = _describe(self._inlet.info(timeout=10.0))
        self.sink = sink
        #: (local_clock(), offset s) pairs measured by LSL's clock synchronisation
        self.clock_offsets: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="milmer-lsl-eeg", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> EEGInlet:
        self._inlet.open_stream(timeout=10.0)
        self._offset()
        self._thread.start()
        return self

    def _offset(self) -> None:
        try:
            self.clock_offsets.append((local_clock(), float(self._inlet.time_correction(timeout=2.0))))
        except Exception:  # noqa: BLE001 - a lost stream: the last offset stays in use (LSL's own rule)
            pass

    def _run(self) -> None:
        most = max(1, int(self.info.sfreq))  # up to 1 s per pull
        last_offset = local_clock()
        try:
            while not self._stop.is_set():
                samples, stamps = self._inlet.pull_chunk(timeout=0.05, max_samples=most)
                if stamps:
                    self.sink(np.asarray(samples, np.float64), np.asarray(stamps, np.float64))
                if local_clock() - last_offset > 5.0:
                    self._offset()
                    last_offset = local_clock()
        except BaseException as err:  # noqa: BLE001 - handed to the engine, which reports it
            self.error = err

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self._inlet.close_stream()


class ProbabilityOutlet:
    """An LSL outlet of the class probabilities, one sample per scored window.

    Stream: type 'Emotion', ``len(class_names)`` float32 channels labelled with the class names,
    irregular rate; each sample's timestamp is the window's end (LSL time), so a consumer can
    align it with its own data.
    """

    def __init__(self, name: str, class_names: Sequence[str], *, source_id: str = "milmer-live") -> None:
        pylsl = import_pylsl()
        info = pylsl.StreamInfo(name, "Emotion", len(class_names), pylsl.IRREGULAR_RATE, "float32", source_id)
        chans = info.desc().append_child("channels")
        for c in class_names:
            ch = chans.append_child("channel")
            ch.append_child_value("label", c)
            ch.append_child_value("type", "probability")
            ch.append_child_value("unit", "1")
        info.desc().append_child_value("manufacturer", "milmer")
        self._outlet = pylsl.StreamOutlet(info)

    def push(self, probabilities: np.ndarray, timestamp: float) -> None:
        self._outlet.push_sample(np.asarray(probabilities, np.float32).tolist(), timestamp)

    def close(self) -> None:
        del self._outlet
