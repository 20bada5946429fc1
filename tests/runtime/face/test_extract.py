"""Face crops per EEG window (runtime/face/extract.py).

The crop rules are checked with a scripted detector that reads each frame's index from its code
strip and answers the true face position (or nothing, for chosen frames); one test runs the whole
path with BlazeFace on the same video.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest

from milmer.runtime._check import MilmerInputError
from milmer.runtime.face.crop import center_square_box, crop_pad_resize, expand_box
from milmer.runtime.face.detect import Box, FaceDetector, OpenCVHaarDetector
from milmer.runtime.face.extract import FaceExtractionStats, extract_faces, iter_face_windows
from milmer.runtime.face.video import iter_frames_at
from milmer.runtime.spec import FaceSpec

from .conftest import FACE_SIDE, decode_index, face_position

SIZE = 64
SPEC = FaceSpec(frames_per_window=10, frame_size=SIZE, detector="opencv-haar")


class ScriptedDetector(FaceDetector):
    """Answers the true face box of frame k, or None for k in ``no_face``; counts its calls."""

    name = "opencv-haar"

    def __init__(self, no_face: Iterable[int] = (), everywhere_none: bool = False) -> None:
        self.no_face = set(no_face)
        self.everywhere_none = everywhere_none
        self.calls: list[int] = []

    def _detect_impl(self, frame_rgb: np.ndarray) -> Box | None:
        k = decode_index(frame_rgb)
        self.calls.append(k)
        return None if self.everywhere_none or k in self.no_face else true_box(k)


def true_box(k: int) -> Box:
    x, y = face_position(k)
    return Box(x, y, x + FACE_SIDE, y + FACE_SIDE, 1.0)


def frame_at(video: Path, t: float) -> np.ndarray:
    return next(iter_frames_at(video, np.array([t]))).frame


def expected_crop(video: Path, t: float, k_box: int) -> np.ndarray:
    return crop_pad_resize(frame_at(video, t), expand_box(true_box(k_box), 0.10, width=320, height=240), SIZE)


def test_frames_without_face_reuse_the_nearest_box_in_time(face_video: Path) -> None:
    # Window [0, 1) s at 20 fps: frames 1, 3, ..., 19. No face reported in frames 3, 5, 7.
    det = ScriptedDetector(no_face={3, 5, 7})
    stats = FaceExtractionStats()
    (win,) = list(iter_face_windows(face_video, np.array([0.0]), SPEC, 1.0, detector=det, stats=stats))
    assert win.index == 0 and win.crops.shape == (10, SIZE, SIZE, 3) and win.crops.dtype == np.uint8
    np.testing.assert_array_equal(win.found, [True, False, False, False] + [True] * 6)
    np.testing.assert_allclose(win.timestamps, np.arange(1, 20, 2) / 20)
    # frame 3 -> box of frame 1 (0.1 s away); frame 5 -> tie between 1 and 9 -> the earlier;
    # frame 7 -> box of frame 9.
    for f, k_box in [(0, 1), (1, 1), (2, 1), (3, 9), (4, 9), (9, 19)]:
        np.testing.assert_array_equal(win.crops[f], expected_crop(face_video, win.timestamps[f], k_box))
    # The rule is visible in the pixels: the frame's own box would crop elsewhere (the face moves).
    assert not np.array_equal(win.crops[1], expected_crop(face_video, win.timestamps[1], 3))
    assert (stats.frames_total, stats.frames_without_face, stats.windows_without_face) == (10, 3, 0)


def test_window_without_any_face_uses_the_centred_square(face_video: Path) -> None:
    det = ScriptedDetector(everywhere_none=True)
    stats = FaceExtractionStats()
    (win,) = list(iter_face_windows(face_video, np.array([2.0]), SPEC, 1.0, detector=det, stats=stats))
    assert not win.found.any()
    for f in (0, 5, 9):
        frame = frame_at(face_video, win.timestamps[f])
        np.testing.assert_array_equal(win.crops[f], crop_pad_resize(frame, center_square_box(320, 240), SIZE))
    assert (stats.frames_without_face, stats.windows_without_face) == (10, 1)


def test_times_outside_the_video_get_black_crops(face_video: Path) -> None:
    det = ScriptedDetector()
    stats = FaceExtractionStats()
    # Window [7.5, 8.5) s of an 8 s video: the last 5 instants are past the end.
    (end,) = list(iter_face_windows(face_video, np.array([7.5]), SPEC, 1.0, detector=det, stats=stats))
    np.testing.assert_array_equal(end.found, [True] * 5 + [False] * 5)
    assert not end.crops[5:].any() and end.crops[:5].any()
    assert np.isnan(end.timestamps[5:]).all()
    np.testing.assert_allclose(end.timestamps[:5], [7.55, 7.65, 7.75, 7.85, 7.95])
    # EEG t=0 is video time -0.5: the first 5 instants are before the video starts.
    (start,) = list(
        iter_face_windows(face_video, np.array([0.0]), SPEC, 1.0, offset_s=-0.5, detector=det, stats=stats)
    )
    np.testing.assert_array_equal(start.found, [False] * 5 + [True] * 5)
    assert not start.crops[:5].any()
    np.testing.assert_allclose(start.timestamps[5:], [0.05, 0.15, 0.25, 0.35, 0.45])
    assert (stats.frames_past_video_end, stats.frames_before_video_start, stats.frames_without_face) == (5, 5, 0)


def test_overlapping_windows_come_in_order_and_detect_each_frame_once(face_video: Path) -> None:
    det = ScriptedDetector()
    windows = list(iter_face_windows(face_video, np.array([0.0, 0.5, 0.25]), SPEC, 1.0, detector=det))
    assert [w.index for w in windows] == [0, 1, 2]
    np.testing.assert_allclose(windows[1].timestamps, np.arange(11, 30, 2) / 20)
    np.testing.assert_allclose(windows[2].timestamps, np.arange(6, 25, 2) / 20)
    # Frames 1..29 odd (15) plus 6, 8, ..., 24 (10): each detected once though requested up to twice.
    assert sorted(det.calls) == sorted(set(range(1, 30, 2)) | set(range(6, 25, 2)))
    np.testing.assert_array_equal(windows[0].crops[5], windows[1].crops[0])  # frame 11 in both


class BatchRecordingDetector(ScriptedDetector):
    """A ScriptedDetector that also records the frame indices of each detect_batch call."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[int]] = []

    def _detect_batch_impl(self, frames: list[np.ndarray]) -> list[list[Box]]:
        self.batches.append([decode_index(f) for f in frames])
        return super()._detect_batch_impl(frames)


def test_each_window_is_detected_in_one_batch(face_video: Path) -> None:
    # Windows [0, 1) and [0.5, 1.5) s at 20 fps: frames 1..19 odd, then 11..29 odd; the second
    # batch holds only the frames the first did not (21..29).
    det = BatchRecordingDetector()
    windows = list(iter_face_windows(face_video, np.array([0.0, 0.5]), SPEC, 1.0, detector=det))
    assert det.batches == [list(range(1, 20, 2)), list(range(21, 30, 2))]
    assert [w.found.all() for w in windows] == [True, True]


def test_iterator_is_lazy_and_validates_eagerly(face_video: Path, tmp_path: Path) -> None:
    det = ScriptedDetector()
    windows = iter_face_windows(face_video, np.array([0.0, 1.0, 2.0]), SPEC, 1.0, detector=det)
    assert inspect.isgenerator(windows) and det.calls == []
    assert next(windows).index == 0 and len(det.calls) == 10  # only the first window's frames so far
    with pytest.raises(MilmerInputError, match="'video': file not found"):
        iter_face_windows(tmp_path / "none.mp4", np.array([0.0]), SPEC, 1.0, detector=det)
    msg = "'detector': the spec's crops come from 'blazeface-short-range', got a 'opencv-haar' detector"
    with pytest.raises(MilmerInputError, match=msg):
        iter_face_windows(face_video, np.array([0.0]), FaceSpec(), 1.0, detector=OpenCVHaarDetector())
    msg = (
        r"'offset_s': with offset_s=20.0 the frames sampled from the windows lie at video time "
        r"20.100-22.900 s, which misses the whole video \(0-8.000 s of 'face.avi'\)"
    )
    with pytest.raises(MilmerInputError, match=msg):
        iter_face_windows(face_video, np.array([0.0, 1.0]), SPEC, 2.0, offset_s=20.0, detector=det)
    with pytest.raises(MilmerInputError, match="'spec_face': expected a FaceSpec, got dict"):
        iter_face_windows(face_video, np.array([0.0]), {}, 1.0)  # type: ignore[arg-type]
    with pytest.raises(MilmerInputError, match="'window_s': expected a number > 0, got 0"):
        iter_face_windows(face_video, np.array([0.0]), SPEC, 0)


def test_extract_faces_with_blazeface(face_video: Path) -> None:
    # Blank frames: 30-34 (in window 0: frames 31, 33) and 100-129 (all of window 1).
    spec = FaceSpec(frames_per_window=10, frame_size=SIZE)
    fw = extract_faces(face_video, np.array([1.0, 5.0, 7.5]), spec, 1.0, progress=True)
    assert fw.frames.shape == (3, 10, SIZE, SIZE, 3) and fw.frames.dtype == np.uint8
    np.testing.assert_array_equal(
        fw.found.astype(int),
        [[1, 1, 1, 1, 1, 0, 0, 1, 1, 1], [0] * 10, [1] * 5 + [0] * 5],
    )
    np.testing.assert_array_equal(fw.window_has_face, [True, False, True])
    np.testing.assert_allclose(fw.timestamps[0], np.arange(21, 40, 2) / 20)
    info = fw.info
    assert {k: info[k] for k in ("detector", "frames_total", "frames_without_face", "windows_without_face",
                                 "frames_past_video_end", "frames_before_video_start")} == {
        "detector": "blazeface-short-range", "frames_total": 30, "frames_without_face": 12,
        "windows_without_face": 1, "frames_past_video_end": 5, "frames_before_video_start": 0,
    }  # fmt: skip
    assert info["video"] == {"fps": 20.0, "n_frames": 160, "duration_s": 8.0, "width": 320, "height": 240}
    assert set(info["timings"]) == {"decode", "detect", "crop"} and all(v > 0 for v in info["timings"].values())
    # A blank frame in a window with faces reuses a face box: an even grey crop (the centred
    # square would include the code strip's black and white blocks).
    assert fw.frames[0, 5].min() >= 30 and fw.frames[0, 5].max() <= 50
    # Window 1 has no face at all: centred squares of the frames.
    frame = frame_at(face_video, fw.timestamps[1, 0])
    np.testing.assert_array_equal(fw.frames[1, 0], crop_pad_resize(frame, center_square_box(320, 240), SIZE))
    # Detected crops hold the face: the BlazeFace box lies on the pasted face.
    det_frame = frame_at(face_video, fw.timestamps[0, 0])  # frame 21
    from milmer.runtime.face.detect import BlazeFaceDetector

    with BlazeFaceDetector() as bf:
        box = bf.detect(det_frame)
    x, y = face_position(21)
    assert box is not None and x < box.x0 < box.x1 < x + FACE_SIDE and y < box.y0 < box.y1 < y + FACE_SIDE
    np.testing.assert_array_equal(
        fw.frames[0, 0], crop_pad_resize(det_frame, expand_box(box, 0.10, width=320, height=240), SIZE)
    )
