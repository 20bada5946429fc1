"""Options and help texts shared by several commands (one definition each).

The recording arguments and options are those of ``milmer preprocess`` and ``milmer-infer``;
``--backend``/``--device``/``--precision`` help comes from the backend table's choices
(numpy-free, so ``--help`` stays fast).
"""

from __future__ import annotations

from collections.abc import Callable

import typer
from typer.core import TyperCommand

from milmer.runtime.choices import BACKEND_NAMES, DETECTORS, DEVICES, PRECISIONS

from .errors import finite_option

__all__ = [
    "BACKEND_HELP", "DEVICE_HELP", "PRECISION_HELP", "DETECTOR_HELP", "VIDEO", "EEG", "OFFSET", "EEG_RATE",
    "VIDEO_FPS", "BASELINE",
    "EEG_UNIT", "CHANNEL_MAP", "INTERPOLATE_MISSING", "MAX_INTERPOLATED", "TRIAL", "lazy_epilog",
]

# --backend / --device / --precision: the backend table's choices (numpy-free), shared with `milmer bench`.
BACKEND_HELP = "auto (the best that runs here), " + ", ".join(f"{k} ({v})" for k, v in BACKEND_NAMES.items())
DEVICE_HELP = (
    f"{', '.join(DEVICES)}. auto: TensorRT (with an engine) > CUDA > CPU, with a note of what was "
    "picked; tensorrt: ONNX Runtime's TensorRT EP (only on request: it builds engines on first use)."
)
PRECISION_HELP = f"{', '.join(PRECISIONS)}: which graphs of the model folder to run."
DETECTOR_HELP = f"Face detector: {' or '.join(DETECTORS)} (default: the spec's, {DETECTORS[0]})."

# The recording arguments and options of `milmer preprocess` and `milmer-infer`.
VIDEO = typer.Argument(..., metavar="VIDEO", help="Face video (.mp4, .avi, .mov, .mkv, .webm).")
EEG = typer.Argument(
    ..., metavar="EEG",
    help="EEG recording (.edf, .bdf, .fif, .vhdr, .xdf, .set, .mff, or DEAP sXX.dat with --trial). It must hold "
    "the model's 32 "
    "channels (DEAP's 10-20 set: Fp1, AF3, F3, ... O2; see --channel-map for other names, "
    "--interpolate-missing for a few missing ones).",
)


def offset_option(value: str) -> str:
    """Option callback: ``auto`` or a finite number of seconds (the runtime parses it again)."""
    import math

    try:
        ok = value.strip().lower() == "auto" or math.isfinite(float(value))
    except ValueError:
        ok = False
    if not ok:
        raise typer.BadParameter("expected 'auto' or a finite number of seconds")
    return value


OFFSET = typer.Option(
    "auto", "--offset", metavar="auto|SECONDS", callback=offset_option,
    help="Video time (s) at EEG t=0: positive when the video started first, negative when the EEG did. "
    "Example: the video started 2.5 s before the EEG -> --offset 2.5; 1 s after -> --offset -1. "
    "auto: from the files' evidence (XDF clock, EDF/BDF start time vs the video's creation_time), "
    "else 0 (see the output's alignment line).",
)
EEG_RATE = typer.Option(
    None, "--eeg-rate", metavar="HZ", min=1.0, callback=finite_option,
    help="The amplifier's true sampling rate when its clock drifts from the header's (the alignment "
    "warning gives the value).",
)
VIDEO_FPS = typer.Option(
    None, "--video-fps", metavar="FPS", min=1.0, callback=finite_option,
    help="The camera's true frame rate when the video's header is wrong (an AVI from OpenCV's VideoWriter).",
)
BASELINE = typer.Option(
    None, "--baseline", metavar="SECONDS", min=0.0, callback=finite_option,
    help="Seconds to drop at the EEG start (default: 3 for DEAP .dat, else 0).",
)
EEG_UNIT = typer.Option(
    None, "--eeg-unit", help="Unit the EEG file's numbers are really in (V, mV, uV, nV), overriding its unit field."
)
CHANNEL_MAP = typer.Option(
    None, "--channel-map",
    help="Rename EEG channels: 'old=new,...', a file of old=new lines or a JSON object, or a preset: biosemi32 (A1..A32), egi-hydrocel-128/-129/-256/-257 (EGI nets: the 10-20 sites interpolated from the net, every output flagged).",
)
INTERPOLATE_MISSING = typer.Option(
    False, "--interpolate-missing",
    help="Interpolate missing and bad-marked channels from standard 10-20 positions (flagged in every output).",
)
MAX_INTERPOLATED = typer.Option(
    8, "--max-interpolated", metavar="N", min=0, max=32,
    help="Most channels --interpolate-missing may fill in; fewer than 24 of 32 real sites is refused whatever this says.",
)
TRIAL = typer.Option(
    None, "--trial", metavar="N", min=1, max=40, help="DEAP sXX.dat input: the trial (presentation order, as in sXX_trialN.avi)."
)


def lazy_epilog(make: Callable[[], str]) -> type[TyperCommand]:
    """A command class whose help epilog is ``make()``, built only when help is shown: the text
    comes from config dataclasses whose modules import numpy, which ``milmer --help`` avoids."""

    class Command(TyperCommand):
        @property  # type: ignore[override]
        def epilog(self) -> str:
            return make()

        @epilog.setter
        def epilog(self, value: object) -> None:  # click's __init__ assigns it; ignored
            pass

    return Command
