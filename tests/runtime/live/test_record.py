"""``--record``: a header written first, a killed session's raw files finished by ``recover``, and
nothing left behind when the session's setup fails."""

from __future__ import annotations

import json

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.live.engine import LiveConfig
from milmer.runtime.live.lsl import EEGStreamInfo
from milmer.runtime.live.record import Recorder, recover
from milmer.runtime.live.session import LiveRequest, run_live

from .conftest import EEGPlayer, needs_lsl, stream_name


def _info() -> EEGStreamInfo:
    return EEGStreamInfo(
        name="eeg", type="EEG", source_id="amp-1", hostname="h", sfreq=128.0,
        channels=("Fp1", "Fp2", "Cz"), types=("eeg", "eeg", "eeg"), units=("microvolts",) * 3, labelled=True,
    )  # fmt: skip


def test_a_killed_recording_has_its_header_and_is_finished_by_recover(tmp_path):
    folder = tmp_path / "rec"
    rec = Recorder(folder, _info(), 1e-6)
    header = json.loads((folder / "header.json").read_text())
    assert header["stream"]["channels"] == ["Fp1", "Fp2", "Cz"] and header["eeg_scale_to_volts"] == 1e-6
    assert json.loads((folder / "alignment.json").read_text())["complete"] is False
    rng = np.random.default_rng(0)
    data = rng.normal(size=(256, 3))  # (T, C) microvolts
    stamps = 100.0 + np.arange(256) / 128.0
    rec.eeg(data[:128], stamps[:128])
    rec.eeg(data[128:], stamps[128:])
    # SIGKILL: no close(); the writer thread dies with the process, a chunk was half written.
    rec._frames.put(None)
    rec._writer.join()
    with open(folder / "eeg.f64", "ab") as f:
        f.write(np.zeros(2).tobytes())
    alignment = recover(folder)
    assert alignment["complete"] and alignment["recovered"] and alignment["eeg"]["n_samples"] == 256
    import mne

    raw = mne.io.read_raw_fif(folder / "eeg_raw.fif", preload=True, verbose="error")
    assert raw.ch_names == ["Fp1", "Fp2", "Cz"] and raw.info["sfreq"] == 128.0
    np.testing.assert_allclose(raw.get_data().T, data * 1e-6, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(np.load(folder / "eeg_times.npy"), stamps)
    assert not (folder / "eeg.f64").exists()


def test_recover_refuses_a_folder_without_header(tmp_path):
    with pytest.raises(MilmerInputError, match="is not an unfinished live recording"):
        recover(tmp_path)


@needs_lsl
@pytest.mark.parametrize("bad_video", ["missing.mp4", "not-a-video.mp4"])
def test_a_setup_error_leaves_no_recording(tiny_model, demo_recording, tmp_path, bad_video):
    """A --video that is missing (refused before the recorder opens) or cannot be decoded (after):
    exit with the error, and --record DIR does not exist afterwards (the next run is not refused)."""
    rec = demo_recording
    name = stream_name()
    player = EEGPlayer(name, rec["data"][: int(4 * rec["sfreq"])], rec["sfreq"], rec["channels"], rec["types"]).start()
    (tmp_path / "not-a-video.mp4").write_text("not a video")
    record = tmp_path / "rec"
    request = LiveRequest(
        model=tiny_model, eeg_stream=name, video=str(tmp_path / bad_video),
        config=LiveConfig(calibration_s=3.0, duration_s=10.0), record=record, view=False,
    )  # fmt: skip
    with pytest.raises(MilmerInputError, match="--video"):
        run_live(request)
    player.close()
    player.thread.join(10.0)
    assert not record.exists()


@needs_lsl
def test_a_camera_that_cannot_be_opened_is_said_once_and_exits_naming_video(tiny_model, demo_recording, tmp_path, capsys):
    rec = demo_recording
    name = stream_name()
    player = EEGPlayer(name, rec["data"][: int(6 * rec["sfreq"])], rec["sfreq"], rec["channels"], rec["types"]).start()
    out = tmp_path / "live.jsonl"
    request = LiveRequest(
        model=tiny_model, eeg_stream=name, video="/dev/video-milmer-missing",
        config=LiveConfig(calibration_s=3.0, duration_s=4.0), out=out, view=False,
    )  # fmt: skip
    with pytest.raises(MilmerInputError, match=r"Invalid value for '--video': no frame arrived from '/dev/video-milmer-missing'.*No such file"):
        run_live(request)
    player.close()
    player.thread.join(10.0)
    err = capsys.readouterr().err
    assert err.count("cannot open --video '/dev/video-milmer-missing'") == 1, err
    # The windows are still accounted for (video-stall) in the JSON lines written before the refusal.
    assert json.loads(out.read_text().splitlines()[-1])["type"] == "summary"


@needs_lsl
def test_two_eeg_streams_are_named_with_the_option_that_picks_one():
    import pylsl

    from milmer.runtime.live.lsl import resolve_eeg

    stype = stream_name()  # a type no other test uses
    names = [f"{stype}-a", f"{stype}-b"]
    outlets = [pylsl.StreamOutlet(pylsl.StreamInfo(n, stype, 2, 128.0, "float32", f"src-{n}")) for n in names]
    with pytest.raises(MilmerInputError) as err:
        resolve_eeg(None, stream_type=stype, timeout_s=2.0)
    msg = str(err.value)
    assert f"2 LSL streams have type {stype!r}" in msg
    assert f"{names[0]!r} (source 'src-{names[0]}'" in msg and f"{names[1]!r}" in msg
    assert f"pick one with --eeg-stream NAME (e.g. --eeg-stream {names[0]!r})" in msg
    del outlets
