"""The shared input checks in milmer.runtime.check."""

import re
from pathlib import Path

import numpy as np
import pytest

from milmer.runtime.check import (
    MilmerInputError,
    check_finite,
    check_int,
    check_keys,
    check_number,
    check_path_exists,
    check_type,
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
    with _fails("Invalid value for '--trial': expected an integer in 1-40, got 41."):
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
