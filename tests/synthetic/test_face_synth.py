"""Synthetic face videos: readable, detectable by BlazeFace, expressive, blinks aligned with vEOG."""

from __future__ import annotations

import numpy as np
import pytest

from milmer.synthetic.face_synth import FaceRenderer, expression_envelope
from milmer.synthetic.timeline import Blinks, StateTimeline

NO_BLINKS = Blinks(np.zeros(0), np.zeros(0), np.zeros(0))


@pytest.fixture(scope="module")
def blazeface():
    """The runtime's BlazeFace short-range detector (ONNX), at its default confidence 0.5."""
    pytest.importorskip("onnxruntime")
    from milmer.runtime.face.detect import make_detector

    return make_detector("blazeface-short-range")


def read_frames(path) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def test_videos_read_back_with_the_trial_duration(demo):
    import cv2

    for video in [*demo.videos, demo.recording_video]:
        cap = cv2.VideoCapture(str(video))
        assert cap.isOpened()
        frames, fps = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
        size = (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        cap.release()
        seconds = 20.0 if video == demo.recording_video else 3.0 + 6.0  # baseline + trial
        assert (fps, frames, size) == (25.0, seconds * 25, (320.0, 240.0))
    # The header is not trusted alone: decoding yields exactly that many frames.
    assert len(read_frames(demo.videos[0])) == 225


def test_blazeface_finds_the_synthetic_faces(demo, blazeface):
    import cv2

    found, widths, total = 0, [], 0
    for video in [*demo.videos, demo.recording_video]:
        frames = read_frames(video)
        for k in np.linspace(0, len(frames) - 1, 2 if video != demo.recording_video else 4).astype(int):
            box = blazeface.detect(cv2.cvtColor(frames[k], cv2.COLOR_BGR2RGB))
            total += 1
            if box is not None:
                found += 1
                widths.append(box.x1 - box.x0)
    assert total == 20
    assert found / total >= 0.95
    assert 95 < min(widths) and max(widths) < 150


def test_expressions_change_mouth_for_valence_and_eyes_for_arousal():
    renderer = FaceRenderer(np.random.default_rng(0))

    def changed(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
        """(mean row of pixels changed by > 20 grey levels, mean absolute difference)."""
        diff = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)
        return float(np.nonzero(diff > 20)[0].mean()), float(diff.mean())

    neutral = renderer.expression(0.0, 0.0)
    smile_row, smile_diff = changed(renderer.expression(1.0, 0.0), renderer.expression(-1.0, 0.0))
    eyes_row, eyes_diff = changed(renderer.expression(0.0, 1.0), renderer.expression(0.0, -1.0))
    blink_row, blink_diff = changed(renderer.expression(0.0, 0.0, closure=1.0), neutral)
    # In the 512x512 photo the mouth is at y ~140, the eyes at ~102 and the brows at ~92.
    assert 130 < smile_row < 150 and 85 < eyes_row < 110 and 95 < blink_row < 110
    assert np.array_equal(renderer.expression(0.0, 0.0), neutral)
    # Each change is visible in the picture as a whole, not a few stray pixels (the exact grey
    # levels are OpenCV's anti-aliasing on this CPU: 1.3, 2.0 and 1.6 here).
    assert min(smile_diff, eyes_diff, blink_diff) > 0.5, (smile_diff, eyes_diff, blink_diff)


def test_head_moves_more_with_arousal():
    import cv2

    renderer = FaceRenderer(np.random.default_rng(0))

    def motion(arousal: float) -> float:
        timeline = StateTimeline(np.array([0.0]), np.array([4.0]), np.array([0.0]), np.array([arousal]), ramp_s=0)
        frames = np.stack(list(renderer.render(timeline, NO_BLINKS, 100, 25.0, np.random.default_rng(1))))
        # Blur first so that the per-frame sensor noise does not swamp the motion.
        smooth = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in frames]).astype(np.float32)
        return float(np.abs(np.diff(smooth, axis=0)).mean())

    calm, excited = motion(-1.0), motion(1.0)
    assert calm > 0.1 and excited > 2 * calm, (calm, excited)  # the calm head moves too, less


def test_video_blinks_line_up_with_the_veog(demo, dats, blazeface):
    """Eyelid closures in the video peak at the same time as the vEOG blinks in the .dat row."""
    import cv2

    corrs = []
    lags = np.arange(-6, 7)
    for t in demo.trials[:4]:  # subject 1
        veog = dats[t.subject]["data"][t.experiment_id - 1, 33]
        texture = []
        for frame in read_frames(t.video):
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
            box = blazeface.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            centres = [(int(round(x)), int(round(y))) for x, y in box.keypoints[:2]]  # the two eyes
            # An open eye is a high-contrast patch (iris, sclera, lashes); a closed lid is skin.
            texture.append(sum(gray[y - 5 : y + 6, x - 8 : x + 9].std() for x, y in centres))
        closed = -np.array(texture)
        veog_at_frames = np.interp(np.arange(closed.size) / 25.0, np.arange(veog.size) / 128.0, veog)
        corrs.append([np.corrcoef(np.roll(closed, lag)[6:-6], veog_at_frames[6:-6])[0, 1] for lag in lags])
    corrs = np.array(corrs)  # (trials, lags)
    assert list(lags[np.argmax(corrs, axis=1)]) == [0, 0, 0, 0]
    at_zero = [round(float(c), 2) for c in corrs[:, 6]]
    # Clearly positive at lag 0 in every trial (0.49-0.71 here; the eye texture depends on OpenCV's
    # drawing and the detector's keypoints, not a figure to pin).
    assert min(at_zero) > 0.3, at_zero


def test_expression_is_brief_inside_every_window():
    """One ~0.75 s expression per 3 s window: 2-3 of the 10 frames a bag samples show it."""
    rng = np.random.default_rng(0)
    # 100 windows of 3 s; 10 frames per window at the centres of 10 equal slots (the model's rule).
    times = (np.arange(100)[:, None] * 3.0 + (np.arange(10) + 0.5) * 0.3).ravel()
    env = expression_envelope(times, rng).reshape(100, 10)
    on = (env > 0.5).sum(1)
    assert set(on.tolist()) <= {2, 3} and on.mean() == pytest.approx(2.8, abs=0.02)
    dense = expression_envelope(np.arange(0, 300, 0.01), np.random.default_rng(0))
    assert dense.min() == 0.0 and dense.max() == 1.0
    assert (dense > 0.5).mean() == pytest.approx(0.85 / 3, abs=0.01)
