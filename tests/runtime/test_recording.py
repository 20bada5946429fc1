"""The one recording-in step end to end: a 32-channel BrainVision cap lacking seven of the
model's channels is interpolated (opt-in), predicted, and flagged in every output."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.eeg.preprocess import EEGInputOptions
from milmer.runtime.recording import RecordingOptions, open_recording
from milmer.runtime.spec import DEAP_CHANNELS, ICASpec

LACKING = ("AF3", "AF4", "PO3", "PO4", "Oz", "T7", "T8")
FLAG = "interpolated:AF3,T7,PO3,Oz,AF4,T8,PO4"


@pytest.fixture(scope="module")
def haar_model(tiny_graphs, tmp_path_factory):
    spec = tiny_graphs.tiny_spec()
    spec = spec.replace(
        face=dataclasses.replace(spec.face, detector="opencv-haar"),
        eeg=dataclasses.replace(spec.eeg, ica=ICASpec(enabled=False)),
    )
    return tiny_graphs.write_model_dir(tmp_path_factory.mktemp("model") / "haar", spec)


@pytest.fixture(scope="module")
def cap(recording, tmp_path_factory):
    """The recording's 12 s of EEG as a BrainVision file whose cap lacks seven channels."""
    import mne

    raw = mne.io.read_raw_edf(recording[1], preload=True, verbose="error")
    keep = [c for c in DEAP_CHANNELS if c not in LACKING]
    data = raw.get_data(picks=keep) * 1e6
    names = keep + ["FT9", "FT10", "TP9", "TP10", "F5", "F6", "P5"]
    data = np.vstack([data, data[:7] * 0.5])
    path = tmp_path_factory.mktemp("bv") / "cap.vhdr"
    stem = path.with_suffix("")
    stem.with_suffix(".eeg").write_bytes(data.astype("<f4").T.tobytes())
    chans = "".join(f"Ch{i + 1}={n},,1,\u00b5V\n" for i, n in enumerate(names))
    path.write_text(
        "Brain Vision Data Exchange Header File Version 1.0\n[Common Infos]\nCodepage=UTF-8\n"
        "DataFile=cap.eeg\nMarkerFile=cap.vmrk\nDataFormat=BINARY\nDataOrientation=MULTIPLEXED\n"
        "NumberOfChannels=32\nSamplingInterval=7812.5\n[Binary Infos]\nBinaryFormat=IEEE_FLOAT_32\n"
        "[Channel Infos]\n" + chans,
        encoding="utf-8",
    )
    stem.with_suffix(".vmrk").write_text(
        "Brain Vision Data Exchange Marker File, Version 1.0\n[Common Infos]\nCodepage=UTF-8\n"
        "DataFile=cap.eeg\n[Marker Infos]\nMk1=New Segment,,1,1,0\n",
        encoding="utf-8",
    )
    return recording[0], path


def test_missing_channels_end_to_end_with_interpolation_flagged(haar_model, cap, tmp_path):
    from milmer.runtime.pipeline import Pipeline
    from milmer.runtime.report import result_to_dict, write_csv

    video, eeg = cap
    options = RecordingOptions(eeg=EEGInputOptions(interpolate_missing=True))
    with Pipeline(haar_model, intra_op_threads=1) as pipe:
        with pytest.raises(MilmerInputError, match=r"lacks 7 of the model's 32 EEG channels.*--interpolate-missing"):
            pipe.predict(video, eeg)
        result = pipe.predict(video, eeg, options=options)
    assert [w.start for w in result.windows] == [0.0, 3.0, 6.0, 9.0]
    assert all(FLAG in w.flags for w in result.windows)
    doc = result_to_dict(result)
    json.dumps(doc)
    assert all(FLAG in w["quality"] for w in doc["windows"])
    assert doc["summary"]["eeg"]["channels"]["interpolated"] == ["AF3", "T7", "PO3", "Oz", "AF4", "T8", "PO4"]
    assert any(n.startswith("interpolated 7 channel(s) from their neighbours") for n in doc["summary"]["notes"])
    rows = write_csv(result, tmp_path / "p.csv").read_text().splitlines()
    assert rows[0].endswith(",quality,demo_model,video_start,alignment") and all(FLAG in r for r in rows[1:])


def test_open_recording_keeps_flags_of_selected_windows(cap):
    from milmer.runtime.spec import ModelSpec

    spec = ModelSpec()
    spec = spec.replace(eeg=dataclasses.replace(spec.eeg, ica=ICASpec(enabled=False)))
    video, eeg = cap
    rec = open_recording(
        video, eeg, spec, RecordingOptions(offset_s=-3.0, eeg=EEGInputOptions(interpolate_missing=True))
    )
    # Video time = EEG time - 3 s: the first window lies before the video starts.
    assert rec.indices.tolist() == [1, 2, 3] and rec.windows.starts.tolist() == [3.0, 6.0, 9.0]
    assert rec.windows.flags == [(FLAG,)] * 3


def test_an_eeg_file_of_an_unknown_type_is_refused_naming_every_type_read(tmp_path):
    from milmer.runtime.recording import read_eeg

    bad = tmp_path / "eeg.xyz"
    bad.write_text("Fp1,Fp2\n")
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'eeg': unsupported file type '\.xyz' for 'eeg\.xyz'; "
                       r"expected one of '\.edf', '\.bdf', '\.fif', '\.vhdr', '\.dat', '\.xdf', '\.set', '\.mff'\.$"):  # fmt: skip
        read_eeg(bad, RecordingOptions(), [])


@pytest.mark.parametrize("suffix", [".xdf", ".set", ".mff"])
def test_swapped_arguments_are_named_for_every_eeg_format(tmp_path, suffix):
    """The swap check knows the formats read through eeg/formats.py; an EGI .mff recording is a folder."""
    from milmer.runtime.recording import check_recording_paths

    video = tmp_path / "face.mp4"
    video.write_bytes(b"")
    eeg = tmp_path / f"rec{suffix}"
    eeg.mkdir() if suffix == ".mff" else eeg.write_bytes(b"")
    with pytest.raises(MilmerInputError, match=rf"'video': 'rec\{suffix}' is an EEG file and 'face.mp4'.*look swapped"):
        check_recording_paths(eeg, video)
    assert check_recording_paths(video, eeg) == (video, eeg)


def test_an_mff_that_is_a_file_and_a_text_export_are_refused_before_reading(tmp_path):
    from milmer.runtime.recording import check_recording_paths

    video = tmp_path / "face.mp4"
    video.write_bytes(b"")
    (tmp_path / "rec.mff").write_bytes(b"")
    with pytest.raises(MilmerInputError, match=r"'eeg': expected a directory, got file"):
        check_recording_paths(video, tmp_path / "rec.mff")
    (tmp_path / "rec.txt").write_text("")
    with pytest.raises(MilmerInputError, match=r"unsupported file type '\.txt'.*LabRecorder"):
        check_recording_paths(video, tmp_path / "rec.txt")
