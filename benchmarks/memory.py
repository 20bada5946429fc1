"""Peak memory of EEG preprocessing on a long high-rate recording (``milmer bench``'s ``memory``).

A BioSemi-style BDF (32 EEG channels ``A1``..``A32``, 8 ``EXG`` inputs, ``Status``; 24-bit, 2048 Hz,
a 30 mV offset per channel as ActiveTwo files have) is written at bench time in one-second
records (pyedflib, never all in memory), then read and preprocessed in a fresh process the way
``milmer preprocess`` does it (:func:`~milmer.runtime.eeg.io.read_raw`,
:func:`~milmer.runtime.eeg.preprocess.preprocess_raw` with ``--channel-map biosemi32``). The
child's peak resident set size (/proc's ``VmHWM``; ``ru_maxrss`` where there is no /proc) is the
figure, never the parent's: on Linux a child's ``ru_maxrss`` starts at its parent's peak, so a
2 GB benchmark process would report 2 GB for a 60 s file; the target is
:data:`TARGET_MB` for any length and rate. Run alone::

    python -m milmer.benchmarks.memory --seconds 3600 --out ~/mem-bench

Measured on a busy 2-core CPU (AMD, AVX-512): peak RSS 353 MB for 1 h (both arrays still in memory),
261 MB for 3 h, 297 MB for 6 h, and 331 MB for 24 h of the same BDF at 256 Hz (what still scales with
the length is small: the kept-sample indices, int32, 1.8 MB per hour, a gap mask, 0.5 MB per hour,
per-window starts and flags): flat in length. The
two arrays that grow with it (the one full-length copy, 32 channels at the model's 128 Hz as
float64, 118 MB per hour, and the float32 windows, 59 MB per hour) live in a scratch file once
over :data:`~milmer.runtime.scratch.MAX_IN_MEMORY_BYTES` (``$MILMER_SCRATCH``, else under
the milmer home; about 0.2 GB of disk per hour), and every pass over them hands its pages back.
Before that: 351 MB for 1 h, 716 MB for 3 h, 1179 MB for 6 h (185 MB + 165 MB per hour, 2 GB
at about 11 h). The file's rate does not matter (it is read a minute at a time and resampled
straight to 128 Hz). A file under :data:`~milmer.runtime.eeg.decimate.MAX_FULL_RATE_BYTES`
of channels at its own rate is filtered there: 698 MB for 6.5 min, the most such a file takes.
Before the chunked resampling to 128 Hz: 641 MB for 1 h, 1159 MB for 2 h (a 256 Hz working copy and
full-length temporaries of the reference, notch and resampling, about 0.5 GB per hour).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TARGET_MB", "write_long_bdf", "measure_peak_rss", "measure_memory"]

#: Peak RSS target (MB) for preprocessing any recording: a 16 GB laptop keeps room for the rest.
TARGET_MB = 2048.0

_CHILD = r"""
import json, sys, time
from milmer.benchmarks.machine import own_peak_rss_mb
from milmer.runtime.eeg.io import read_raw
from milmer.runtime.eeg.preprocess import EEGInputOptions, preprocess_raw
from milmer.runtime.spec import EEGSpec
t = time.perf_counter()
notes = []
raw = read_raw(sys.argv[1], notes)
out = preprocess_raw(raw, EEGSpec(), options=EEGInputOptions(channel_map="biosemi32"))
print(json.dumps({
    "peak_rss_mb": own_peak_rss_mb(),
    "wall_s": time.perf_counter() - t,
    "n_windows": int(out.data.shape[0]),
    "notes": out.info["notes"],
    "timings": out.info["timings"],
}))
"""


def write_long_bdf(path: Path, seconds: int, sfreq: int = 2048, seed: int = 0) -> Path:
    """Write the BDF described in the module docstring, one-second records at a time."""
    import pyedflib

    rng = np.random.default_rng(seed)
    labels = [f"A{k}" for k in range(1, 33)] + [f"EXG{k}" for k in range(1, 9)] + ["Status"]
    writer = pyedflib.EdfWriter(str(path), len(labels), file_type=pyedflib.FILETYPE_BDFPLUS)
    try:
        headers = []
        for label in labels:
            status = label == "Status"
            headers.append({
                "label": label, "dimension": "" if status else "uV", "sample_frequency": sfreq,
                "physical_max": 262143, "physical_min": -262144,
                "digital_max": 8388607, "digital_min": -8388608, "transducer": "", "prefilter": "",
            })  # fmt: skip
        writer.setSignalHeaders(headers)
        offsets = rng.uniform(-30000.0, 30000.0, len(labels) - 1)  # uV
        t = np.arange(sfreq) / sfreq
        for second in range(seconds):
            block = offsets[:, None] + 20.0 * rng.standard_normal((len(labels) - 1, sfreq))
            block[:32] += 30.0 * np.sin(2 * np.pi * 10.0 * (second + t))  # alpha
            writer.writeSamples([*block, np.zeros(sfreq)])
    finally:
        writer.close()
    return path


def measure_peak_rss(path: Path, timeout_s: float = 3600.0) -> dict[str, Any]:
    """Read and preprocess ``path`` in a fresh Python process; its peak RSS (MB), wall time and
    window count."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, timeout=timeout_s,
        env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")},
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_memory(folder: Path, seconds: int = 3600, sfreq: int = 2048, log: Any = None) -> dict[str, Any]:
    """Write the long BDF into ``folder``, measure, delete it; the figures for ``bench.json``."""
    import importlib.util

    if importlib.util.find_spec("pyedflib") is None:
        return {"skipped": "pyedflib is not installed (pip install pyedflib): it writes the BDF", "target_mb": TARGET_MB}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"biosemi-{seconds}s-{sfreq}hz.bdf"
    if log:
        log(f"memory: writing a {seconds} s {sfreq} Hz BDF")
    tic = time.perf_counter()
    write_long_bdf(path, seconds, sfreq)
    file_mb = path.stat().st_size / 2**20
    if log:
        log(f"memory: preprocessing {file_mb:.0f} MB in a fresh process")
    try:
        run = measure_peak_rss(path)
    finally:
        path.unlink(missing_ok=True)
    peak = run.get("peak_rss_mb")
    return {
        "recording_s": seconds, "sfreq": sfreq, "channels": 41, "file_mb": round(file_mb, 1),
        "write_s": round(time.perf_counter() - tic - run.get("wall_s", 0.0), 1), **run,
        "target_mb": TARGET_MB, "met": None if peak is None else bool(peak <= TARGET_MB),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=3600, help="recording length (s); default 3600")
    parser.add_argument("--sfreq", type=int, default=2048, help="the BDF's sampling rate (Hz); default 2048")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for the generated BDF (41 channels x 3 bytes per sample: 865 MB per hour at "
                             "2048 Hz); the BDF is deleted after the run, the folder stays; the figures go to stdout "
                             "as JSON. Long recordings' arrays go to $MILMER_SCRATCH as in milmer preprocess")
    args = parser.parse_args(argv)
    print(json.dumps(measure_memory(args.out, args.seconds, args.sfreq, log=lambda m: print(m, file=sys.stderr)), indent=1))


if __name__ == "__main__":
    main()
