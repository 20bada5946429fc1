"""``milmer live``: an LSL EEG stream and a camera in, one emotion estimate per window out as it happens.

The command only parses and checks options (once, here) and hands a
:class:`~milmer.runtime.live.session.LiveRequest` to the runtime. Registered in :mod:`milmer.app.cli`.
Exit codes: 0 a session that ran, 2 bad options or setup (no LSL library: the ``live`` extra; no
stream of that name), 1 internal error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .errors import finite_option, handle_errors
from .options import BACKEND_HELP, DEVICE_HELP, PRECISION_HELP

__all__ = ["live"]


@handle_errors
def live(
    model: Path = typer.Option(..., "--model", help="Exported model folder (spec.json, swin.onnx, fusion.onnx)."),
    video: str = typer.Option(
        ..., "--video", metavar="SOURCE",
        help="Camera ('0' or /dev/video0, V4L2), stream URL (rtsp://, http://) or a video file played at its "
        "real pace.",
    ),
    eeg_stream: Optional[str] = typer.Option(
        None, "--eeg-stream", metavar="NAME",
        help="Name of the LSL EEG stream (default: the one stream of --eeg-stream-type).",
    ),
    eeg_stream_type: str = typer.Option(
        "EEG", "--eeg-stream-type", metavar="TYPE",
        help="LSL stream type to look for without --eeg-stream.",
    ),
    hop: float = typer.Option(
        3.0, "--hop", metavar="SECONDS", callback=finite_option,
        help="Seconds between window starts (1: a smoother output; windows are 3 s).",
    ),
    duration: Optional[float] = typer.Option(
        None, "--duration", metavar="SECONDS", callback=finite_option,
        help="Stop after this long (default: Ctrl-C or SIGTERM).",
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", metavar="FILE",
        help="Write one JSON line per window (and a summary line at the end).",
    ),
    lsl_out: Optional[str] = typer.Option(
        None, "--lsl-out", metavar="NAME",
        help="Publish the class probabilities as an LSL stream of this name (type 'Emotion').",
    ),
    record: Optional[Path] = typer.Option(
        None, "--record", metavar="DIR",
        help="Record the EEG (FIF), the video (lossless MKV) and their alignment to replay with milmer-infer.",
    ),
    calibration: float = typer.Option(
        30.0, "--calibration", metavar="SECONDS", callback=finite_option,
        help="Seconds of EEG the ICA (eye artefacts) is fitted on before scoring starts.",
    ),
    lookahead: float = typer.Option(
        0.0, "--lookahead", metavar="SECONDS", min=0.0, callback=finite_option,
        help="Wait for this much EEG after each window and filter it along (2: the offline filtering, 2 s "
        "more latency).",
    ),
    context: float = typer.Option(
        5.0, "--context", metavar="SECONDS", min=0.0, callback=finite_option,
        help="EEG before each window filtered with it (the filters' run-in).",
    ),
    max_delay: float = typer.Option(
        2.0, "--max-delay", metavar="SECONDS", callback=finite_option,
        help="How long after its end a window's data may still arrive before the window is skipped.",
    ),
    stale: float = typer.Option(
        0.5, "--stale", metavar="SECONDS", callback=finite_option,
        help="A sampled instant whose nearest frame is farther than this has no frame (window skipped).",
    ),
    max_latency: float = typer.Option(
        5.0, "--max-latency", metavar="SECONDS", callback=finite_option,
        help="Skip a window still undecided this long after its end (the machine cannot keep up).",
    ),
    video_delay: float = typer.Option(
        0.0, "--video-delay", metavar="SECONDS", callback=finite_option,
        help="Capture-to-arrival delay of the camera, subtracted from each frame's arrival time.",
    ),
    backend: str = typer.Option("auto", "--backend", help=BACKEND_HELP),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    precision: str = typer.Option("fp32", "--precision", help=PRECISION_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="N", min=1, help="ONNX Runtime CPU threads."),
    eeg_unit: Optional[str] = typer.Option(
        None, "--eeg-unit",
        help="Unit the stream's numbers are in (V, mV, uV, nV), overriding its channel unit fields.",
    ),
    channel_map: Optional[str] = typer.Option(
        None, "--channel-map",
        help="Rename EEG channels: 'old=new,...', a file, a JSON object or the preset biosemi32.",
    ),
    interpolate_missing: bool = typer.Option(
        False, "--interpolate-missing",
        help="Interpolate missing channels from standard 10-20 positions (flagged).",
    ),
    predict_without_face: bool = typer.Option(
        False, "--predict-without-face",
        help="Also predict windows in which no frame shows a face.",
    ),
    wait: float = typer.Option(
        10.0, "--wait", metavar="SECONDS", min=0.0, callback=finite_option,
        help="How long to look for the EEG stream on the network.",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No live table; print the summary only."),
) -> None:
    """Live: an LSL EEG stream and a camera in, emotions out as they happen (Ctrl-C stops)."""
    import json

    from milmer.runtime.check import check_number, check_option
    from milmer.runtime.eeg.preprocess import EEGInputOptions
    from .infer import check_infer_options, check_model_option
    from milmer.runtime.live.engine import LiveConfig
    from milmer.runtime.live.lsl import import_pylsl
    from milmer.runtime.live.session import LiveRequest, run_live

    check_infer_options(backend=backend, device=device, precision=precision, batch=None)
    check_model_option(model, precision)
    # One rule per option (0 is as invalid as a negative value), with a typical value to try.
    for name, value, typical in (("--hop", hop, 3), ("--calibration", calibration, 30), ("--max-delay", max_delay, 2),
                                 ("--stale", stale, 0.5), ("--max-latency", max_latency, 5), ("--duration", duration, 60)):
        if value is not None:
            check_number(name, value, low=0, low_open=True, unit="seconds", hint=f"e.g. {typical}")
    if eeg_unit is not None:
        check_option("--eeg-unit", eeg_unit, ("V", "mV", "uV", "nV"))
    if out is not None:
        _check_out(out)
    if record is not None:
        _check_record(record)
    import_pylsl()  # exit 2 naming the live extra before anything loads
    request = LiveRequest(
        model=model, eeg_stream=eeg_stream, eeg_stream_type=eeg_stream_type, video=video,
        config=LiveConfig(
            hop_s=hop, duration_s=duration, calibration_s=calibration, context_s=context, lookahead_s=lookahead,
            max_delay_s=max_delay, stale_s=stale, max_latency_s=max_latency, predict_without_face=predict_without_face,
        ),
        out=out, lsl_out=lsl_out, record=record, backend=backend, device=device, precision=precision, threads=threads,
        eeg_options=EEGInputOptions(channel_map=channel_map, interpolate_missing=interpolate_missing),
        eeg_unit=eeg_unit, video_delay_s=video_delay, resolve_timeout_s=wait, view=not quiet,
    )
    summary = run_live(request)
    typer.echo(json.dumps({k: summary[k] for k in ("windows", "scored", "skipped", "latency_p50_s", "latency_p95_s")}))


def _check_out(out: Path) -> None:
    """``--out``: a FILE.jsonl in an existing, writable folder (checked before the model loads)."""
    import os

    from milmer.runtime.check import MilmerInputError, check_path_exists, check_suffix

    check_suffix("--out", out, (".jsonl",))
    parent = check_path_exists("--out", out.parent, "dir", hint="create it or give a FILE.jsonl in an existing folder")
    if out.is_dir() or not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise MilmerInputError(f"Invalid value for '--out': {str(out)!r} cannot be written; give a writable FILE.jsonl.")


def _check_record(record: Path) -> None:
    """``--record``: a missing or empty folder that can be created and written (checked before anything slow)."""
    from milmer.runtime.check import check_dir_or_absent, check_writable_dir

    check_dir_or_absent("--record", record, empty=True, hint="give a new folder")
    check_writable_dir("--record", record, hint="give a folder in a writable place")
