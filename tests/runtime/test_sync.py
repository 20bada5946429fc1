"""Each way real recordings go out of step, on a small generated recording with a flash at a known
real time: the alignment must put the EEG's instant of the flash on the flash's frame, within one
frame interval, or say exactly why it may not."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.eeg.report import EEGNote
from milmer.runtime.recording import RecordingOptions, align_recording, read_eeg_timed

from . import syncgen as g

START = g.utc(2024, 5, 1, 10, 0, 0)


def codes(alignment) -> list[str]:
    return [n.code for n in alignment.notes]


def hits(alignment, eeg_time_s: float, video: Path, fps: float) -> float:
    """How far (in frame intervals) the aligned video time of ``eeg_time_s`` is from the flash."""
    return abs(float(alignment.eeg_to_video(eeg_time_s)) - g.flash_time(video)) * fps


# ------------------------------------------------------------------ 1. amplifier clock drift
@pytest.fixture(scope="module")
def drifting(tmp_path_factory):
    """100 s session; the amplifier's header says 256 Hz but it delivers 253.44 (1 % slow: 25344
    samples, 99 s by the header); the video (10 fps) ran the whole session; the flash is at real 80 s."""
    d = tmp_path_factory.mktemp("drift")
    fps, true_rate = 10.0, 253.44
    video = g.write_mp4(d / "v.mp4", fps, 1000, range(800, 802))
    eeg = g.write_edf(d / "e.edf", 25344, 256.0)
    return video, eeg, fps, true_rate


def test_drift_is_reported_with_the_rate_that_settles_it(drifting):
    video, eeg, fps, true_rate = drifting
    alignment, _ = align_recording(video, eeg)
    assert "durations-differ" in codes(alignment)
    (warning,) = alignment.warnings()
    assert "differ by 1.00 s (1.00 %)" in warning and "--eeg-rate 253.4400" in warning
    assert hits(alignment, 80 * true_rate / 256, video, fps) > 5  # nominal rates: 0.8 s (8 frames) off


def test_eeg_rate_option_puts_the_flash_on_its_frame(drifting):
    video, eeg, fps, true_rate = drifting
    alignment, _ = align_recording(video, eeg, RecordingOptions(eeg_rate=true_rate))
    # The flash's EEG sample is 80 s x 253.44 Hz; its local time counts samples at 256 Hz.
    assert hits(alignment, 80 * true_rate / 256, video, fps) <= 1.0
    assert alignment.eeg.rate.source == "option" and alignment.warnings() == []
    assert alignment.to_dict()["eeg"]["drift_ppm"] == pytest.approx(-10000.0)


def test_bad_rate_options_are_refused(drifting):
    video, eeg, *_ = drifting
    with pytest.raises(MilmerInputError, match=r"Invalid value for 'eeg_rate': expected a finite rate in Hz > 0, got -1"):
        align_recording(video, eeg, RecordingOptions(eeg_rate=-1))
    with pytest.raises(MilmerInputError, match=r"Invalid value for 'offset_s': expected 'auto' or a finite number"):
        align_recording(video, eeg, RecordingOptions(offset_s="soon"))


# ------------------------------------------------------------------ 2. a video stream starting late
def test_a_late_video_stream_is_placed_on_the_container_timeline(tmp_path):
    """Audio from 0, video from 1.5 s (as a camera that starts its sensor late writes it); the EEG
    started with the container; the flash is at real 8 s = the video's 6.5 s (its 65th frame)."""
    fps = 10.0
    video = g.write_mp4(tmp_path / "v.mp4", fps, 150, range(65, 67), video_start_s=1.5, audio_s=17)
    eeg = g.write_edf(tmp_path / "e.edf", 17 * 256, 256.0)
    alignment, _ = align_recording(video, eeg)
    assert hits(alignment, 8.0, video, fps) <= 1.0
    # The offset is in the player's (container's) time, as --offset: 0, the first frame at 1.5 s.
    assert alignment.offset_s == pytest.approx(0.0) and alignment.video_lead_s == pytest.approx(1.5)
    assert float(alignment.eeg_to_video(0.0)) == pytest.approx(-1.5)
    forced, _ = align_recording(video, eeg, RecordingOptions(offset_s=0.0))
    assert hits(forced, 8.0, video, fps) <= 1.0 and forced.offset_s == pytest.approx(0.0)
    note = next(n for n in alignment.notes if n.code == "video-start")
    assert "starts 1.500 s into its container (audio from 0)" in note.message


# ------------------------------------------------------------------ 3. recorded start times
def test_recorded_start_times_give_the_offset(tmp_path):
    """The camera was started 5 s after the amplifier: EDF start 10:00:00, MP4 creation_time
    10:00:05; the flash is at real 20 s after the EEG's start = the video's 15 s."""
    fps = 10.0
    video = g.write_mp4(tmp_path / "v.mp4", fps, 250, range(150, 152), creation_time="2024-05-01T10:00:05.000000Z")
    eeg = g.write_edf(tmp_path / "e.edf", 30 * 256, 256.0, start=START)
    alignment, _ = align_recording(video, eeg)
    assert hits(alignment, 20.0, video, fps) <= 1.0
    assert alignment.offset_s == pytest.approx(-5.0) and alignment.offset_source == "header"
    assert "EDF header 2024-05-01 10:00:00, video creation_time 2024-05-01 10:00:05" in alignment.video.start.detail
    d = alignment.to_dict()
    assert d["offset_source"] == "header" and d["video"]["start"]["source"] == "header"
    # --offset overrides, and the disagreement is one warning line naming the option.
    forced, _ = align_recording(video, eeg, RecordingOptions(offset_s=0.0))
    assert forced.offset_s == 0.0 and forced.offset_source == "option"
    (warning,) = forced.warnings()
    assert warning.startswith("--offset 0 s differs from the recorded start times' -5 s")


def test_implausible_start_times_are_not_used(tmp_path):
    """A camera clock 3 h off (time zone): stamps further apart than the recordings last."""
    video = g.write_mp4(tmp_path / "v.mp4", 10.0, 100, range(0), creation_time="2024-05-01T13:00:05Z")
    eeg = g.write_edf(tmp_path / "e.edf", 10 * 256, 256.0, start=START)
    alignment, _ = align_recording(video, eeg)
    assert alignment.offset_s == 0.0 and alignment.offset_source == "assumed"
    (warning,) = alignment.warnings()
    assert "disagree by +10805 s" not in warning and "-10805 s" in warning and "--offset" in warning


def test_no_evidence_keeps_offset_zero_and_says_it_was_assumed(tmp_path):
    video = g.write_mp4(tmp_path / "v.mp4", 10.0, 100, range(0))
    eeg = g.write_edf(tmp_path / "e.edf", 10 * 256, 256.0, start=START)
    alignment, _ = align_recording(video, eeg)
    assert alignment.offset_s == 0.0 and alignment.offset_source == "assumed"
    assert codes(alignment) == ["offset-assumed"] and alignment.warnings() == []
    assert "video: no creation_time" in alignment.notes[0].message


# ------------------------------------------------------------------ 4. a recorder pause
def test_a_brainvision_pause_is_placed_at_its_recorded_time(tmp_path):
    """10 s recorded, paused 5 s, 10 s more (second New Segment dated 10:00:15); the video ran
    throughout; the flash is at real 18 s (the EEG's 13th second of samples)."""
    fps, sfreq = 10.0, 250.0
    video = g.write_mp4(tmp_path / "v.mp4", fps, 250, range(180, 182))
    vhdr = g.write_brainvision(tmp_path / "e.vhdr", sfreq, [(2500, START), (2500, g.utc(2024, 5, 1, 10, 0, 15))])
    notes: list[EEGNote] = []
    raw, _, _, timing = read_eeg_timed(vhdr, RecordingOptions(), notes)
    assert raw.n_times == 25 * 250
    skip = [(a["onset"], a["duration"]) for a in raw.annotations if a["description"] == "BAD_ACQ_SKIP"]
    assert skip == [(pytest.approx(10.0), pytest.approx(5.0))]
    assert "1 pause(s) 10.0-15.0 s put at their recorded times" in notes[-1].text
    assert (notes[-1].code, notes[-1].severity, notes[-1].data) == ("recording-paused", "warning", {"pauses_s": [[10.0, 15.0]]})
    assert timing.segments[0].start_s == 15.0 and timing.segments[0].source == "header"
    alignment, _ = align_recording(video, vhdr)
    assert hits(alignment, 18.0, video, fps) <= 1.0
    assert "eeg-pause" in codes(alignment)
    # The segment as report.json states it: local_s is the EEG's time as read, counting the pause
    # (the file's 10 s + 5 s), as documented; start_s its common time.
    assert alignment.to_dict()["eeg"]["segments"] == [
        {"local_s": 15.0, "start_s": 15.0, "duration_s": 10.0, "source": "header",
         "detail": "New Segment 2024-05-01T10:00:15+00:00"}]


def test_windows_across_the_pause_are_dropped(tmp_path):
    """7 s, a 2 s pause, 8 s: of the 3 s windows, the one over 6-9 s crosses the pause and is
    dropped; those after it sit at their true times."""
    from milmer.runtime.eeg.preprocess import preprocess_raw
    from milmer.runtime.eeg.timing import brainvision_segments
    from milmer.runtime.spec import DEAP_CHANNELS, ModelSpec

    vhdr = g.write_brainvision(
        tmp_path / "e.vhdr", 128.0, [(128 * 7, START), (128 * 8, g.utc(2024, 5, 1, 10, 0, 9))], DEAP_CHANNELS
    )
    segs = brainvision_segments(vhdr)
    assert [s.sample for s in segs] == [0, 896] and segs[1].date == g.utc(2024, 5, 1, 10, 0, 9)
    raw, _, _, _ = read_eeg_timed(vhdr, RecordingOptions(), [])
    assert raw.n_times == 128 * 17
    windows = preprocess_raw(raw, ModelSpec().eeg)
    assert windows.starts.tolist() == [0.0, 3.0, 9.0, 12.0]
    assert windows.info["windows_dropped_gap"] == [6.0]


# ------------------------------------------------------------------ 5. an AVI whose header fps is wrong
def test_an_avi_with_a_wrong_header_rate_is_detected_and_fixed_by_video_fps(tmp_path):
    """A webcam delivered 20 fps; OpenCV's VideoWriter was told 30. 60 s recorded with the EEG;
    the flash is at real 42 s = frame 840 (28.0 s at the header's 30 fps)."""
    video = g.write_avi(tmp_path / "v.avi", 30.0, 1200, range(840, 842))
    eeg = g.write_edf(tmp_path / "e.edf", 60 * 256, 256.0)
    alignment, _ = align_recording(video, eeg)
    (warning,) = alignment.warnings()
    assert "AVI's header says 30.00 fps" in warning and "--video-fps 20.00" in warning
    assert alignment.video.rate.source == "header"
    fixed, _ = align_recording(video, eeg, RecordingOptions(video_fps=20.0))
    assert hits(fixed, 42.0, video, 30.0) <= 1.0 and fixed.warnings() == []
    assert hits(alignment, 42.0, video, 30.0) > 30  # by the header: 14 s off


def test_a_short_avi_with_a_wrong_header_rate_is_detected_too(tmp_path):
    """20 s recorded with the EEG; the webcam delivered 25 fps, the VideoWriter was told 50: 500
    frames that last 10 s by the header. The rate check runs whatever the length (the one-minute
    floor is the drift estimate's); the flash at real 12 s is frame 300 (6 s by the header)."""
    video = g.write_avi(tmp_path / "v.avi", 50.0, 500, range(300, 302))
    eeg = g.write_edf(tmp_path / "e.edf", 20 * 256, 256.0)
    alignment, _ = align_recording(video, eeg)
    (warning,) = alignment.warnings()
    assert "AVI's header says 50.00 fps" in warning and "--video-fps 25.00" in warning
    fixed, _ = align_recording(video, eeg, RecordingOptions(video_fps=25.0))
    assert hits(fixed, 12.0, video, 50.0) <= 1.0 and fixed.warnings() == []
    # Video times (frame_times, video_start) stay in the header's time, as documented: EEG 12 s is 6.0 s.
    assert float(fixed.eeg_to_video(12.0)) == pytest.approx(6.0)


def test_a_short_avi_that_ends_a_frame_early_is_not_a_wrong_rate(tmp_path):
    """20 s of EEG, 499 frames at a true 25 fps: one frame short is the camera stopping, not a rate."""
    video = g.write_avi(tmp_path / "v.avi", 25.0, 499, range(300, 302))
    eeg = g.write_edf(tmp_path / "e.edf", 20 * 256, 256.0)
    alignment, _ = align_recording(video, eeg)
    assert alignment.warnings() == []


# ------------------------------------------------------------------ 6. formats carrying the time base
def xdf_recording(tmp_path: Path, with_markers: bool = True) -> tuple[Path, Path, float]:
    """LabRecorder: EEG (256 Hz) from LSL time 5000 for 30 s on the recording computer; the camera
    computer (clock 100 s ahead, offsets recorded) pushed one marker per written frame, its first
    frame at LSL 5003 and a true 29.7 fps; the flash is at LSL 5015 = EEG 15 s = frame 356."""
    fps_true = 29.7
    n = int(30 * 256)
    eeg_stream = {
        "name": "BioSemi", "type": "EEG", "channels": ["Fp1", "Fp2"], "srate": 256.0, "format": "float32",
        "data": np.random.default_rng(2).normal(0, 10, (n, 2)), "stamps": 5000.0 + np.arange(n) / 256,
        "offsets": [(5000.0, 0.0), (5030.0, 0.0)],
    }
    frames = np.arange(800)
    marker_stream = {
        "name": "VideoFrames", "type": "Markers", "channels": ["frame"], "srate": 0.0, "format": "string",
        "data": [str(k) for k in frames], "stamps": 5103.0 + frames / fps_true,
        "offsets": [(5100.0, -100.0), (5130.0, -100.0)],
    }
    flash = int(round((15.0 - 3.0) * fps_true))
    video = g.write_mp4(tmp_path / "v.mp4", 30.0, 800, range(flash, flash + 2))
    xdf = g.write_xdf(tmp_path / "r.xdf", [eeg_stream] + ([marker_stream] if with_markers else []))
    return video, xdf, 30.0


def test_xdf_aligns_by_its_clock(tmp_path):
    pytest.importorskip("pyxdf")
    video, xdf, fps = xdf_recording(tmp_path)
    alignment, notes = align_recording(video, xdf)
    assert alignment.clock == "xdf" and alignment.offset_source == "clock"
    assert hits(alignment, 15.0, video, fps) <= 1.0
    assert alignment.video.true_rate == pytest.approx(29.7, rel=1e-6)
    assert alignment.eeg.true_rate == pytest.approx(256.0, rel=1e-6)
    assert "'VideoFrames'" in alignment.notes[0].message
    forced, _ = align_recording(video, xdf, RecordingOptions(offset_s=-2.0))  # --offset wins, on the XDF clock too
    assert forced.offset_s == pytest.approx(-2.0) and forced.offset_source == "option"
    # ... and says that it overrides the clock's: first frame 3 s after the EEG's, at 29.7 fps in 30 fps local time.
    assert forced.warnings() == [
        "--offset -2 s differs from the XDF clock's -2.970 s (its video frame markers); --offset is used. "
        "Leave --offset out to use the clock."]
    agreeing, _ = align_recording(video, xdf, RecordingOptions(offset_s=-2.97))
    assert agreeing.warnings() == []


def test_xdf_without_video_markers_says_so(tmp_path):
    pytest.importorskip("pyxdf")
    video, xdf, _ = xdf_recording(tmp_path, with_markers=False)
    alignment, notes = align_recording(video, xdf)
    assert alignment.clock == "eeg" and alignment.offset_source == "assumed"
    assert [(n.code, n.severity) for n in notes if "no video frame-marker stream" in n.text] == [("no-video-markers", "info")]
    # The EEG's rate by its timestamps is still used (here exactly its nominal 256 Hz).
    assert alignment.eeg.rate.source == "clock" and alignment.eeg.true_rate == pytest.approx(256.0, rel=1e-6)


def test_xdf_eeg_rate_without_markers_corrects_drift(tmp_path):
    """An amplifier 1 % slow (253.44 Hz under a 256 Hz header) streamed to LSL; the webcam on the
    same computer (real timestamps) ran the same 100 s; the flash is at real 80 s."""
    pytest.importorskip("pyxdf")
    n = 25344
    eeg_stream = {"name": "Amp", "type": "EEG", "channels": ["Fp1", "Fp2"], "srate": 256.0, "format": "float32",
                  "data": np.random.default_rng(4).normal(0, 10, (n, 2)), "stamps": 100.0 + np.arange(n) / 253.44}
    xdf = g.write_xdf(tmp_path / "r.xdf", [eeg_stream])
    video = g.write_mp4(tmp_path / "v.mp4", 10.0, 1000, range(800, 802))
    alignment, _ = align_recording(video, xdf)
    assert alignment.eeg.true_rate == pytest.approx(253.44, rel=1e-6)
    assert hits(alignment, 80 * 253.44 / 256, video, 10.0) <= 1.0
    assert [n.code for n in alignment.notes] == ["eeg-rate-clock", "offset-assumed"] and alignment.warnings() == []


def test_xdf_without_eeg_names_its_streams(tmp_path):
    pytest.importorskip("pyxdf")
    xdf = g.write_xdf(tmp_path / "r.xdf", [{
        "name": "Cam", "type": "Markers", "channels": ["frame"], "srate": 0.0, "format": "string",
        "data": ["0", "1"], "stamps": [1.0, 2.0]}])
    video = g.write_mp4(tmp_path / "v.mp4", 10.0, 20, range(0))
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'eeg': expected at least one EEG stream \(type 'EEG'\), got none; 'r\.xdf' holds 'Cam' \(Markers\)\.$"):
        align_recording(video, xdf)


def test_a_truncated_xdf_says_its_eeg_stream_has_no_samples(tmp_path):
    """LabRecorder wrote the stream header, then stopped: the EEG stream is there, its samples are not."""
    pytest.importorskip("pyxdf")
    xdf = tmp_path / "r.xdf"
    xdf.write_bytes(b"XDF:" + g._chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')
                    + g._chunk(2, b"\x01\x00\x00\x00" + g._header_xml("Amp", "EEG", ["Fp1", "Fp2"], 256.0, "float32")))
    video = g.write_mp4(tmp_path / "v.mp4", 10.0, 20, range(0))
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'eeg': 'r.xdf' has an EEG stream but fewer than 2 "
                       r"samples in it \('Amp' \(0\)\): the file looks truncated .*Use a complete recording\.$"):
        align_recording(video, xdf)


@pytest.mark.parametrize("name", ["rec.txt", "rec.csv"])
def test_openbci_and_brainflow_text_are_refused_with_how_to_convert(tmp_path, name):
    path = tmp_path / name
    path.write_text("%OpenBCI Raw EEG Data\n%Sample Rate = 250 Hz\n")
    with pytest.raises(MilmerInputError, match=rf"unsupported file type '\.{name[-3:]}' for '{name}'; expected one of '\.edf', "
                       r".*'\.mff'; OpenBCI GUI .* LabRecorder to \.xdf"):
        read_eeg_timed(path, RecordingOptions(), [])


def test_timing_is_assumed_for_a_dat_trial_free_of_stamps():
    from milmer.runtime.timebase import Alignment

    a = Alignment.assumed(128.0, 25.0)
    assert math.isclose(a.offset_s, 0.0) and a.summary().startswith("offset +0.000 s (assumed)")


def test_an_xdf_eeg_stream_that_paused_is_put_at_its_times(tmp_path):
    """The EEG stream stopped for 4 s after 10 s (a dropped connection); the flash at LSL 5016
    is the EEG's 16th second of true time and the video's 13th (camera from LSL 5003)."""
    pytest.importorskip("pyxdf")
    n = 20 * 256
    stamps = 5000.0 + np.arange(n) / 256
    stamps[10 * 256 :] += 4.0
    eeg_stream = {"name": "Amp", "type": "EEG", "channels": ["Fp1", "Fp2"], "srate": 256.0, "format": "float32",
                  "data": np.random.default_rng(3).normal(0, 10, (n, 2)), "stamps": stamps}
    frames = np.arange(750)
    marker_stream = {"name": "VideoFrames", "type": "Markers", "channels": ["frame"], "srate": 0.0,
                     "format": "string", "data": [str(k) for k in frames], "stamps": 5003.0 + frames / 30.0}
    video = g.write_mp4(tmp_path / "v.mp4", 30.0, 750, range(390, 392))
    xdf = g.write_xdf(tmp_path / "r.xdf", [eeg_stream, marker_stream])
    notes: list[EEGNote] = []
    raw, _, _, _ = read_eeg_timed(xdf, RecordingOptions(), notes)
    assert raw.n_times == 24 * 256
    assert [(a["onset"], a["duration"]) for a in raw.annotations] == [(pytest.approx(10.0), pytest.approx(4.0))]
    assert [n.code for n in notes if "paused 1 time(s) 10.0-14.0 s" in n.text] == ["recording-paused"]
    alignment, _ = align_recording(video, xdf)
    assert hits(alignment, 16.0, video, 30.0) <= 1.0


def write_eeglab(path: Path, n: int, sfreq: float) -> Path:
    """A minimal EEGLAB .set (MATLAB 5 file, data inline, microvolts) as EEGLAB saves one."""
    import scipy.io

    data = np.random.default_rng(0).normal(0, 10, (2, n)).astype(np.float32)
    chanlocs = np.array([("Fp1",), ("Fp2",)], dtype=[("labels", object)])
    eeg = {"setname": "x", "nbchan": 2.0, "pnts": float(n), "trials": 1.0, "srate": sfreq, "xmin": 0.0,
           "xmax": (n - 1) / sfreq, "data": data, "chanlocs": chanlocs, "event": np.array([]), "epoch": np.array([]),
           "icawinv": np.array([]), "icasphere": np.array([]), "icaweights": np.array([])}
    scipy.io.savemat(path, {"EEG": eeg}, appendmat=False, oned_as="row")
    return path


def test_eeglab_set_is_read_by_mne_and_mff_needs_mffpy(tmp_path, monkeypatch):
    raw, _, source, timing = read_eeg_timed(write_eeglab(tmp_path / "r.set", 512, 128.0), RecordingOptions(), [])
    assert raw.ch_names == ["Fp1", "Fp2"] and raw.n_times == 512 and source == {"format": "set"}
    assert 5e-6 < raw.get_data().std() < 20e-6  # microvolts in the file, volts here
    assert timing.start_time is None  # an EEGLAB file carries no recorded start
    mff = tmp_path / "r.mff"
    mff.mkdir()
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mffpy" else real(name, *a))
    with pytest.raises(MilmerInputError, match=r"^Missing dependency: the Python package 'mffpy' is not installed; it is needed for reading \.mff\. Install it: `pip install mffpy`"):
        read_eeg_timed(mff, RecordingOptions(), [])


def test_offset_is_in_the_videos_own_seconds_whatever_its_rate():
    """--offset is what a player shows at EEG t = 0; --video-fps then sets how fast video time runs."""
    from milmer.runtime.eeg.timing import EEGTiming
    from milmer.runtime.face.timing import VideoTiming
    from milmer.runtime.face.video import VideoInfo
    from milmer.runtime.sync import SyncOptions, align

    info = VideoInfo(fps=30.0, n_frames=1200, duration_s=40.0, width=64, height=48)
    a = align(256.0, 60.0, EEGTiming(), info, VideoTiming(format="avi"), SyncOptions(offset_s=2.5, video_fps=20.0))
    assert a.offset_s == pytest.approx(2.5) and a.offset_source == "option"
    assert float(a.eeg_to_video(3.0)) == pytest.approx(2.5 + 3.0 * 20 / 30)  # 60 frames = 2 s at the header's 30 fps
    assert a.warnings() == []


@pytest.mark.parametrize("video_s, warned", [(595.0, False), (601.0, True)])
def test_ends_are_compared_after_the_offset(video_s, warned):
    """The camera started 5 s after the amplifier (start stamps): a 595 s video ends with the 600 s
    EEG; a 601 s one ends 6 s later, which drift (or a later stop) explains."""
    from milmer.runtime.eeg.timing import EEGTiming
    from milmer.runtime.face.timing import VideoTiming
    from milmer.runtime.face.video import VideoInfo
    from milmer.runtime.sync import align

    info = VideoInfo(fps=25.0, n_frames=int(video_s * 25), duration_s=video_s, width=64, height=48)
    timing = VideoTiming(format="mov,mp4,m4a,3gp,3g2,mj2", creation_time=g.utc(2024, 5, 1, 10, 0, 5))
    a = align(256.0, 600.0, EEGTiming(START, "EDF header"), info, timing)
    assert a.offset_s == pytest.approx(-5.0)
    if warned:
        (warning,) = a.warnings()
        assert "the EEG ends at 600.00 s and the video at 606.00 s" in warning
        assert f"--eeg-rate {256 * 600 / 606:.4f}" in warning
    else:
        assert a.warnings() == []


def test_an_undated_new_segment_is_said_not_guessed(tmp_path):
    vhdr = g.write_brainvision(tmp_path / "e.vhdr", 100.0, [(500, START), (500, START)])
    vmrk = tmp_path / "e.vmrk"
    vmrk.write_text(vmrk.read_text().replace(",501,1,0,20240501100000000000", ",501,1,0"))
    notes: list[EEGNote] = []
    raw, _, _, timing = read_eeg_timed(vhdr, RecordingOptions(), notes)
    assert raw.n_times == 1000 and timing.segments == ()
    assert "1 later New Segment marker(s) carry no date" in notes[-1].text
    assert (notes[-1].code, notes[-1].severity, notes[-1].data) == ("segments-undated", "warning", {"count": 1})


def test_new_segments_that_cannot_be_placed_are_said(tmp_path):
    """A second segment dated exactly at the first's end (no pause) or before it (a clock set back)
    cannot be placed: the segments are taken to follow on, and the notes say so."""
    vhdr = g.write_brainvision(tmp_path / "e.vhdr", 100.0, [(500, START), (500, g.utc(2024, 5, 1, 10, 0, 5))])
    notes: list[EEGNote] = []
    raw, _, _, timing = read_eeg_timed(vhdr, RecordingOptions(), notes)
    assert raw.n_times == 1000 and timing.segments == ()
    assert [n.code for n in notes if "1 dated New Segment marker(s) not placed" in n.text] == ["segments-unplaced"]
    bad = g.write_brainvision(tmp_path / "b.vhdr", 100.0, [(500, START), (500, g.utc(2024, 5, 1, 9, 0, 0))])
    notes = []
    read_eeg_timed(bad, RecordingOptions(), notes)
    assert any(n.code == "segments-unplaced" and "not placed (no pause before them, a date before" in n.text for n in notes)
