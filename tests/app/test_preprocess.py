"""``milmer preprocess``'s request: parsed and checked once, cheapest first, before any slow work."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from milmer.app.preprocess import PreprocessRequest
from milmer.runtime.check import MilmerInputError


def test_the_request_holds_typed_checked_values(recording, tmp_path):
    video, eeg = recording
    request = PreprocessRequest.parse(
        video=video, eeg=eeg, out=tmp_path / "pre", offset="-1.5", detector="opencv-haar", baseline=2.0
    )
    assert (request.video, request.eeg, request.out) == (Path(video), Path(eeg), tmp_path / "pre")
    assert (request.recording.offset_s, request.recording.baseline_s) == (-1.5, 2.0)
    assert request.spec.face.detector == "opencv-haar"  # --detector applied to the default spec
    assert not (tmp_path / "pre").exists()  # parsing writes nothing


def test_cheap_checks_come_first_and_name_the_option(recording, tmp_path):
    """--out, the options, --detector, --spec, then the input files; nothing is written."""
    video, eeg = recording
    missing = tmp_path / "none"
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    parse = dict(video=missing / "v.avi", eeg=missing / "e.edf")
    with pytest.raises(MilmerInputError, match="^Invalid value for '--out': folder .* is not empty"):
        PreprocessRequest.parse(**parse, out=taken, detector="yolo")
    out = tmp_path / "pre"
    with pytest.raises(MilmerInputError, match="^Invalid value for '--detector': expected one of 'blazeface-short-range', 'opencv-haar', got 'yolo'"):
        PreprocessRequest.parse(**parse, out=out, detector="yolo")
    with pytest.raises(MilmerInputError, match=r"^Invalid value for '--spec': file not found: '.*spec\.json'\.$"):
        PreprocessRequest.parse(**parse, out=out, spec_file=missing / "spec.json")
    with pytest.raises(MilmerInputError, match="^Invalid value for 'video': file not found"):
        PreprocessRequest.parse(**parse, out=out)
    with pytest.raises(MilmerInputError, match=r"look swapped\. The order is `milmer preprocess VIDEO EEG`"):
        PreprocessRequest.parse(video=eeg, eeg=video, out=out)
    assert not out.exists() and [p.name for p in taken.iterdir()] == ["keep.txt"]


def test_an_out_that_is_or_sits_under_a_file_is_refused_up_front(tmp_path):
    """A file at --out is not offered --overwrite (it replaces only a folder), with or without it;
    a file where a parent folder should be is named, before the inputs are read."""
    missing = tmp_path / "none"
    parse = dict(video=missing / "v.avi", eeg=missing / "e.edf")
    f = tmp_path / "F"
    f.write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(MilmerInputError, match=re.escape(
            f"Invalid value for '--out': {str(f)!r} exists and is not a folder; give a new or empty folder in a "
            "writable place."
        )):
            PreprocessRequest.parse(**parse, out=f, overwrite=overwrite)
    with pytest.raises(MilmerInputError, match=re.escape(
        f"Invalid value for '--out': cannot create {str(f / 'sub')!r}: {str(f)!r} is a file, not a folder; give a "
        "new or empty folder in a writable place."
    )):
        PreprocessRequest.parse(**parse, out=f / "sub")
    assert f.read_text() == "mine"
