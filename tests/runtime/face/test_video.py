"""Probing videos and choosing frames by time (runtime/face/video.py)."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from milmer.runtime._check import MilmerInputError
from milmer.runtime.face.video import (
    VideoInfo,
    _fps_from_timestamps,
    iter_frames_at,
    probe_video,
    sample_times,
)

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
    assert probe_video(face_video) == VideoInfo(fps=20.0, n_frames=160, duration_s=8.0, width=320, height=240)


def test_probe_counts_frames_of_a_truncated_file(face_video: Path, tmp_path: Path) -> None:
    import cv2

    data = face_video.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    cap = cv2.VideoCapture(str(cut))
    decodable = 0
    while cap.grab():
        decodable += 1
    cap.release()
    assert 0 < decodable < 160
    assert probe_video(cut).n_frames == 160  # the header still claims the full length
    counted = probe_video(cut, count_frames=True)
    assert (counted.fps, counted.n_frames) == (20.0, decodable)
    assert counted.duration_s == pytest.approx(decodable / 20.0)


def test_fps_from_timestamps() -> None:
    assert _fps_from_timestamps(50, 0.0, 2.45) == pytest.approx(20.0)
    assert _fps_from_timestamps(301, 0.5, 10.5) == pytest.approx(30.0)
    assert _fps_from_timestamps(1, 0.0, 0.0) is None
    assert _fps_from_timestamps(10, 0.0, 0.0) is None  # a backend without timestamps


@pytest.mark.parametrize(
    ("name", "make", "match"),
    [
        ("absent.avi", None, "'video': file not found"),
        ("clip.gif", b"GIF89a", r"unsupported file type '.gif' for 'clip.gif'; expected one of '.mp4', '.avi'"),
        ("noise.mp4", np.random.default_rng(0).bytes(4096), "'video': cannot open 'noise.mp4'"),
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
    with pytest.raises(MilmerInputError, match="'video': 'empty.avi' has no decodable frames"):
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
        ((np.array([0.0, np.nan]), 3.0, 10), "'window_starts': expected a 1-D array of finite"),
        ((np.array([0.0]), -1.0, 10), "'window_s': expected a number > 0, got -1.0"),
        ((np.array([0.0]), 3.0, 0), "'n_frames': expected an integer > 0, got 0"),
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
    with pytest.raises(MilmerInputError, match="'times': expected non-decreasing seconds"):
        iter_frames_at(face_video, np.array([1.0, 0.5]))
    with pytest.raises(MilmerInputError, match="'times': expected a 1-D array of finite"):
        iter_frames_at(face_video, np.array([0.5, np.inf]))
    with pytest.raises(MilmerInputError, match="'offset_s': expected a finite number"):
        iter_frames_at(face_video, np.array([0.5]), offset_s=float("nan"))


def test_streams_lazily_and_decodes_only_needed_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    path = code_video(tmp_path, "long.avi", 20, 600)  # 30 s
    info = probe_video(path)
    real = cv2.VideoCapture
    calls = {"grab": 0, "retrieve": 0}

    class CountingCapture:
        def __init__(self, *args: object) -> None:
            self._cap = real(*args)

        def grab(self) -> bool:
            calls["grab"] += 1
            return self._cap.grab()

        def retrieve(self, *args: object) -> tuple:
            calls["retrieve"] += 1
            return self._cap.retrieve(*args)

        def __getattr__(self, name: str) -> object:
            return getattr(self._cap, name)

    monkeypatch.setattr(cv2, "VideoCapture", CountingCapture)
    frames = iter_frames_at(path, np.array([1.0, 2.0, 10.0]), info=info)
    assert inspect.isgenerator(frames)
    assert calls["grab"] == 0  # nothing decoded before the first next()
    first = next(frames)
    assert decode_index(first.frame) == 20
    assert calls["grab"] == 21  # frames 0..20: no pass through the file ahead of time
    assert [decode_index(i.frame) for i in frames] == [40, 200]
    assert calls["grab"] == 201  # stops at the last request, not at the end of the video
    # Converted to RGB: each requested frame and the one before it (kept for the nearest check).
    assert calls["retrieve"] == 6


def test_probe_measures_rate_when_header_rate_is_implausible(tmp_path: Path) -> None:
    # Browser recorders write 1000 "fps" (the Matroska time base); the rate is then measured
    # from the frames' timestamps and the frames are counted, not taken from the header: the
    # truncated file's header still claims 60 frames.
    data = code_video(tmp_path, "fast.avi", 1000, 60).read_bytes()
    path = tmp_path / "fast_cut.avi"
    path.write_bytes(data[: len(data) // 2])
    info = probe_video(path)
    assert 0 < info.n_frames < 60
    assert info.fps == pytest.approx(1000.0)
    assert info.duration_s == pytest.approx(info.n_frames / 1000.0)
