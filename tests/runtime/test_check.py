"""The shared input checks in milmer.runtime.check."""

import re
from pathlib import Path

import numpy as np
import pytest

from milmer.runtime.check import (
    MilmerInputError,
    check_array,
    check_bool,
    check_compare,
    check_dir_or_absent,
    check_equal,
    check_exclusive,
    check_finite,
    check_int,
    check_keys,
    check_nonempty,
    check_number,
    check_option,
    check_path_exists,
    check_requires,
    check_same_length,
    check_sequence,
    check_subset,
    check_type,
    check_unique,
    check_whole,
    check_writable_dir,
    check_writable_file,
    parse_ints,
    read_error,
    requires_error,
)


def test_check_keys_with_every_key_required():
    check_keys("model spec", {"a": 1, "b": 2}, ["a", "b"])
    with pytest.raises(MilmerInputError, match=re.escape("Invalid model spec: unknown key(s) face.c; expected face.a, face.b.")):
        check_keys("model spec", {"a": 1, "b": 2, "c": 3}, ["a", "b"], prefix="face.")
    with pytest.raises(MilmerInputError, match=re.escape("Invalid model spec: missing key(s) b.")):
        check_keys("model spec", {"a": 1}, ["a", "b"])


def test_check_keys_with_optional_keys():
    check_keys("training config", {"a": 1}, ["a", "b"], required=["a"])
    with pytest.raises(MilmerInputError, match=re.escape("Invalid training config: unknown key(s) z; expected some of a, b.")):
        check_keys("training config", {"a": 1, "z": 0}, ["a", "b"], required=["a"])
    with pytest.raises(MilmerInputError, match=re.escape("Invalid training config: missing required key(s) a.")):
        check_keys("training config", {"b": 1}, ["a", "b"], required=["a"])


def _fails(message: str):
    return pytest.raises(MilmerInputError, match="^" + re.escape(message) + "$")


def test_check_int():
    assert check_int("batch", 4, low=1) == 4
    got = check_int("batch", np.int64(3), low=1)
    assert got == 3 and type(got) is int
    assert check_int("threads", None, low=1, allow_none=True) is None
    assert check_int("trial", 40, low=1, high=40) == 40
    with _fails("Invalid value for 'batch': expected an integer >= 1, got 0."):
        check_int("batch", 0, low=1)
    with _fails("Invalid value for 'batch': expected an integer >= 1, got True."):
        check_int("batch", True, low=1)
    with _fails("Invalid value for 'batch': expected an integer >= 1, got 2.0."):
        check_int("batch", 2.0, low=1)
    with _fails("Invalid value for '--trial': expected an integer in [1, 40], got 41."):
        check_int("--trial", 41, low=1, high=40)
    with _fails("Invalid value for 'k': expected an integer <= 3, got 4."):
        check_int("k", 4, high=3)
    with _fails("Invalid value for 'threads': expected an integer >= 1 or None, got '2'."):
        check_int("threads", "2", low=1, allow_none=True)


def test_check_number():
    assert check_number("lr", 0.5, low=0, high=1, low_open=True) == 0.5
    assert check_number("max_fit_s", None, low=0, low_open=True, allow_none=True) is None
    with _fails("Invalid value for 'min_confidence': expected a number in (0, 1), got 1.0."):
        check_number("min_confidence", 1.0, low=0, high=1, low_open=True, high_open=True)
    with _fails("Invalid value for 'dropout': expected a number in [0, 1], got nan."):
        check_number("dropout", float("nan"), low=0, high=1)
    with _fails("Invalid value for 'scale': expected a number > 1, got False."):
        check_number("scale", False, low=1, low_open=True)
    with _fails("Invalid value for 'offset_s': expected a number <= 0, got 0.5."):
        check_number("offset_s", 0.5, high=0)


def test_check_finite():
    assert check_finite("offset_s", np.float32(1.5)) == 1.5
    for bad in (float("inf"), float("nan"), True, "1"):
        with _fails(f"Invalid value for 'offset_s': expected a finite number, got {bad!r}."):
            check_finite("offset_s", bad)


def test_check_type():
    assert check_type("overlap", False, bool) is False
    assert check_type("path", Path("x"), (str, Path)) == Path("x")
    with _fails("Invalid value for 'overlap': expected a bool, got str."):
        check_type("overlap", "yes", bool)
    with _fails("Invalid value for 'path': expected a str or a Path, got int."):
        check_type("path", 3, (str, Path))
    with _fails("Invalid value for 'n': expected an int, got bool."):
        check_type("n", True, int)
    with _fails("Invalid value for 'spec': expected a ModelSpec, got dict."):
        check_type("spec", {}, Path, what="a ModelSpec")


def test_check_path_exists(tmp_path):
    f = tmp_path / "a.edf"
    f.write_text("x")
    assert check_path_exists("eeg", f) == f
    assert check_path_exists("--model", tmp_path, "dir") == tmp_path
    with _fails(f"Invalid value for 'eeg': file not found: {str(tmp_path / 'b.edf')!r}."):
        check_path_exists("eeg", tmp_path / "b.edf")
    with _fails(f"Invalid value for 'eeg': expected a file, got directory {str(tmp_path)!r}."):
        check_path_exists("eeg", tmp_path)
    with _fails(f"Invalid value for '--model': directory not found: {str(tmp_path / 'm')!r}."):
        check_path_exists("--model", tmp_path / "m", "dir")
    with _fails(f"Invalid value for '--model': expected a directory, got file {str(f)!r}."):
        check_path_exists("--model", f, "dir")


def test_a_hint_follows_the_message():
    with _fails("Invalid value for 'backend': expected one of 'ort', 'trt', got 'x'; run `milmer backends`."):
        check_option("backend", "x", ("ort", "trt"), hint="run `milmer backends`.")
    with _fails("Invalid value for '--port': expected an integer in [1, 65535], got 0; pick a free port."):
        check_int("--port", 0, low=1, high=65535, hint="pick a free port")


def test_check_number_finite_and_unit():
    assert check_number("eeg_noise", 0.0, low=0, finite=True) == 0.0
    with _fails("Invalid value for 'eeg_noise': expected a finite number >= 0, got inf."):
        check_number("eeg_noise", float("inf"), low=0, finite=True)
    with _fails("Invalid value for '--timeout': expected seconds > 0, got 0."):
        check_number("--timeout", 0, low=0, low_open=True, unit="seconds")


def test_check_bool():
    assert check_bool("fp16", True) is True
    with _fails("Invalid value for 'fp16': expected True or False, got 1."):
        check_bool("fp16", 1)


def test_check_compare():
    assert check_compare("warmup_epochs", 3, "<", "epochs", 100) == 3
    with _fails("Invalid value for 'warmup_epochs': expected less than epochs = 100, got 100."):
        check_compare("warmup_epochs", 100, "<", "epochs", 100)
    with _fails("Invalid value for 'graph.top_k': expected at most face.frames_per_window = 8, got 9."):
        check_compare("graph.top_k", 9, "<=", "face.frames_per_window", 8)
    with _fails("Invalid value for 'h_freq': expected more than l_freq = 4.0, got 4.0."):
        check_compare("h_freq", 4.0, ">", "l_freq", 4.0)


def test_check_equal_and_exclusive():
    assert check_equal("class_names", ("a", "b"), ("a", "b")) == ("a", "b")
    with _fails("Invalid value for 'class_names': expected ('low', 'high') (label scheme 'valence2'), got ('a',)."):
        check_equal("class_names", ("a",), ("low", "high"), why="label scheme 'valence2'")
    check_exclusive("--model", None, "--server", "http://h:8000")
    with _fails("Invalid value for '--model': '--model' and '--server' exclude each other, got 'm' and 'http://h:8000'."):
        check_exclusive("--model", "m", "--server", "http://h:8000")


def test_check_same_length_and_nonempty():
    assert check_same_length(("a", "b"), ([1, 2], (3, 4))) == 2
    with _fails("Invalid values for 'y_true'/'y_pred': expected the same length, got 3 and 4."):
        check_same_length(("y_true", "y_pred"), ([0] * 3, [0] * 4))
    with _fails("Invalid value for 'records': expected at least one trial, got none."):
        check_nonempty("records", [], "trial")
    assert check_nonempty("subject", [1, 2], "subjects", at_least=2) == [1, 2]
    with _fails("Invalid value for 'subject': expected at least 2 subjects (protocol 'loso'), got 1: [3]; add a subject."):
        check_nonempty("subject", [3], "subjects", at_least=2, why="protocol 'loso'", hint="add a subject")
    with _fails("Invalid value for 'subject': expected at least 2 subjects, got none."):
        check_nonempty("subject", [], "subjects", at_least=2)


def test_check_option_among_found_values():
    assert check_option("--precision", "fp32", ("fp32",), among="the precisions exported to 'm'") == "fp32"
    with _fails("Invalid value for '--precision': expected one of the precisions exported to 'm' ('fp32', 'fp16'), got 'int8'; export them."):
        check_option("--precision", "int8", ("fp32", "fp16"), among="the precisions exported to 'm'", hint="export them")
    with _fails("Invalid value for '--eeg-stream': expected one of the stream names on the network (none), got 'x'."):
        check_option("--eeg-stream", "x", (), among="the stream names on the network")


def test_check_subset_names_every_value_outside():
    assert check_subset("--channel-map", ["Fp1"], ["Fp1", "Fp2"], among="the recording's channels") == ("Fp1",)
    with _fails("Invalid value for '--channel-map': expected names among the recording's channels ('Fp1', 'Fp2'), got 'X9', 'Y9', which are not."):
        check_subset("--channel-map", ["X9", "Fp1", "Y9"], ["Fp1", "Fp2"], among="the recording's channels", what="names")
    with _fails("Invalid value for 'subjects': expected subjects among those with a .dat file (1, 2), got 7, which is not; add s07.dat."):
        check_subset("subjects", [1, 7], [1, 2], among="those with a .dat file", what="subjects", hint="add s07.dat")


def test_check_unique_names_each_repeat():
    assert check_unique("records", ["a", "b"], "trial") == ("a", "b")
    with _fails("Invalid value for 'records': expected each trial once, got 'a' twice, 'b' 3 times."):
        check_unique("records", ["a", "b", "a", "b", "b", "c"], "trial")
    with _fails("Invalid values for '--http-port'/'--grpc-port': expected each port once, got 8000 twice."):
        check_unique(("--http-port", "--grpc-port"), (8000, 8000), "port")


def test_check_whole():
    assert check_whole("eeg.window_s", 0.5, 128, "samples") == 0.5
    with _fails("Invalid value for 'eeg.window_s': expected seconds > 0 that are a whole number of samples at 128 Hz (a multiple of 1/128 s), got 0.3."):
        check_whole("eeg.window_s", 0.3, 128, "samples")
    with _fails("Invalid value for 'recording_s': expected seconds > 0 that are a whole number of frames at 1 Hz (whole seconds), got 0."):
        check_whole("recording_s", 0, 1, "frames")
    with _fails("Invalid value for 'w': expected seconds > 0 that are a whole number of samples at 3 Hz (a multiple of 1/3 s), got 1.0000001."):
        check_whole("w", 1.0000001, 3, "samples", tol=1e-9)


def test_check_requires_and_requires_error():
    assert check_requires("--trt", True, "a CUDA GPU", True, "none found here") is True
    with _fails("Invalid value for '--trt': True needs a CUDA GPU, got none found here; export without --trt."):
        check_requires("--trt", True, "a CUDA GPU", False, "none found here", hint="export without --trt")
    err = requires_error("--precision", "bf16", "a CPU with native bfloat16 arithmetic", "one without avx512_bf16")
    assert isinstance(err, MilmerInputError)
    assert str(err) == "Invalid value for '--precision': 'bf16' needs a CPU with native bfloat16 arithmetic, got one without avx512_bf16."


def test_check_sequence():
    assert check_sequence("subjects", [1, 2], item=lambda n, v: check_int(n, v, low=1)) == (1, 2)
    with _fails("Invalid value for 'subjects[1]': expected an integer >= 1, got 0."):
        check_sequence("subjects", [1, 0], item=lambda n, v: check_int(n, v, low=1))
    with _fails("Invalid value for 'subjects': expected a list of subject numbers, got '1,2'."):
        check_sequence("subjects", "1,2", what="a list of subject numbers")
    with _fails("Invalid value for 'mean': expected a list of 3 values, got (0.5, 0.5)."):
        check_sequence("mean", (0.5, 0.5), length=3)
    with _fails("Invalid value for 'channels': expected a non-empty list of unique values, got ['Fz', 'Fz']."):
        check_sequence("channels", ["Fz", "Fz"], nonempty=True, unique=True)
    with _fails("Invalid value for 'channels': expected a non-empty list of unique values, got []."):
        check_sequence("channels", [], nonempty=True, unique=True)


def test_check_array():
    frame = np.zeros((4, 5, 3), np.uint8)
    assert check_array("frame", frame, shape=("H", "W", 3), dtype=np.uint8) is frame
    assert check_array("frames", np.zeros((2, 4, 5, 3), np.uint8), shape=(..., "H", "W", 3)) is not None
    with _fails("Invalid value for 'frame': expected an (H, W, 3) uint8 array, got float32 (4, 5, 3)."):
        check_array("frame", frame.astype(np.float32), shape=("H", "W", 3), dtype=np.uint8)
    with _fails("Invalid value for 'frame': expected an (H, W, 3) uint8 array, got uint8 (4, 5, 4)."):
        check_array("frame", np.zeros((4, 5, 4), np.uint8), shape=("H", "W", 3), dtype=np.uint8)
    with _fails("Invalid value for 'frame': expected an (H, W, 3) uint8 array, got list."):
        check_array("frame", [[0]], shape=("H", "W", 3), dtype=np.uint8)
    with _fails("Invalid value for 'frame': expected an (H, W, 3) uint8 array with no empty axis, got shape (0, 5, 3)."):
        check_array("frame", np.zeros((0, 5, 3), np.uint8), shape=("H", "W", 3), dtype=np.uint8, nonempty=True)
    with _fails("Invalid value for 'eeg': expected finite numbers, got NaN or Inf in 2 values."):
        check_array("eeg", np.array([[np.nan, 1.0, np.inf]]), finite=True)
    with _fails("Invalid value for 'times': expected non-decreasing values, got an unsorted array."):
        check_array("times", np.array([0.0, 2.0, 1.0]), shape=("N",), nondecreasing=True)
    with _fails("Invalid value for 'y_pred': expected values in [0, 2], got values from 0 to 3."):
        check_array("y_pred", np.array([0, 3]), low=0, high=2)
    with _fails("Invalid value for 'times': expected a 1-D array of finite seconds, got float64 (2, 2)."):
        check_array("times", np.zeros((2, 2)), shape=("N",), what="a 1-D array of finite seconds")


def test_output_folder_checks(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "f").write_text("x")
    assert check_dir_or_absent("--out", tmp_path / "new", empty=True) == tmp_path / "new"
    with _fails(f"Invalid value for '--out': folder {str(tmp_path / 'full')!r} is not empty; choose another folder."):
        check_dir_or_absent("--out", tmp_path / "full", empty=True, hint="choose another folder")
    assert check_writable_dir("out_dir", tmp_path / "a" / "b") == tmp_path / "a" / "b"
    with _fails(f"Invalid value for 'out_dir': cannot create {str(tmp_path / 'f' / 'run')!r}: {str(tmp_path / 'f')!r} is a file, not a folder."):
        check_writable_dir("out_dir", tmp_path / "f" / "run")
    with _fails(f"Invalid value for 'out_dir': {str(tmp_path / 'f')!r} exists and is not a folder."):
        check_writable_dir("out_dir", tmp_path / "f")


def test_output_file_checks(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    assert check_writable_file("--out", tmp_path / "a" / "b" / "p.json") == tmp_path / "a" / "b" / "p.json"
    assert check_writable_file("--out", tmp_path / "f") == tmp_path / "f"  # an existing file is replaced
    with _fails(f"Invalid value for '--out': cannot create {str(tmp_path / 'f' / 'a' / 'p.json')!r}: "
                f"{str(tmp_path / 'f')!r} is a file, not a folder; give a FILE.json."):
        check_writable_file("--out", tmp_path / "f" / "a" / "p.json", hint="give a FILE.json")
    with _fails(f"Invalid value for '--out': {str(tmp_path)!r} is a folder; expected a file name."):
        check_writable_file("--out", tmp_path)
    # A relative path is named as given, the folder that is a file included.
    monkeypatch.chdir(tmp_path)
    with _fails("Invalid value for '--faces': cannot create 'f/x.png': 'f' is a file, not a folder."):
        check_writable_file("--faces", Path("f/x.png"))


def test_parse_ints():
    assert parse_ints("--batch-sizes", "1,8,16") == (1, 8, 16)
    with _fails("Invalid value for '--batch-sizes': expected comma-separated integers, got '1,a'."):
        parse_ints("--batch-sizes", "1,a")
    with _fails("Invalid value for '--trt-profile': expected three integers MIN,OPT,MAX, got '1,8'."):
        parse_ints("--trt-profile", "1,8", length=3, what="three integers MIN,OPT,MAX")


def test_read_error():
    err = read_error("eeg", Path("x.edf"), ValueError("bad header"), what="EDF file")
    assert isinstance(err, MilmerInputError)
    assert str(err) == "Invalid value for 'eeg': the EDF file 'x.edf' could not be read (ValueError: bad header)."
