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

from milmer.runtime.check import MilmerInputError
from milmer.runtime.face.crop import center_square_box, crop_pad_resize, expand_box
from milmer.runtime.face.detect import Box, FaceDetector, OpenCVHaarDetector
from milmer.runtime.face.extract import (
    FRAME_NO_FACE,
    FRAME_OUTSIDE_VIDEO,
    FRAME_SEVERAL_FACES,
    FRAME_TIMING_OFF,
    FaceExtractionStats,
    FaceWarning,
    extract_faces,
    iter_face_windows,
)
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
    with pytest.warns(FaceWarning, match="1 of 1 windows have no face"):
        (win,) = list(iter_face_windows(face_video, np.array([2.0]), SPEC, 1.0, detector=det, stats=stats))
    assert not win.found.any() and not win.has_face
    np.testing.assert_array_equal(win.flags, [FRAME_NO_FACE] * 10)
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
    np.testing.assert_array_equal(end.flags, [0] * 5 + [FRAME_OUTSIDE_VIDEO | FRAME_NO_FACE] * 5)
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
    msg = r"'detector': expected 'blazeface-short-range' \(the detector the spec's crops come from\), got 'opencv-haar'"
    with pytest.raises(MilmerInputError, match=msg):
        iter_face_windows(face_video, np.array([0.0]), FaceSpec(), 1.0, detector=OpenCVHaarDetector())
    msg = (
        r"^Invalid value for 'offset_s': expected at least one frame time inside the video \(0-8\.000 s of 'face\.avi'\), "
        r"got none; with offset_s=20\.0 the frames sampled from the windows lie at video time 20\.100-22\.900 s\.$"
    )
    with pytest.raises(MilmerInputError, match=msg):
        iter_face_windows(face_video, np.array([0.0, 1.0]), SPEC, 2.0, offset_s=20.0, detector=det)
    with pytest.raises(MilmerInputError, match="'spec_face': expected a FaceSpec, got dict"):
        iter_face_windows(face_video, np.array([0.0]), {}, 1.0)  # type: ignore[arg-type]
    with pytest.raises(MilmerInputError, match="'window_s': expected a number > 0, got 0"):
        iter_face_windows(face_video, np.array([0.0]), SPEC, 0)


def test_a_long_recordings_crops_go_to_the_scratch_file(face_video: Path, tmp_path, monkeypatch) -> None:
    """Crops larger than the scratch threshold (1.5 MB per window at the paper's sizes) are made
    in the scratch file, every page handed back as they are written: the same crops."""
    from milmer.runtime import scratch

    spec = FaceSpec(frames_per_window=10, frame_size=SIZE)
    starts = np.array([1.0, 5.0, 7.5])
    in_memory = extract_faces(face_video, starts, spec, 1.0)
    monkeypatch.setenv(scratch.SCRATCH_ENV, str(tmp_path))
    monkeypatch.setattr(scratch, "MAX_IN_MEMORY_BYTES", 0)
    released = []
    monkeypatch.setattr(scratch, "release", lambda a, real=scratch.release: released.append(1) or real(a))
    on_disk = extract_faces(face_video, starts, spec, 1.0)
    assert scratch.is_disk_backed(on_disk.frames) and not scratch.is_disk_backed(in_memory.frames)
    assert np.array_equal(on_disk.frames, in_memory.frames) and np.array_equal(on_disk.found, in_memory.found)
    assert released  # handed back at least once the crops are written
    # A scratch folder without the room names the crops and their rate, not the EEG's.
    import shutil

    monkeypatch.setattr(scratch.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(2**40, 0, 2**10))
    with pytest.raises(MilmerInputError, match=(
        r"has 0.00 MB free; this recording needs 0.\d\d MB there for its face crops \(about 1.8 GB per hour of recording\)"
    )):  # fmt: skip
        extract_faces(face_video, starts, spec, 1.0)


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
    video = info["video"]
    assert {k: video[k] for k in ("n_frames", "width", "height", "rotation", "header_duration_s")} == {
        "n_frames": 160, "width": 320, "height": 240, "rotation": 0, "header_duration_s": 8.0,
    }  # fmt: skip
    assert video["fps"] == pytest.approx(20.0) and video["duration_s"] == pytest.approx(8.0)  # from the timestamps
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


# ----------------------------------------------------------------------------- several people
class TwoPeopleDetector:
    """Scripted all-faces detector (the ``detect_all`` protocol): the subject sits left of centre
    and drifts; a second person, smaller and to the right, scores higher in every other frame
    (boxes sorted by score, as a detector returns them). The subject is missed in frames 7-9."""

    name = "opencv-haar"

    def __init__(self) -> None:
        self.calls = 0

    @staticmethod
    def subject(k: int) -> Box:
        x = 10 + k // 4
        return Box(x, 10, x + 28, 38, 0.8)

    @staticmethod
    def other(k: int) -> Box:
        return Box(48, 4, 62, 18, 0.9 if k % 2 else 0.7)

    def detect_all(self, frame: np.ndarray) -> list[Box]:
        from . import avgen

        self.calls += 1
        k = avgen.decode_index(frame)
        boxes = [self.other(k)] + ([] if 7 <= k <= 9 else [self.subject(k)])
        return sorted(boxes, key=lambda b: -b.score)


def test_one_subject_is_followed_through_a_two_person_video(tmp_path: Path) -> None:
    from . import avgen

    path = avgen.write_video(tmp_path / "two.mp4", avgen.every(20, 80), rate=20)  # 4 s, frames carry k
    spec = FaceSpec(frames_per_window=10, frame_size=16, detector="opencv-haar")
    det = TwoPeopleDetector()
    stats = FaceExtractionStats()
    with pytest.warns(FaceWarning, match="38 of 40 frames show several faces: one subject"):
        windows = list(iter_face_windows(path, np.arange(4.0), spec, 1.0, detector=det, stats=stats))
    # Window w samples frames 20w + 1, 20w + 3, ..., 20w + 19 (0.05 s + 0.1 s steps at 20 fps).
    found = np.concatenate([w.found for w in windows])
    np.testing.assert_array_equal(np.flatnonzero(~found), [3, 4])  # frames 7 and 9: subject missed
    flags = np.concatenate([w.flags for w in windows])
    # Frames 7 and 9 show only the other person: one face there.
    np.testing.assert_array_equal(np.flatnonzero(~(flags & FRAME_SEVERAL_FACES).astype(bool)), [3, 4])
    assert stats.frames_several_faces == 38
    np.testing.assert_array_equal(np.flatnonzero(flags & FRAME_NO_FACE), [3, 4])
    # Every crop is the subject's box (or, where missed, the nearest subject box of the window).
    for w in windows:
        for f in range(10):
            k = 20 * w.index + 2 * f + 1
            frame = next(iter_frames_at(path, np.array([w.timestamps[f]]))).frame
            assert avgen.decode_index(frame) == k
            box_k = {7: 5, 9: 11}.get(k, k)  # a missed frame reuses the nearest subject box in time
            want = crop_pad_resize(frame, expand_box(det.subject(box_k), 0.10, width=64, height=48), 16)
            np.testing.assert_array_equal(w.crops[f], want)
    assert det.calls == 40


def test_tracker_rules() -> None:
    from milmer.runtime.face.track import SubjectTracker, initial_subject

    big_corner = Box(0, 0, 40, 40)  # 1600 px^2 in the corner of a 100 x 100 frame
    small_centre = Box(35, 35, 65, 65)  # 900 px^2 at the centre
    # Scores: corner 1600 * (1 - 0.5 * 0.57) = 1143, centre 900 * 1: the larger face wins ...
    assert initial_subject([small_centre, big_corner], 100, 100) == big_corner
    # ... unless it is not much larger: 484 * (1 - 0.5 * 0.84) = 281 < 400 at the centre.
    assert initial_subject([Box(40, 40, 60, 60), Box(0, 0, 22, 22)], 100, 100) == Box(40, 40, 60, 60)
    tr = SubjectTracker()
    a = Box(10, 10, 30, 30)
    assert tr.update([a], 0.0, 100, 100) == a
    assert tr.update([Box(70, 70, 90, 90)], 0.1, 100, 100) is None  # 85 px away: not the subject
    assert tr.update([Box(70, 70, 90, 90), Box(14, 12, 34, 32)], 0.2, 100, 100) == Box(14, 12, 34, 32)
    assert tr.update([Box(16, 12, 96, 92)], 0.3, 100, 100) is None  # 4x the size: someone nearer
    # Unseen for 10 s, the subject may have moved: the reach grows by 0.5 face sizes per second.
    assert tr.update([Box(70, 70, 90, 90)], 10.3, 100, 100) == Box(70, 70, 90, 90)


def test_timing_flags_after_a_dropout(tmp_path: Path) -> None:
    from . import avgen

    # 20 fps with a 3 s dropout (2.0 -> 5.0 s): window [2, 3) s gets frames 1.5+ intervals away.
    times = avgen.every(20, 41) + avgen.every(20, 41, start=5.0)
    path = avgen.write_video(tmp_path / "gap.mkv", times, rate=20)
    spec = FaceSpec(frames_per_window=10, frame_size=16, detector="opencv-haar")
    stats = FaceExtractionStats()
    with pytest.warns(FaceWarning, match=r"9 of 20 frames are more than 1.5 frame intervals .*up to 0.95 s"):
        w0, w1 = iter_face_windows(path, np.array([1.0, 2.0]), spec, 1.0, detector=TwoPeopleDetector(), stats=stats)
    assert not (w0.flags & FRAME_TIMING_OFF).any()
    # 2.05 s: 0.05 from frame 20 (2.0 s), fine; 2.15 ... 2.95 s: all frame 20, 0.15-0.95 s away.
    np.testing.assert_array_equal((w1.flags & FRAME_TIMING_OFF) > 0, [False] + [True] * 9)
    np.testing.assert_allclose(w1.timestamps, [2.0] * 10, atol=1e-6)


def test_dark_and_grayscale_video_get_a_note(tmp_path: Path) -> None:
    from . import avgen

    path = avgen.write_video(
        tmp_path / "dark.mp4", avgen.every(20, 20), lambda k: avgen.coded_frame(k, level=12), rate=20
    )
    spec = FaceSpec(frames_per_window=10, frame_size=16, detector="opencv-haar")
    stats = FaceExtractionStats()
    with pytest.warns(FaceWarning) as record:
        list(iter_face_windows(path, np.array([0.0]), spec, 1.0, detector=TwoPeopleDetector(), stats=stats))
    notes = [str(r.message) for r in record]
    assert stats.notes == notes
    assert (stats.frames_checked, stats.frames_dark, stats.frames_gray) == (10, 10, 10)
    assert any(n.startswith("10 of 10 frames are dark (mean brightness under 40 of 255)") for n in notes)
    assert any(n.startswith("10 of 10 frames are grayscale") for n in notes)
