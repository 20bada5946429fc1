"""Live decision latency and replay agreement: ``milmer live`` on the demo recording over loopback LSL.

The demo recording's EEG is played into an LSL outlet at its real pace
(:class:`~milmer.runtime.live.player.EEGPlayer`) and its video file at its pace; ``milmer live``
(:func:`~milmer.runtime.live.session.run_live`) scores every window with ``--record``. Reported:

- decision latency (window end -> prediction out, LSL clock) p50/p95 over the steady-state windows
  (after the calibration), the session's own figure;
- replay agreement: the recording through the offline pipeline (what ``milmer-infer`` runs), the
  share of windows whose labels match the live ones, and the largest probability difference.

It runs for ``seconds`` of wall time (real pace). ``milmer bench --live SECONDS`` calls it.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["live_line", "measure_live"]


def measure_live(
    model: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    seconds: int = 60,
    calibration_s: float = 30.0,
    lookahead_s: float = 0.0,
    hop_s: float = 3.0,
    backend: str = "ort",
    device: str = "cpu",
    precision: str = "fp32",
    threads: int | None = None,
) -> dict[str, Any]:
    """Play ``seconds`` of the demo recording live; return (and write ``out/live_latency.json``) the figures."""
    from milmer.synthetic.recording_writer import write_recording
    from milmer.runtime.live.engine import LiveConfig
    from milmer.runtime.live.player import EEGPlayer
    from milmer.runtime.live.session import LiveRequest, run_live
    from milmer.runtime.pipeline import Pipeline
    from milmer.runtime.recording import RecordingOptions

    from .machine import load_average, machine_info

    out = Path(out)
    work = out / "live"
    work.mkdir(parents=True, exist_ok=True)
    # The video runs 3 s past the EEG: the camera is on before the EEG starts and after it ends.
    _, paths = write_recording(work / "demo", duration_s=int(seconds + lookahead_s + 3), fps=25.0, seed=0)
    name = f"milmer-bench-{uuid.uuid4().hex[:8]}"
    player = EEGPlayer.from_file(name, str(paths["eeg"]), seconds=seconds + lookahead_s).start()
    record = work / f"record-{name}"
    jsonl = work / "live.jsonl"
    try:
        summary = run_live(
            LiveRequest(
                model=Path(model), eeg_stream=name, video=str(paths["video"]),
                config=LiveConfig(
                    hop_s=hop_s, calibration_s=calibration_s, lookahead_s=lookahead_s, duration_s=seconds + 30.0
                ),
                out=jsonl, record=record, backend=backend, device=device, precision=precision, threads=threads,
                view=False,
            )
        )
    finally:
        player.close()
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    live = [r for r in lines if r["type"] == "window" and r["status"] == "scored"]
    alignment = json.loads((record / "alignment.json").read_text())
    options = RecordingOptions(offset_s=alignment["offset_s"])
    with Pipeline(model, backend=backend, device=device, precision=precision, intra_op_threads=threads) as pipe:  # type: ignore[arg-type]
        offline = pipe.predict(record / "video.mkv", record / "eeg_raw.fif", options=options)
    t0 = float(np.load(record / "eeg_times.npy")[0])
    # Offline windows start every 3 s from the EEG's start: with another --hop, the live windows
    # that start at those times are compared.
    by_start = {round(w.start, 3): w for w in offline.windows if w.label is not None}
    pairs = [(r, by_start.get(round(r["start"] - t0, 3))) for r in live]
    pairs = [(r, w) for r, w in pairs if w is not None]
    agree = float(np.mean([r["label"] == w.label for r, w in pairs])) if pairs else None
    dprob = max((float(np.max(np.abs(np.array([r["probabilities"][c] for c in offline.class_names]) - w.probabilities)))
                 for r, w in pairs), default=None)  # fmt: skip
    result = {
        "seconds": seconds, "calibration_s": calibration_s, "lookahead_s": lookahead_s, "hop_s": hop_s,
        "backend": backend, "device": device, "precision": precision,
        "windows": summary["windows"], "scored": summary["scored"], "skipped": summary["skipped"],
        "latency_p50_s": summary["latency_p50_s"], "latency_p95_s": summary["latency_p95_s"],
        "latency_windows": summary["latency_windows"],
        "replay_windows": len(pairs), "replay_label_agreement": agree, "replay_max_prob_diff": dprob,
        "machine": machine_info(), "load_average": load_average(),
    }  # fmt: skip
    tmp = out / "live_latency.json.tmp"
    tmp.write_text(json.dumps(result, indent=2), encoding="utf-8")
    tmp.replace(out / "live_latency.json")
    return result


def live_line(res: dict[str, Any]) -> str:
    """One line for the terminal: latency p50/p95, skips, replay agreement, machine load."""

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.0f} ms"

    agree = "-" if res["replay_label_agreement"] is None else f"{res['replay_label_agreement']:.0%}"
    dprob = "-" if res["replay_max_prob_diff"] is None else f"{res['replay_max_prob_diff']:.3f}"
    return (
        f"live ({res['seconds']} s, lookahead {res['lookahead_s']:g} s): decision latency "
        f"p50 {ms(res['latency_p50_s'])}, p95 {ms(res['latency_p95_s'])} over {res['latency_windows']} windows; "
        f"{res['scored']} scored, skipped {res['skipped'] or 'none'}; replay with milmer-infer: {agree} labels "
        f"agree over {res['replay_windows']} windows (max |d prob| {dprob}); load average {res['load_average']}"
    )


if __name__ == "__main__":  # pragma: no cover - python -m milmer.benchmarks.live_latency MODEL OUT [S] [LOOKAHEAD]
    import sys

    args = sys.argv[1:]
    res = measure_live(args[0], args[1], seconds=int(args[2]) if len(args) > 2 else 60,
                       lookahead_s=float(args[3]) if len(args) > 3 else 0.0)  # fmt: skip
    print(live_line(res))
