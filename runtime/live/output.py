"""Where live decisions go: JSON lines, an LSL outlet, a terminal view.

Each sink has ``emit(window)`` and ``close()``. The JSON line of a window
(:func:`window_record`) is the one format; the terminal view shows the same facts.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from .engine import LiveStats, LiveWindow

__all__ = ["JsonLines", "LiveView", "OutletSink", "summary_record", "window_record"]


def _r(x: float, nd: int = 6) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def window_record(w: LiveWindow, class_names: Sequence[str]) -> dict[str, Any]:
    """One JSON line: times in LSL seconds, ``status`` 'scored' / 'no-face' / 'skipped'.

    ``probabilities`` maps class -> p; ``selected_frame_times`` are the LSL times of the frames the
    MIL selection attended to, strongest first; ``flags`` the window's quality flags (offline's
    plus 'calibration'); ``latency_s`` window end -> decision out.
    """
    rec: dict[str, Any] = {"type": "window", "index": w.index, "start": _r(w.start), "end": _r(w.end)}
    p = w.prediction
    if p is None:
        rec.update(status="skipped", skipped=w.skipped, label=None, probabilities=None, selected_frame_times=[],
                   frame_times=[], flags=[])  # fmt: skip
    else:
        scored = p.label is not None
        rec.update(
            status="scored" if scored else "no-face",
            skipped=None,
            label=p.label,
            probabilities={c: _r(v) for c, v in zip(class_names, p.probabilities)} if scored else None,
            selected_frame_times=[_r(p.frame_times[i]) for i in p.selected] if scored else [],
            frame_times=[_r(t) for t in p.frame_times],
            faces_found=p.faces_found,
            flags=list(p.flags),
        )
    rec.update(latency_s=_r(w.latency_s, 4), calibration=w.calibration)
    return rec


def summary_record(stats: LiveStats, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The last JSON line: counts, skips by reason, steady-state latency p50/p95 (s)."""
    pct = stats.latency_percentiles()
    return {
        "type": "summary", "windows": stats.windows, "scored": stats.scored, "no_face": stats.no_face,
        "skipped": dict(stats.skipped),
        "latency_p50_s": _r(pct["p50"], 4), "latency_p95_s": _r(pct["p95"], 4),
        "latency_windows": len(stats.latencies), **(extra or {}),
    }  # fmt: skip


class JsonLines:
    """Appends one JSON line per decision to ``path``, flushed at once (a reader can tail it; a
    killed session leaves only whole lines)."""

    def __init__(self, path: str | os.PathLike[str], class_names: Sequence[str]) -> None:
        self.path = Path(path)
        self.class_names = tuple(class_names)
        self._file: TextIO = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def emit(self, w: LiveWindow) -> None:
        self.write(window_record(w, self.class_names))

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class OutletSink:
    """Pushes each scored window's probabilities to an LSL outlet, stamped with the window's end."""

    def __init__(self, name: str, class_names: Sequence[str]) -> None:
        from .lsl import ProbabilityOutlet

        self.outlet = ProbabilityOutlet(name, class_names)

    def emit(self, w: LiveWindow) -> None:
        if w.prediction is not None and w.prediction.label is not None:
            self.outlet.push(w.prediction.probabilities, w.end)

    def close(self) -> None:
        self.outlet.close()


class LiveView:
    """A rich table of the latest decisions on stderr (a line per decision when not a terminal)."""

    def __init__(self, class_names: Sequence[str], stats: LiveStats, *, rows: int = 12) -> None:
        from rich.console import Console
        from rich.live import Live

        self.class_names, self.stats = tuple(class_names), stats
        self.console = Console(stderr=True)
        self.recent: deque[LiveWindow] = deque(maxlen=rows)
        self._live = Live(self._table(), console=self.console, transient=False) if self.console.is_terminal else None
        if self._live is not None:
            self._live.start()

    def _line(self, w: LiveWindow) -> list[str]:
        p = w.prediction
        if p is None:
            what, probs, flags = f"[yellow]skipped: {w.skipped}[/]", "", ""
        elif p.label is None:
            what, probs, flags = "[yellow]no face[/]", "", ", ".join(p.flags)
        else:
            what = f"[bold]{p.label}[/]"
            probs = " ".join(f"{c} {v:.2f}" for c, v in zip(self.class_names, p.probabilities))
            flags = ", ".join(p.flags)
        return [str(w.index), f"{w.start:.2f}", what, probs, f"{w.latency_s * 1000:.0f}", flags]

    def _table(self) -> Any:
        from rich.table import Table

        pct = self.stats.latency_percentiles()
        lat = "-" if pct["p50"] is None else f"p50 {pct['p50'] * 1000:.0f} ms, p95 {pct['p95'] * 1000:.0f} ms"
        skipped = sum(self.stats.skipped.values())
        table = Table(title=f"milmer live: {self.stats.scored} scored, {skipped} skipped; latency {lat}")
        for col in ("#", "start (LSL s)", "emotion", "probabilities", "latency ms", "flags"):
            table.add_column(col)
        for w in self.recent:
            table.add_row(*self._line(w))
        return table

    def emit(self, w: LiveWindow) -> None:
        self.recent.append(w)
        if self._live is not None:
            self._live.update(self._table())
        else:
            self.console.print(" | ".join(self._line(w)), highlight=False)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
