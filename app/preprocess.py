"""``milmer preprocess VIDEO EEG --out DIR``: what the model sees, written to a folder.

The command line is parsed and checked once, cheapest first, into a :class:`PreprocessRequest`
(the output folder, the recording options, the detector, the spec, the input files); the run
(:func:`run_preprocess`) trusts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from .errors import handle_errors, print_error
from .options import (
    BASELINE, CHANNEL_MAP, DETECTOR_HELP, EEG, EEG_RATE, EEG_UNIT, INTERPOLATE_MISSING, MAX_INTERPOLATED, OFFSET, TRIAL,
    VIDEO, VIDEO_FPS,
)

if TYPE_CHECKING:
    from milmer.runtime.preprocess import Preprocessed
    from milmer.runtime.recording import RecordingOptions
    from milmer.runtime.spec import ModelSpec

__all__ = ["PreprocessRequest", "preprocess", "run_preprocess"]


@dataclass(frozen=True)
class PreprocessRequest:
    """One ``milmer preprocess`` run, parsed and checked once at the command line (:meth:`parse`).

    video, eeg: the recording (checked: they exist, are of their kind, not swapped)
    out:        the output folder (absent, empty, or ``overwrite``)
    spec:       the input contract to preprocess for (``--spec``, default :class:`ModelSpec`), with
                ``--detector`` applied
    recording:  the recording options (offset, rates, baseline, EEG unit, channel map, ...)
    """

    video: Path
    eeg: Path
    out: Path
    spec: ModelSpec
    recording: RecordingOptions
    overwrite: bool = False

    @classmethod
    def parse(
        cls,
        *,
        video: Path,
        eeg: Path,
        out: Path,
        offset: str | float | None = None,
        eeg_rate: float | None = None,
        video_fps: float | None = None,
        baseline: float | None = None,
        eeg_unit: str | None = None,
        channel_map: str | None = None,
        interpolate_missing: bool = False,
        max_interpolated: int | None = None,
        trial: int | None = None,
        detector: str | None = None,
        spec_file: Path | None = None,
        overwrite: bool = False,
    ) -> PreprocessRequest:
        """Check the command line's values before any slow work: a taken ``--out``, the options,
        ``--detector``, the ``--spec`` file, then the input files (swapped arguments named; a DEAP
        ``.dat`` without ``--trial`` refused). Raises MilmerInputError naming the option."""
        import dataclasses

        from milmer.runtime.check import check_option
        from milmer.runtime.choices import DETECTORS
        from milmer.runtime.files import check_out_dir
        from milmer.runtime.recording import check_recording_paths
        from milmer.runtime.spec import ModelSpec

        from .infer import recording_options

        out = check_out_dir(out, overwrite=overwrite, name="--out")
        options = recording_options(
            offset=offset, baseline=baseline, eeg_unit=eeg_unit, channel_map=channel_map,
            interpolate_missing=interpolate_missing, max_interpolated=max_interpolated, trial=trial,
            eeg_rate=eeg_rate, video_fps=video_fps,
        )
        if detector is not None:
            check_option("--detector", detector, DETECTORS)
        spec = ModelSpec.load(spec_file, param="--spec") if spec_file is not None else ModelSpec()
        if detector is not None:
            spec = spec.replace(face=dataclasses.replace(spec.face, detector=detector))
        video, eeg = check_recording_paths(video, eeg, usage="milmer preprocess VIDEO EEG")
        if eeg.suffix.lower() == ".dat" and trial is None:
            from milmer.runtime.eeg.deap import deap_trial

            deap_trial(eeg, None)  # refuses before the slow work, saying to pass --trial
        return cls(video=video, eeg=eeg, out=out, spec=spec, recording=options, overwrite=overwrite)


def run_preprocess(request: PreprocessRequest) -> Preprocessed:
    """Preprocess the request's recording (progress on stderr), print its warnings one line each
    and write the folder atomically; returns what was written."""
    import warnings

    from milmer.runtime.preprocess import preprocess_recording, write_preprocessed

    from .render import warning_lines

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # shown below as one line each, not as file:line warnings
        result = preprocess_recording(
            request.video, request.eeg, request.spec, options=request.recording, progress=True, keep_trace=True
        )
    for w in caught:
        print_error(f"Warning: {' '.join(str(w.message).split())}")
    for line in warning_lines(result.notes, result.report.get("eeg_info", {})):
        print_error(line)
    write_preprocessed(result, request.out, overwrite=request.overwrite, out_name="--out")
    return result


@handle_errors
def preprocess(
    video: Path = VIDEO,
    eeg: Path = EEG,
    out: Path = typer.Option(..., "--out", help="Output folder (must not exist or be empty)."),
    offset: str = OFFSET,
    eeg_rate: Optional[float] = EEG_RATE,
    video_fps: Optional[float] = VIDEO_FPS,
    baseline: Optional[float] = BASELINE,
    eeg_unit: Optional[str] = EEG_UNIT,
    channel_map: Optional[str] = CHANNEL_MAP,
    interpolate_missing: bool = INTERPOLATE_MISSING,
    max_interpolated: int = MAX_INTERPOLATED,
    trial: Optional[int] = TRIAL,
    detector: Optional[str] = typer.Option(
        None, "--detector", help=DETECTOR_HELP
    ),
    spec_file: Optional[Path] = typer.Option(None, "--spec", help="A spec.json to preprocess for."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty output folder."),
) -> None:
    """Preprocess one recording exactly as the model sees it; write windows, report and pictures."""
    request = PreprocessRequest.parse(
        video=video, eeg=eeg, out=out, offset=offset, eeg_rate=eeg_rate, video_fps=video_fps, baseline=baseline,
        eeg_unit=eeg_unit, channel_map=channel_map, interpolate_missing=interpolate_missing,
        max_interpolated=max_interpolated, trial=trial, detector=detector, spec_file=spec_file, overwrite=overwrite,
    )
    result = run_preprocess(request)
    _print_preprocess_summary(result, request.out)


def _print_preprocess_summary(result: Any, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from .render import eeg_note_markup

    r = result.report
    fi, ei = r["face_info"], r["eeg_info"]
    table = Table(title=f"Preprocessed -> {out}", show_header=False)
    table.add_row("windows", f"{r['n_windows']} x {result.eeg.data.shape[1:]} EEG, {result.faces.frames.shape[1:]} faces")
    if r.get("alignment"):
        from milmer.runtime.timebase import Alignment

        alignment = Alignment.from_dict(r["alignment"])
        table.add_row("alignment", alignment.summary())
        for note in alignment.notes:  # what was used and its caveats (the warnings also went to stderr)
            table.add_row("", f"[yellow]{note.message}[/yellow]" if note.severity == "warning" else note.message)
    table.add_row("ICA components removed", str(ei.get("ica_excluded")))
    table.add_row("frames without a face", f"{fi.get('frames_without_face')} of {fi.get('frames_total')}")
    table.add_row("windows without a face", str(fi.get("windows_without_face")))
    table.add_row("frames with several faces", str(fi.get("frames_several_faces", 0)))
    table.add_row("frames far from their time", str(fi.get("frames_timing_off", 0)))
    video = fi.get("video", {})
    if video:
        table.add_row(
            "video",
            f"{video.get('duration_s', 0):.2f} s, {video.get('n_frames')} frames at {video.get('fps', 0):.2f} fps, "
            f"{video.get('width')}x{video.get('height')}, rotation {video.get('rotation', 0)}",
        )
    table.add_row("dropped (outside video)", str(r["windows_dropped_outside_video"]))
    flagged = sum(bool(f) for f in r.get("window_flags", []))
    table.add_row("flagged windows", f"{flagged} of {r['n_windows']}")
    for note in result.notes:
        table.add_row("eeg", eeg_note_markup(note))
    table.add_row("time (s)", ", ".join(f"{k} {v:.2f}" for k, v in r["timings_s"].items()))
    Console().print(table)

