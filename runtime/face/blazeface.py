"""BlazeFace short-range post- and pre-processing in numpy: MediaPipe's face-detection graph, rewritten.

The network itself is an ONNX graph (``models/blazeface_short_range.onnx``, converted from
mediapipe 0.10.21's ``face_detection_short_range.tflite`` by ``milmer.export.blazeface_onnx``).
Around it, MediaPipe's ``FaceDetectionShortRange`` graph runs five calculators; this module does
the same steps, with the settings read from that graph's compiled config in the 0.10.21 wheel
(``FaceDetectionShortRange`` -> ``FaceDetection`` subgraph; MediaPipe sources named per step):

1. ``ImageToTensorCalculator`` (keep_aspect_ratio, BORDER_ZERO, range [-1, 1]):
   :func:`letterbox` -- the whole frame, padded to a square about its centre, is warped to
   128 x 128 (OpenCV ``warpPerspective``, bilinear, black border), pixels scaled to [-1, 1].
2. ``InferenceCalculator``: the ONNX graph, (B, 3, 128, 128) -> regressors (B, 896, 16),
   classificators (B, 896, 1).
3. ``SsdAnchorsCalculator`` (:func:`ssd_anchors`) + ``TensorsToDetectionsCalculator``
   (:func:`decode`): anchor-relative offsets -> boxes and 6 keypoints in [0, 1] letterbox
   coordinates; score = sigmoid(clip(logit, +-100)); keep score >= ``min_score``; drop boxes
   with negative or NaN size.
4. ``NonMaxSuppressionCalculator`` (IoU, threshold 0.3, WEIGHTED): :func:`weighted_nms`.
5. ``DetectionProjectionCalculator``: :func:`unletterbox` maps back to the frame.

Everything here is vectorised over anchors; only NMS loops (over kept faces, a handful).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "INPUT_SIZE",
    "NUM_ANCHORS",
    "NUM_KEYPOINTS",
    "KEYPOINT_NAMES",
    "AnchorOptions",
    "SHORT_RANGE_ANCHORS",
    "ssd_anchors",
    "letterbox",
    "letterbox_batch",
    "Detections",
    "decode",
    "iou",
    "weighted_nms",
    "unletterbox",
]

INPUT_SIZE = 128
NUM_ANCHORS = 896
NUM_KEYPOINTS = 6
#: BlazeFace's keypoints, in output order (MediaPipe's ``FaceKeyPoint``; the subject's right/left).
KEYPOINT_NAMES: tuple[str, ...] = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion",
                                   "left_ear_tragion")  # fmt: skip
#: TensorsToDetections for face_detection_short_range: x/y/w/h_scale = 128, reverse_output_order.
COORD_SCALE = 128.0
SCORE_CLIPPING_THRESH = 100.0
MIN_SUPPRESSION_THRESHOLD = 0.3


@dataclass(frozen=True)
class AnchorOptions:
    """``SsdAnchorsCalculatorOptions`` (the fields this model sets; the rest are MediaPipe's defaults)."""

    input_size: int = INPUT_SIZE
    num_layers: int = 4
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    anchor_offset: float = 0.5
    strides: tuple[int, ...] = (8, 16, 16, 16)
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = True


SHORT_RANGE_ANCHORS = AnchorOptions()


def _scale(min_scale: float, max_scale: float, index: int, n: int) -> float:
    return (min_scale + max_scale) * 0.5 if n == 1 else min_scale + (max_scale - min_scale) * index / (n - 1)


def ssd_anchors(options: AnchorOptions = SHORT_RANGE_ANCHORS) -> np.ndarray:
    """(A, 4) float32 anchors ``(x_center, y_center, w, h)`` in [0, 1]: ``SsdAnchorsCalculator``.

    Consecutive layers with the same stride share one feature map; each cell gets one anchor
    per aspect ratio (+1 for the interpolated scale) per layer, in (row, column, anchor) order.
    With the short-range options: 16x16x2 + 8x8x6 = 896 anchors, all of size 1 x 1.
    """
    anchors: list[tuple[float, float, float, float]] = []
    n = len(options.strides)
    layer = 0
    while layer < options.num_layers:
        heights: list[float] = []
        widths: list[float] = []
        last = layer
        while last < n and options.strides[last] == options.strides[layer]:
            scale = _scale(options.min_scale, options.max_scale, last, n)
            ratios_scales = [(r, scale) for r in options.aspect_ratios]
            if options.interpolated_scale_aspect_ratio > 0:
                next_scale = 1.0 if last == n - 1 else _scale(options.min_scale, options.max_scale, last + 1, n)
                ratios_scales.append((options.interpolated_scale_aspect_ratio, math.sqrt(scale * next_scale)))
            for ratio, s in ratios_scales:
                heights.append(s / math.sqrt(ratio))
                widths.append(s * math.sqrt(ratio))
            last += 1
        stride = options.strides[layer]
        size = math.ceil(options.input_size / stride)
        for y in range(size):
            for x in range(size):
                for h, w in zip(heights, widths):
                    xc = (x + options.anchor_offset) / size
                    yc = (y + options.anchor_offset) / size
                    anchors.append((xc, yc, 1.0, 1.0) if options.fixed_anchor_size else (xc, yc, w, h))
        layer = last
    return np.asarray(anchors, np.float32)


def _letterbox_matrix(width: int, height: int) -> tuple[np.ndarray, float, float]:
    """The 3x3 frame -> tensor pixel map of ImageToTensorCalculator (keep_aspect_ratio), and the
    letterbox padding (pad_x, pad_y) as fractions of the tensor on each side."""
    import cv2

    side = float(max(width, height))  # the ROI (the whole frame) padded to a square about its centre
    cx, cy = width / 2.0, height / 2.0
    # cv::boxPoints order for an unrotated rect: bottom-left, top-left, top-right, bottom-right.
    src = np.array(
        [[cx - side / 2, cy + side / 2], [cx - side / 2, cy - side / 2],
         [cx + side / 2, cy - side / 2], [cx + side / 2, cy + side / 2]], np.float32,
    )  # fmt: skip
    n = float(INPUT_SIZE)
    dst = np.array([[0.0, n], [0.0, 0.0], [n, 0.0], [n, n]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    return matrix, (1.0 - width / side) / 2.0, (1.0 - height / side) / 2.0


def letterbox(frame_rgb: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """frame_rgb: (H, W, 3) uint8 -> ((3, 128, 128) float32 in [-1, 1], (pad_x, pad_y)).

    ImageToTensorCalculator with keep_aspect_ratio and BORDER_ZERO: the frame is centred on a
    square of side max(H, W) (the padding is black, -1 after scaling) and warped to 128 x 128 with
    bilinear sampling at the tensor's pixel positions (no anti-aliasing, as in MediaPipe).
    pad_x/pad_y: the padding on each side as a fraction of the tensor width/height.
    """
    import cv2

    height, width = frame_rgb.shape[:2]
    matrix, pad_x, pad_y = _letterbox_matrix(width, height)
    warped = cv2.warpPerspective(
        frame_rgb, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
    )  # fmt: skip
    tensor = warped.astype(np.float32) * np.float32(2.0 / 255.0) + np.float32(-1.0)  # (128, 128, 3)
    return np.ascontiguousarray(tensor.transpose(2, 0, 1)), (pad_x, pad_y)


def letterbox_batch(frames: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """N frames (H_i, W_i, 3) uint8 -> ((N, 3, 128, 128) float32, (N, 2) float64 paddings)."""
    tensors = np.empty((len(frames), 3, INPUT_SIZE, INPUT_SIZE), np.float32)
    pads = np.empty((len(frames), 2), np.float64)
    for i, frame in enumerate(frames):
        tensors[i], pads[i] = letterbox(frame)
    return tensors, pads


@dataclass(frozen=True)
class Detections:
    """Faces of one frame, best first.

    boxes:     (K, 4) float32 ``(xmin, ymin, xmax, ymax)``, in [0, 1] units of the letterbox
               (or, after :func:`unletterbox`, of the frame's width and height)
    keypoints: (K, 6, 2) float32 ``(x, y)`` in the same units
    scores:    (K,) float32 in [min_score, 1]
    """

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def decode(
    regressors: np.ndarray, classificators: np.ndarray, anchors: np.ndarray, min_score: float
) -> Detections:
    """One frame's raw outputs -> its candidate detections (``TensorsToDetectionsCalculator``).

    regressors: (896, 16) float32 ``dx, dy, w, h, kx0, ky0, ..., kx5, ky5`` in 128-pixel units
    (``reverse_output_order``: x before y), relative to the anchor centre; classificators:
    (896, 1) logits; anchors: (896, 4) from :func:`ssd_anchors`. Keeps anchors whose
    score (sigmoid of the logit clipped to +-100) is >= ``min_score`` and whose box has a
    non-negative, non-NaN size; candidates stay in anchor order (NMS sorts them).
    """
    logits = np.clip(classificators[:, 0].astype(np.float32), -SCORE_CLIPPING_THRESH, SCORE_CLIPPING_THRESH)
    with np.errstate(over="ignore"):  # exp(100) overflows float32 to inf: score 0, as in MediaPipe
        scores = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    keep = np.flatnonzero(scores >= min_score)
    raw = regressors[keep].astype(np.float32)
    anc = anchors[keep]
    scale = np.float32(COORD_SCALE)
    xc = raw[:, 0] / scale * anc[:, 2] + anc[:, 0]
    yc = raw[:, 1] / scale * anc[:, 3] + anc[:, 1]
    w = raw[:, 2] / scale * anc[:, 2]
    h = raw[:, 3] / scale * anc[:, 3]
    boxes = np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], axis=1)
    kp = raw[:, 4 : 4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2)
    keypoints = kp / scale * anc[:, None, 2:4] + anc[:, None, 0:2]
    valid = (w >= 0) & (h >= 0)  # NaN compares False: dropped too
    return Detections(boxes[valid], keypoints[valid].astype(np.float32), scores[keep][valid])


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one ``(xmin, ymin, xmax, ymax)`` box with (K, 4) boxes; 0 where they do not overlap."""
    ix = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    iy = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    inter = np.where((ix > 0) & (iy > 0), ix * iy, 0.0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def weighted_nms(detections: Detections, threshold: float = MIN_SUPPRESSION_THRESHOLD) -> Detections:
    """``NonMaxSuppressionCalculator`` with ``algorithm: WEIGHTED``, ``overlap_type: IoU``.

    Repeatedly: take the best remaining detection; every remaining one whose IoU with it is
    > ``threshold`` (itself included) joins its cluster; the output box and keypoints are the
    cluster's score-weighted mean, the score is the best one's. Faces come out best first.
    """
    order = np.argsort(-detections.scores, kind="stable")
    boxes, kps, scores = detections.boxes[order], detections.keypoints[order], detections.scores[order]
    out_boxes, out_kps, out_scores = [], [], []
    remaining = np.arange(len(scores))
    while remaining.size:
        top = remaining[0]
        overlap = iou(boxes[top], boxes[remaining]) > threshold
        cluster, rest = remaining[overlap], remaining[~overlap]
        out_scores.append(scores[top])
        if cluster.size == 0:  # a zero-area box overlaps nothing, not even itself: MediaPipe
            out_boxes.append(boxes[top])  # keeps it as is and stops there
            out_kps.append(kps[top])
            break
        weights = scores[cluster].astype(np.float32)
        total = weights.sum()
        out_boxes.append((boxes[cluster] * weights[:, None]).sum(axis=0) / total)
        out_kps.append((kps[cluster] * weights[:, None, None]).sum(axis=0) / total)
        remaining = rest
    if not out_scores:
        return Detections(np.zeros((0, 4), np.float32), np.zeros((0, NUM_KEYPOINTS, 2), np.float32),
                          np.zeros(0, np.float32))  # fmt: skip
    return Detections(
        np.asarray(out_boxes, np.float32), np.asarray(out_kps, np.float32), np.asarray(out_scores, np.float32)
    )


def unletterbox(detections: Detections, pad_x: float, pad_y: float) -> Detections:
    """Letterbox [0, 1] coordinates -> the frame's [0, 1] coordinates (``DetectionProjectionCalculator``
    for an unrotated, aspect-keeping letterbox): ``x' = (x - pad_x) / (1 - 2 pad_x)``, same for y."""
    sx, sy = 1.0 - 2.0 * pad_x, 1.0 - 2.0 * pad_y
    offset = np.array([pad_x, pad_y], np.float64)
    scale = np.array([sx, sy], np.float64)
    boxes = (detections.boxes.reshape(-1, 2, 2) - offset) / scale
    kps = (detections.keypoints - offset) / scale
    return Detections(boxes.reshape(-1, 4).astype(np.float32), kps.astype(np.float32), detections.scores)
