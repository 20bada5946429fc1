"""BlazeFace's MediaPipe steps in numpy (runtime/face/blazeface.py): anchors, decode, NMS, letterbox."""

from __future__ import annotations

import numpy as np
import pytest

from milmer.runtime.face import blazeface as bf


def test_anchors_are_mediapipes_896() -> None:
    anchors = bf.ssd_anchors()
    assert anchors.shape == (896, 4) and anchors.dtype == np.float32
    # fixed_anchor_size: every anchor is 1 x 1; only the centres differ.
    assert np.all(anchors[:, 2:] == 1.0)
    # Stride 8: 16 x 16 cells x 2 anchors; stride 16 (3 layers): 8 x 8 cells x 6 anchors.
    np.testing.assert_array_equal(anchors[0], [1 / 32, 1 / 32, 1, 1])
    np.testing.assert_array_equal(anchors[1], anchors[0])
    np.testing.assert_array_equal(anchors[2], [3 / 32, 1 / 32, 1, 1])
    np.testing.assert_array_equal(anchors[511], [31 / 32, 31 / 32, 1, 1])
    np.testing.assert_array_equal(anchors[512], [1 / 16, 1 / 16, 1, 1])
    np.testing.assert_array_equal(anchors[517], [1 / 16, 1 / 16, 1, 1])
    np.testing.assert_array_equal(anchors[518], [3 / 16, 1 / 16, 1, 1])
    np.testing.assert_array_equal(anchors[-1], [15 / 16, 15 / 16, 1, 1])


def test_anchors_with_sizes_follow_the_scale_rule() -> None:
    # Without fixed_anchor_size the sizes are MediaPipe's scales: layer 0 min_scale and the
    # interpolated sqrt(s0 * s1); strides 8 and 16 each once here.
    opts = bf.AnchorOptions(num_layers=2, strides=(8, 16), fixed_anchor_size=False)
    anchors = bf.ssd_anchors(opts)
    assert anchors.shape == (16 * 16 * 2 + 8 * 8 * 2, 4)
    np.testing.assert_allclose(anchors[0, 2:], [0.1484375, 0.1484375])
    np.testing.assert_allclose(anchors[1, 2:], [np.sqrt(0.1484375 * 0.75)] * 2, rtol=1e-6)
    np.testing.assert_allclose(anchors[512, 2:], [0.75, 0.75])
    np.testing.assert_allclose(anchors[513, 2:], [np.sqrt(0.75)] * 2, rtol=1e-6)


def _raw(n: int = 896) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((n, 16), np.float32), np.full((n, 1), -50.0, np.float32)


def test_decode_of_a_known_regressor_vector() -> None:
    anchors = bf.ssd_anchors()
    reg, cls = _raw()
    # Anchor 0 at (1/32, 1/32); x before y (reverse_output_order), in 128-pixel units.
    reg[0, :4] = [12.8, -6.4, 25.6, 32.0]
    reg[0, 4:] = np.arange(12, dtype=np.float32) * 12.8  # keypoint k at (2k, 2k + 1) / 10
    cls[0] = 0.0  # sigmoid 0.5: kept at min_score 0.5 (>=)
    reg[600, :4] = [0, 0, 12.8, 12.8]
    cls[600] = 1000.0  # clipped to 100: score 1
    reg[700, :4] = [0, 0, -12.8, 12.8]  # negative width: dropped
    cls[700] = 5.0
    cls[800] = np.log(0.49 / 0.51)  # score 0.49 < 0.5: dropped
    dets = bf.decode(reg, cls, anchors, min_score=0.5)
    assert len(dets) == 2
    np.testing.assert_allclose(dets.scores, [0.5, 1.0])
    np.testing.assert_allclose(dets.boxes[0], [0.03125, -0.14375, 0.23125, 0.10625], atol=1e-7)
    xc, yc = anchors[600, :2]
    np.testing.assert_allclose(dets.boxes[1], [xc - 0.05, yc - 0.05, xc + 0.05, yc + 0.05], atol=1e-7)
    expected_kp = np.arange(12).reshape(6, 2) / 10 + 1 / 32
    np.testing.assert_allclose(dets.keypoints[0], expected_kp, atol=1e-6)


def test_decode_keeps_nothing_below_the_threshold() -> None:
    reg, cls = _raw()
    dets = bf.decode(reg, cls, bf.ssd_anchors(), min_score=0.5)
    assert len(dets) == 0 and dets.boxes.shape == (0, 4) and dets.keypoints.shape == (0, 6, 2)
    assert len(bf.weighted_nms(dets)) == 0


def _dets(boxes: list[list[float]], scores: list[float]) -> bf.Detections:
    b = np.asarray(boxes, np.float32)
    kp = np.repeat(b[:, None, :2], 6, axis=1)  # keypoints at each box's top-left corner
    return bf.Detections(b, kp, np.asarray(scores, np.float32))


def test_weighted_nms_merges_by_score_weight() -> None:
    dets = _dets(
        [
            [0.1, 0.0, 1.1, 1.0],  # IoU 0.818 with A: merged into A
            [2.0, 2.0, 3.0, 3.0],  # C: alone
            [0.0, 0.0, 1.0, 1.0],  # A: the best
            [0.5, 0.0, 1.5, 1.0],  # IoU 1/3 > 0.3 with A: merged (with B only 0.538, irrelevant)
            [0.7, 0.0, 1.7, 1.0],  # IoU 0.176 with A: left; its own face (best of what remains)
        ],
        [0.6, 0.8, 0.9, 0.7, 0.55],
    )
    out = bf.weighted_nms(dets)
    np.testing.assert_allclose(out.scores, [0.9, 0.8, 0.55])
    # (0.9 * A + 0.7 * D + 0.6 * B) / 2.2
    np.testing.assert_allclose(out.boxes[0], [0.41 / 2.2, 0.0, 2.61 / 2.2, 1.0], rtol=1e-6)
    np.testing.assert_allclose(out.boxes[0], [0.18636364, 0.0, 1.18636364, 1.0], rtol=1e-6)
    np.testing.assert_allclose(out.boxes[1], [2, 2, 3, 3])
    np.testing.assert_allclose(out.boxes[2], [0.7, 0.0, 1.7, 1.0])
    np.testing.assert_allclose(out.keypoints[0], np.tile([0.41 / 2.2, 0.0], (6, 1)), rtol=1e-6)


def test_weighted_nms_threshold_is_strict() -> None:
    # IoU exactly 0.5: merged only when it is > the threshold.
    dets = _dets([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 1.0]], [0.9, 0.8])
    assert len(bf.weighted_nms(dets, threshold=0.5)) == 2
    assert len(bf.weighted_nms(dets, threshold=0.49)) == 1


def test_weighted_nms_keeps_a_zero_area_box_and_stops() -> None:
    # A degenerate box overlaps nothing, not even itself: MediaPipe outputs it and stops.
    dets = _dets([[0.2, 0.2, 0.2, 0.5], [0.0, 0.0, 1.0, 1.0]], [0.9, 0.8])
    out = bf.weighted_nms(dets)
    np.testing.assert_allclose(out.boxes, [[0.2, 0.2, 0.2, 0.5]])


def test_unletterbox_maps_back_to_the_frame() -> None:
    # A 320 x 240 frame: side 320, so 1/8 of the tensor height is padding above and below.
    tensor, (pad_x, pad_y) = bf.letterbox(np.full((240, 320, 3), 255, np.uint8))
    assert (pad_x, pad_y) == (0.0, 0.125)
    assert tensor.shape == (3, 128, 128) and tensor.dtype == np.float32
    assert np.all(tensor[:, :15] == -1.0) and np.all(tensor[:, 17:111] == 1.0) and np.all(tensor[:, 113:] == -1.0)
    dets = _dets([[0.25, 0.125, 0.75, 0.5]], [0.9])
    out = bf.unletterbox(dets, pad_x, pad_y)
    np.testing.assert_allclose(out.boxes[0], [0.25, 0.0, 0.75, 0.5], atol=1e-7)
    np.testing.assert_allclose(out.keypoints[0, 0], [0.25, 0.0], atol=1e-7)


def test_letterbox_samples_like_mediapipe() -> None:
    # A 256 x 256 frame maps tensor pixel u to frame pixel 2u exactly: no averaging.
    frame = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    tensor, pads = bf.letterbox(frame)
    assert pads == (0.0, 0.0)
    expected = frame[::2, ::2].transpose(2, 0, 1).astype(np.float32) * np.float32(2 / 255) - 1
    np.testing.assert_allclose(tensor, expected, atol=1e-6)


@pytest.mark.parametrize("shape", [(48, 64, 3), (64, 48, 3)])
def test_letterbox_batch_mixes_sizes(shape: tuple[int, int, int]) -> None:
    frames = [np.zeros(shape, np.uint8), np.zeros((128, 128, 3), np.uint8)]
    tensors, pads = bf.letterbox_batch(frames)
    assert tensors.shape == (2, 3, 128, 128)
    side = max(shape[:2])
    np.testing.assert_allclose(pads[0], [(1 - shape[1] / side) / 2, (1 - shape[0] / side) / 2])
    np.testing.assert_allclose(pads[1], [0, 0])
