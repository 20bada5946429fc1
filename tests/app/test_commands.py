"""`milmer preprocess` and the CLI's exit codes: 0 ok, 2 bad input (no traceback), 1 internal.

A failed command leaves no output folder behind.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from milmer.app.cli import main
from milmer.app.errors import EXIT_INTERNAL, EXIT_OK, EXIT_USAGE


def _run(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _write_raw(path: Path, seconds: float, *, edit=None, fmt: str = "edf") -> Path:
    import mne

    from milmer.runtime.spec import DEAP_CHANNELS

    rng = np.random.default_rng(1)
    n = int(seconds * 128)
    data = 20e-6 * (rng.standard_normal((32, 32)) @ rng.uniform(-1, 1, (32, n)))
    if edit is not None:
        edit(data)
    raw = mne.io.RawArray(data, mne.create_info(list(DEAP_CHANNELS), 128.0, "eeg"), verbose="error")
    if fmt == "fif":
        raw.save(path, overwrite=True, verbose="error")
    else:
        mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")
    return path


@pytest.fixture(scope="module")
def preprocessed(recording, tmp_path_factory):
    video, eeg = recording
    out = tmp_path_factory.mktemp("cli") / "pre"
    code = main(["preprocess", str(video), str(eeg), "--out", str(out)])
    return code, out


def test_preprocess_writes_windows_report_and_pictures(preprocessed):
    code, out = preprocessed
    assert code == EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == ["eeg_ica.png", "faces.png", "report.json", "windows.npz"]
    with np.load(out / "windows.npz") as z:
        assert z["eeg"].shape == (4, 32, 384) and z["eeg"].dtype == np.float32
        assert z["faces"].shape == (4, 10, 224, 224, 3) and z["faces"].dtype == np.uint8
        np.testing.assert_allclose(z["starts"], [0.0, 3.0, 6.0, 9.0])
        # The fixture video has no face at 3.0-4.0 s: the first 3-4 frames of window 1.
        assert z["face_found"].sum(axis=1).tolist() == [10, 7, 10, 10]
        assert z["window_has_face"].all()
    report = json.loads((out / "report.json").read_text())
    assert report["n_windows"] == 4
    assert report["face_info"]["frames_without_face"] == 3
    assert report["face_info"]["detector"] == "blazeface-short-range"
    assert "ica_excluded" in report["eeg_info"] and report["spec"]["eeg"]["sfreq"] == 128.0
    for png in ("faces.png", "eeg_ica.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_preprocess_refuses_a_non_empty_output_folder_before_any_work(recording, tmp_path, capsys, monkeypatch):
    import milmer.runtime.preprocess as pre

    def no_work(*args, **kwargs):
        raise AssertionError("preprocessing ran before --out was checked")

    monkeypatch.setattr(pre, "preprocess_recording", no_work)
    video, eeg = recording
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = _run(["preprocess", video, eeg, "--out", out], capsys)
    assert code == EXIT_USAGE
    assert err == (
        f"Error: Invalid value for '--out': folder {str(out)!r} is not empty; choose another folder or pass --overwrite.\n"
    )
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_preprocess_refuses_an_unusable_scratch_folder_with_exit_2(recording, tmp_path, capsys, monkeypatch):
    """A long recording's arrays go to the scratch folder (runtime.scratch; forced here for a
    short one): a folder that cannot be made is the user's setup, named, and nothing is written."""
    from milmer.runtime import scratch

    monkeypatch.setattr(scratch, "MAX_IN_MEMORY_BYTES", 0)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("MILMER_SCRATCH", str(blocker / "scratch"))
    video, eeg = recording
    out = tmp_path / "pre"
    code, _, err = _run(["preprocess", video, eeg, "--out", out], capsys)
    assert code == EXIT_USAGE, err
    assert err.startswith(f"Error: Invalid value for 'MILMER_SCRATCH': cannot use {blocker / 'scratch'} as the scratch folder")
    assert err.rstrip().endswith("Set MILMER_SCRATCH to a writable folder on a disk.") and not out.exists()


def _bad_eeg_cases(tmp: Path) -> dict[str, tuple[Path, str]]:
    corrupt = tmp / "corrupt.edf"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4000))
    truncated = _write_raw(tmp / "full.edf", 12.0)
    cut = tmp / "truncated.edf"
    cut.write_bytes(truncated.read_bytes()[:300])
    text = tmp / "eeg.txt"
    text.write_text("1,2,3\n")

    def nan(data):
        data[5] = np.nan  # NaN throughout (a NaN run is a gap: bridged, its windows dropped)

    def flat(data):
        data[[3, 20]] = 0.0

    return {
        "missing": (tmp / "nope.edf", r"'eeg': file not found"),
        "corrupt": (corrupt, r"corrupt\.edf"),
        "truncated": (cut, r"truncated\.edf"),
        "unsupported": (text, r"unsupported file type '\.txt'.*'\.edf'"),
        "too_short": (_write_raw(tmp / "short.edf", 2.0), r"3 s"),
        "nan": (_write_raw(tmp / "nan_raw.fif", 12.0, edit=nan, fmt="fif"), r"FC1 \(NaN or infinite throughout\)"),
        "flat": (_write_raw(tmp / "flat.edf", 12.0, edit=flat), r"F7 \(flat .*; F8 \(flat "),
    }


@pytest.mark.parametrize("case", ["missing", "corrupt", "truncated", "unsupported", "too_short", "nan", "flat"])
def test_bad_eeg_exits_2_without_traceback_or_output(case, recording, tmp_path, capsys):
    video, _ = recording
    eeg, pattern = _bad_eeg_cases(tmp_path)[case]
    out = tmp_path / "out"
    code, _, err = _run(["preprocess", video, eeg, "--out", out], capsys)
    assert code == EXIT_USAGE, err
    assert err.startswith("Error: ") and "Traceback" not in err
    import re

    assert re.search(pattern, err, re.S), err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no partial folder


@pytest.mark.parametrize(
    "name, content, pattern",
    [
        ("nope.mp4", None, r"'video': file not found"),
        ("clip.gif", b"GIF89a", r"unsupported file type '\.gif'"),
        ("broken.mp4", b"\x00" * 2048, r"broken\.mp4"),
    ],
)
def test_bad_video_exits_2(name, content, pattern, recording, tmp_path, capsys):
    _, eeg = recording
    video = tmp_path / name
    if content is not None:
        video.write_bytes(content)
    out = tmp_path / "out"
    code, _, err = _run(["preprocess", video, eeg, "--out", out], capsys)
    assert code == EXIT_USAGE
    import re

    assert re.search(pattern, err), err
    assert not out.exists()


def test_bad_option_values_name_the_parameter(recording, tmp_path, capsys):
    video, eeg = recording
    code, _, err = _run(["preprocess", video, eeg, "--out", tmp_path / "o", "--detector", "yolo"], capsys)
    assert code == EXIT_USAGE
    assert err == "Error: Invalid value for '--detector': expected one of 'blazeface-short-range', 'opencv-haar', got 'yolo'.\n"
    code, _, err = _run(["export", tmp_path, "--out", tmp_path / "m", "--trt-profile", "1,8"], capsys)
    assert code == EXIT_USAGE
    assert "Invalid value for '--trt-profile': expected three integers MIN,OPT,MAX, got '1,8'." in err


def test_usage_errors_exit_2(capsys):
    code, _, err = _run(["preprocess"], capsys)
    assert code == EXIT_USAGE and "Missing argument" in err
    code, _, _ = _run(["no-such-command"], capsys)
    assert code == EXIT_USAGE


def test_internal_errors_exit_1_without_traceback(recording, tmp_path, capsys, monkeypatch):
    import milmer.runtime.preprocess as pre

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(pre, "preprocess_recording", boom)
    monkeypatch.delenv("MILMER_DEBUG", raising=False)
    video, eeg = recording
    code, _, err = _run(["preprocess", video, eeg, "--out", tmp_path / "o"], capsys)
    assert code == EXIT_INTERNAL
    assert "Internal error: RuntimeError: kaboom" in err and "MILMER_DEBUG=1" in err
    assert "Traceback" not in err


def test_atomic_dir_gives_normal_permissions(tmp_path):
    import os

    from milmer.runtime.files import atomic_dir

    with atomic_dir(tmp_path / "made") as tmp:
        (tmp / "x").write_text("1")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "made").stat().st_mode & 0o777 == 0o777 & ~umask


def test_bench_list_options_are_validated_before_any_work(tmp_path, capsys):
    code, _, err = _run(["bench", "--out", tmp_path / "b", "--batch-sizes", "1,a"], capsys)
    assert code == EXIT_USAGE
    assert "Invalid value for '--batch-sizes': expected comma-separated integers, got '1,a'." in err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("precision", "way_forward"),
    [
        ("bf16", r"bench times it in its side-by-side table \('openvino bf16'\) .* run with --precision fp32 \(or without --precision\)\."),
        ("auto", r"auto is milmer-infer's choice .* bench times every graph precision of the model folder when --precision is left out"),
        ("fp64", r"; leave --precision out to time every graph precision of the model folder\."),
    ],
)
def test_bench_precision_names_graphs_and_says_where_bf16_is_timed(tmp_path, capsys, precision, way_forward):
    """bench's --precision picks graphs (fp32, fp16, int8): bf16 and auto, which milmer-infer takes,
    exit 2 naming the option, the allowed values, what was received and the way forward."""
    code, _, err = _run(["bench", "--out", tmp_path / "b", "--precision", precision], capsys)
    err = " ".join(err.split())
    assert code == EXIT_USAGE
    assert f"Invalid value for '--precision': expected one of 'fp32', 'fp16', 'int8', got '{precision}'; " in err
    assert re.search(way_forward, err), err
    assert "needs the auto graphs" not in err and "needs the bf16 graphs" not in err
    assert not (tmp_path / "b").exists()


def test_bench_backend_and_device_default_to_auto(tmp_path, capsys, monkeypatch):
    """`milmer bench` resolves auto once, says what it picked, and names CLI options in errors."""
    import sys

    from milmer.app import bench as app_bench
    from milmer.runtime.backends import ort as ort_backend

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setattr(ort_backend, "available_providers", lambda: ["CPUExecutionProvider"])
    assert app_bench._resolve_auto(None, "auto", "auto", "fp32") == ("ort", "cpu")
    err = capsys.readouterr().err.replace("\n", "")
    assert err.startswith("Using ONNX Runtime on cpu (--backend auto --device auto); skipped ort on cuda: ")
    assert app_bench._resolve_auto(None, "ort", "cpu", "fp32") == ("ort", "cpu")
    assert capsys.readouterr().err == ""
    assert main(["bench", "--out", str(tmp_path / "b"), "--device", "gpu"]) == EXIT_USAGE
    assert "Invalid value for '--device': expected one of 'auto', 'cpu', 'cuda', 'tensorrt', got 'gpu'." in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_preprocess_probes_the_video_once(recording, monkeypatch):
    """A probe can mean a full decoding pass (unreliable headers): the face path reuses it."""
    import milmer.runtime.face.extract as extract
    import milmer.runtime.face.video as video_mod
    from milmer.runtime.preprocess import preprocess_recording

    calls = []
    real = video_mod.probe_video

    def counting(path, **kwargs):
        calls.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr(video_mod, "probe_video", counting)
    monkeypatch.setattr(extract, "probe_video", counting)
    video, eeg = recording
    result = preprocess_recording(video, eeg)
    assert result.report["n_windows"] == 4
    assert len(calls) == 1


@pytest.mark.parametrize("command", [["preprocess"], ["infer"]])
def test_recording_options_and_help_texts(command, recording, tiny_model, tmp_path, capsys):
    code, out, _ = _run([*command, "--help"], capsys)
    text = " ".join(out.replace("│", " ").split())
    assert code == 0
    for option in ("--eeg-unit", "--channel-map", "--interpolate-missing", "--max-interpolated", "--trial"):
        assert option in text
    assert "the model's 32 channels" in text
    assert "positive when the video started first, negative when the EEG did" in text
    video, eeg = recording
    extra = ["--out", tmp_path / "o"] if command == ["preprocess"] else ["--model", tiny_model]
    code, _, err = _run([*command, video, eeg, *extra, "--eeg-unit", "furlong"], capsys)
    assert code == EXIT_USAGE
    assert "Invalid value for '--eeg-unit': expected one of 'V', 'mV', 'uV', 'nV', got 'furlong'." in err
    code, _, err = _run([*command, video, eeg, *extra, "--channel-map", "Fp1"], capsys)
    assert code == EXIT_USAGE and "Invalid value for '--channel-map': expected one of the presets ('biosemi32', 'egi-hydrocel-128', 'egi-hydrocel-129', 'egi-hydrocel-256', 'egi-hydrocel-257'), got 'Fp1'" in err
    dat = tmp_path / "s01.dat"
    dat.write_bytes(b"")
    code, _, err = _run([*command, video, dat, *extra], capsys)
    assert code == EXIT_USAGE
    assert "'s01.dat' is a DEAP file of 40 trials: say which one with --trial N" in " ".join(err.split())
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--offset", "abc"], "Invalid value for '--offset': expected 'auto' or a finite number of seconds, got 'abc'."),
        (["--offset", "nan"], "Invalid value for '--offset': expected 'auto' or a finite number of seconds, got 'nan'."),
        (["--offset=-inf"], "Invalid value for '--offset': expected 'auto' or a finite number of seconds, got '-inf'."),
        (["--eeg-rate", "0"], "Invalid value for '--eeg-rate': expected a number >= 1, got 0."),
        (["--video-fps", "x"], "Invalid value for '--video-fps': expected a number >= 1, got 'x'."),
        (["--batch", "0"], "Invalid value for '--batch': expected an integer >= 1, got 0."),
        (["--batch", "1.5"], "Invalid value for '--batch': expected an integer >= 1, got 1.5."),
        (["--trial", "41"], "Invalid value for '--trial': expected an integer in [1, 40], got 41."),
        (["--baseline", "-1"], "Invalid value for '--baseline': expected a number >= 0, got -1."),
        (["--max-interpolated", "x"], "Invalid value for '--max-interpolated': expected an integer in [0, 32], got 'x'."),
        (["--bogus"], "No such option: --bogus (Possible options: --out). See 'milmer-infer --help'."),
    ],
)
def test_bad_numbers_are_one_line_naming_option_range_and_value(argv, message, capsys):
    """Click's boxed usage error is replaced by our one line (exit 2), before any file is looked at."""
    from milmer.app.infer import main as infer_main

    code = infer_main(["missing.mp4", "missing.edf", *argv])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert err == f"Error: {message}\n"


def test_usage_errors_are_one_line(capsys):
    code, _, err = _run(["preprocess", "v.mp4"], capsys)
    assert code == EXIT_USAGE
    assert err == "Error: Missing argument 'EEG'. See 'milmer preprocess --help'.\n"
    code, _, err = _run(["demo-data", "--out", "x", "--subjects", "0"], capsys)
    assert (code, err) == (EXIT_USAGE, "Error: Invalid value for '--subjects': expected an integer in [1, 99], got 0.\n")


@pytest.mark.parametrize(
    "argv",
    [["preprocess", "v.avi", "e.edf"], ["bench"], ["demo"], ["demo-data"], ["export", "m"],
     ["live", "--model", "m", "--video", "0", "--record", "F/sub"]],
    ids=lambda argv: argv[0],
)
def test_an_output_folder_under_a_file_exits_2_naming_the_option(argv, tmp_path, capsys, monkeypatch):
    """Refused before any work (no input exists here), not as an internal error after it."""
    monkeypatch.chdir(tmp_path)
    Path("F").write_text("mine")
    Path("m").mkdir()  # a folder where a command wants one before its outputs are checked
    option = "--record" if argv[0] == "live" else "--out"
    code, _, err = _run([*argv, *(["--out", "F/sub"] if option == "--out" else [])], capsys)
    assert code == EXIT_USAGE, err
    assert f"Error: Invalid value for '{option}': cannot create 'F/sub': 'F' is a file, not a folder" in " ".join(err.split())
    assert Path("F").read_text() == "mine"


def test_demo_data_durations_are_refused_by_their_option_names(capsys, tmp_path):
    # The help's range and the refusal agree (> 0), in the options' names, not the function's.
    code, help_text, _ = _run(["demo-data", "--help"], capsys)
    flat = " ".join(help_text.replace("\u2502", " ").split())
    assert code == EXIT_OK and "x>=0.0" not in flat and flat.count(", > 0") == 2
    for argv, message in (
        (["--trial-seconds", "0"], "'--trial-seconds': expected a number > 0, got 0.0"),
        (["--recording-seconds", "0"], "'--recording-seconds': expected a number > 0, got 0.0"),
        (["--recording-seconds", "1.5"], "'--recording-seconds': expected seconds > 0 that are a whole number of EDF data records (1 s each) at 1 Hz"),
    ):
        code, _, err = _run(["demo-data", "--out", tmp_path / "d", *argv], capsys)
        assert code == EXIT_USAGE and err.startswith(f"Error: Invalid value for {message}"), err
    assert not (tmp_path / "d").exists()


def _commands():
    from typer.main import get_command

    from milmer.app.cli import app

    return sorted(get_command(app).commands)


@pytest.mark.parametrize("command", [None, "infer-entry", *_commands()])
def test_help_shows_no_type_for_flags(command, capsys, monkeypatch):
    """Typer 0.29's rich help gives every flag a ``<bool>`` type, --help included: none is left."""
    from milmer.app.infer import main as infer_main

    monkeypatch.setenv("COLUMNS", "100")
    if command == "infer-entry":
        code = infer_main(["--help"])
    else:
        code = main([*([command] if command else []), "--help"])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert "<bool>" not in out
    help_line = next(line for line in out.splitlines() if "--help" in line)
    # No type column between the flag and its text (the text may wrap: rich fixes the help's width
    # when it is first imported, so it depends on which test showed help first).
    assert help_line.split()[:3] == ["│", "--help", "Show"]


def test_infer_help_names_the_channels_and_the_offset_sign(capsys, monkeypatch):
    from milmer.app.infer import main as infer_main

    monkeypatch.setenv("COLUMNS", "80")
    assert infer_main(["--help"]) == EXIT_OK
    out = capsys.readouterr().out
    text = " ".join(out.replace("│", " ").split())
    assert "Usage: milmer-infer [OPTIONS] {VIDEO} {EEG}" in text
    assert "It must hold the model's 32 channels (DEAP's 10-20 set: Fp1, AF3, F3, ... O2;" in text
    assert (
        "Example: the video started 2.5 s before the EEG -> --offset 2.5; 1 s after -> --offset -1." in text
    )
    assert "--trial N [1<=x<=40]" in text and "--batch N [x>=1]" in text
    assert max(map(len, out.splitlines())) <= 80


def test_demo_data_names_out_and_overwrite(tmp_path, capsys):
    """A CLI message says --overwrite, not the library's overwrite=True."""
    from milmer.synthetic.make import _README_BANNER

    out = tmp_path / "demo"
    out.mkdir()
    (out / "README.txt").write_text(_README_BANNER + "\n")
    code, _, err = _run(["demo-data", "--out", out], capsys)
    assert code == EXIT_USAGE
    assert err == (
        f"Error: Invalid value for '--out': folder {str(out)!r} is not empty; pass --overwrite to replace it.\n"
    )


def test_preprocess_warns_in_one_line_when_ica_did_not_converge(recording, tmp_path, capsys, monkeypatch):
    import milmer.runtime.preprocess as pre

    real = pre.preprocess_recording

    def unconverged(*args, **kwargs):
        result = real(*args, **kwargs)
        result.report["eeg_info"]["ica_converged"] = False
        return result

    monkeypatch.setattr(pre, "preprocess_recording", unconverged)
    video, eeg = recording
    code, _, err = _run(["preprocess", video, eeg, "--out", tmp_path / "o"], capsys)
    assert code == EXIT_OK
    lines = [line for line in err.splitlines() if line.startswith("Warning: ")]
    assert lines == [
        "Warning: ICA (Picard) did not converge: the eye-artefact removal may be incomplete (ica_converged: "
        "false in the report); check the EEG's quality, e.g. with `milmer preprocess` and its eeg_ica.png."
    ]


def test_missing_optional_package_exits_2_naming_the_extra(recording, tmp_path, capsys, monkeypatch):
    import milmer.runtime.preprocess as pre

    def no_ort(*args, **kwargs):
        import onnxruntime_is_not_here  # noqa: F401 - stands for the missing module

    def missing(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'onnxruntime'", name="onnxruntime")

    monkeypatch.setattr(pre, "preprocess_recording", missing)
    monkeypatch.delenv("MILMER_DEBUG", raising=False)
    video, eeg = recording
    code, _, err = _run(["preprocess", video, eeg, "--out", tmp_path / "o"], capsys)
    assert code == EXIT_USAGE
    assert "Missing dependency: the Python package 'onnxruntime' is not installed" in err
    assert 'pip install "milmer[cpu]"' in err and "onnxruntime-gpu wheel for JetPack" in err
    assert "Internal error" not in err and "Traceback" not in err
    # A module milmer does not know as optional stays a bug (exit 1).
    monkeypatch.setattr(pre, "preprocess_recording", no_ort)
    code, _, err = _run(["preprocess", video, eeg, "--out", tmp_path / "o2"], capsys)
    assert code == EXIT_INTERNAL and "Internal error: ModuleNotFoundError" in err


def test_swapped_arguments_are_named_before_any_model_loads(recording, tmp_path, capsys):
    from milmer.app.infer import main as infer_main

    video, eeg = recording
    # No --model and no demo model here: the swap is found first all the same.
    code = infer_main([str(eeg), str(video), "--model", str(tmp_path / "no-model")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert f"Invalid value for 'video': {Path(eeg).name!r} is an EEG file and {Path(video).name!r}" in err
    assert "the arguments look swapped" in err


def test_recording_without_any_model_channel_exits_2(tmp_path, capsys, recording):
    import mne

    rng = np.random.default_rng(0)
    names = ["TP9", "AF7", "AF8", "TP10"]  # a Muse headband
    raw = mne.io.RawArray(rng.standard_normal((4, 256 * 20)) * 2e-5, mne.create_info(names, 256.0, "eeg"), verbose="error")
    path = tmp_path / "muse.edf"
    raw.export(path, verbose="error")
    video, _ = recording
    for extra in ([], ["--interpolate-missing", "--max-interpolated", "32"]):
        code, _, err = _run(["preprocess", video, path, "--out", tmp_path / "o", *extra], capsys)
        assert code == EXIT_USAGE, err
        assert "none of the model's 32 EEG channels" in err and "The recording has 4 channels: TP9, AF7, AF8, TP10." in err
        assert "--channel-map" in err and "cannot feed a 32-channel model" in err


GAP_WARNINGS = [
    "Warning: 1 NaN run(s) (dropouts) treated as recording gaps (BAD_ACQ_SKIP): 4.20-5.00 s",
    "Warning: dropped 1 window(s) that cross a recording gap (EEG starts 3 s)",
]


def test_preprocess_prints_warning_notes_on_stderr_and_no_mne_log(recording, gap_eeg, clipped_eeg, tmp_path, capfd):
    """Warning-severity EEG notes are one line each on stderr (not only table rows); MNE's own log
    lines ('Omitting 102 of 1536 samples', 'Setting ... to NaN') never reach the console."""
    video, _ = recording
    for eeg, warnings in ((gap_eeg, GAP_WARNINGS), (clipped_eeg, [])):
        code = main(["preprocess", str(video), str(eeg), "--out", str(tmp_path / eeg.stem)])
        out, err = capfd.readouterr()
        assert code == EXIT_OK, err
        assert [line for line in err.splitlines() if line.strip() and not line.startswith("Faces in ")] == warnings
        assert not re.search(r"\d+ of \d+ \([\d.]+%\) samples", out + err)  # MNE's reject_by_annotation log
        assert out.lstrip().startswith("Preprocessed -> ")


def test_export_without_torch_is_the_users_setup(tmp_path, capsys):
    """In a runtime-only install (CI's Python 3.10 env) `milmer export` names the extra to install
    (exit 2), after the cheap checks of its options; where torch is installed this skips."""
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("torch is installed: the refusal needs an install without it")
    (tmp_path / "ckpt").mkdir()
    code, _, err = _run(["export", tmp_path / "ckpt", "--out", tmp_path / "model"], capsys)
    assert code == EXIT_USAGE, err
    assert "Missing dependency: the Python package 'torch' is not installed" in err and "milmer[training]" in err
    assert not (tmp_path / "model").exists()
