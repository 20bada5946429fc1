"""Synthetic face video: a real photo's face with a class-dependent expression and head motion.

The face is the astronaut photo bundled with scikit-image (``skimage.data.astronaut()``,
512x512, public domain, NASA). Her head is cut out with a feathered ellipse and placed on a
textured background; each frame then gets

- **brief expressions**: the face is neutral except for one short expression (about 0.75 s,
  2-3 of the 10 frames a model samples) at a random moment inside every 3 s window of the
  session (windows counted from time 0, the grid the model's windows follow), so most frames of
  a bag carry no class: the situation multiple-instance learning is for. Within an expression:
- **valence**: mouth corners displaced up and outward (a broader smile) for positive valence,
  down and inward for negative, with ``cv2.remap`` and a smooth Gaussian displacement field;
- **arousal**: eyes opened wider and brows raised for high arousal (narrower eyes, lowered
  brows for low); head motion grows with arousal all the time;
- **blinks**: the eyelid closes at the times of the EEG blinks (same ``Blinks`` object), so a
  blink in the video lines up with the blink on the vertical EOG;
- head motion (slow sinusoidal translation, scale and rotation), a slight illumination flicker
  and per-frame sensor noise; the codec adds compression artefacts.

Faces stay large (BlazeFace boxes about 105-140 px wide in a 320x240 frame) so mediapipe's BlazeFace
short-range model finds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .timeline import Blinks, StateTimeline

__all__ = ["BURST_PERIOD_S", "BURST_S", "FRAME_SIZE", "FaceRenderer", "expression_envelope"]

#: Default (width, height) of the synthetic video frames.
FRAME_SIZE = (320, 240)
#: One brief expression per period (s): the model's 3 s window.
BURST_PERIOD_S = 3.0
#: Length of a brief expression at full strength (s), plus 0.1 s raised-cosine ramps each side.
BURST_S = 0.75
_BURST_RAMP_S = 0.1

# Landmarks of the astronaut photo, in pixels of the 512x512 image (measured with BlazeFace
# keypoints and by eye). The head crop starts at (_CROP_X, _CROP_Y).
_CROP_X, _CROP_Y, _CROP_W, _CROP_H = 140, 0, 175, 210
# The head mask is the union of two ellipses (centre x, centre y, semi-axis x, semi-axis y): one
# around the hair, a narrower one around the face and chin, so little of the photo's backdrop
# comes along.
_HEAD_ELLIPSES = ((225.0, 78.0, 76.0, 68.0), (224.0, 128.0, 50.0, 52.0))
_FACE_CENTER = (222.0, 125.0)
_MOUTH_CORNERS = ((203.0, 140.0), (243.0, 141.0))
_EYES = ((204.0, 102.0), (246.0, 103.0))
_EYE_HALF = (9.0, 5.0)
_BROW_Y = 92.0
# Expression gains, in source pixels (or relative eye height) per unit drive.
_SMILE_UP = 9.0
_SMILE_OUT = 4.5
_EYE_WIDEN = 0.35
_BROW_RAISE = 6.0


@dataclass(frozen=True)
class _Motion:
    """Per-session head-motion parameters (amplitudes in frame pixels / degrees / fraction)."""

    freqs: np.ndarray  # (4,) Hz: x, y, rotation, scale
    phases: np.ndarray  # (4,) rad
    amps: np.ndarray  # (4,)


class FaceRenderer:
    """Renders one synthetic subject's face; the subject's look is fixed at construction.

    Frames are ``(H, W, 3)`` uint8 **BGR** (what ``cv2.VideoWriter`` takes).
    """

    def __init__(self, rng: np.random.Generator, frame_size: tuple[int, int] = FRAME_SIZE) -> None:
        import cv2
        from skimage.data import astronaut

        self.width, self.height = frame_size
        rgb = astronaut()[_CROP_Y : _CROP_Y + _CROP_H, _CROP_X : _CROP_X + _CROP_W]
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        self._mirror = bool(rng.random() < 0.5)
        tint = rng.uniform(0.9, 1.1, 3)
        self._face = np.clip(bgr.astype(np.float32) * tint, 0, 255).astype(np.uint8)

        yy, xx = np.mgrid[0:_CROP_H, 0:_CROP_W].astype(np.float32)
        self._grid = (xx, yy)
        self._fields = _expression_fields(xx, yy)
        inside = np.zeros(xx.shape, dtype=bool)
        for cx, cy, ax, ay in _HEAD_ELLIPSES:
            inside |= ((xx - (cx - _CROP_X)) / ax) ** 2 + ((yy - (cy - _CROP_Y)) / ay) ** 2 <= 1.0
        self._alpha = np.round(255 * cv2.GaussianBlur(inside.astype(np.float32), (0, 0), 5.0)).astype(np.uint8)
        self._last_key: tuple[float, float, float] | None = None
        self._last_face = self._with_alpha(self._face)

        self._scale = float(rng.uniform(1.15, 1.35))
        self._background = _background(rng, self.width, self.height)
        # A small bank of sensor-noise frames, reused in random order (cheaper than fresh noise).
        self._noise = [
            np.round(rng.normal(0.0, 3.0, (self.height, self.width, 3))).astype(np.int16) for _ in range(8)
        ]

    # ------------------------------------------------------------------ public
    def render(
        self,
        timeline: StateTimeline,
        blinks: Blinks,
        n_frames: int,
        fps: float,
        rng: np.random.Generator,
    ) -> Iterator[np.ndarray]:
        """Yield ``n_frames`` BGR frames; frame ``i`` shows time ``i / fps`` of the session."""
        import cv2

        times = np.arange(n_frames) / fps
        valence, arousal = timeline.at(times)
        envelope = expression_envelope(times, rng)
        closure = blinks.closure(times)
        motion = _Motion(
            freqs=rng.uniform([0.15, 0.2, 0.1, 0.1], [0.4, 0.5, 0.3, 0.3]),
            phases=rng.uniform(0, 2 * np.pi, 4),
            amps=np.array([7.0, 4.0, 3.0, 0.02]),
        )
        flicker = rng.uniform(0.1, 0.3)
        noise_index = rng.integers(len(self._noise), size=n_frames)
        for i, t in enumerate(times):
            lively = 1.0 + 0.6 * arousal[i]  # high arousal moves more
            offsets = lively * motion.amps * np.sin(2 * np.pi * motion.freqs * t + motion.phases)
            face = self._expression(envelope[i] * valence[i], envelope[i] * arousal[i], closure[i])
            frame = self._compose(face, offsets)
            frame = cv2.convertScaleAbs(frame, alpha=1.0 + 0.03 * np.sin(2 * np.pi * flicker * t))
            yield cv2.add(frame, self._noise[noise_index[i]], dtype=cv2.CV_8U)

    def expression(self, valence: float, arousal: float, closure: float = 0.0) -> np.ndarray:
        """(210, 175, 3) uint8 BGR head crop (before pose and background) with an expression.

        ``valence`` and ``arousal`` are drives in [-1, 1], ``closure`` the eyelid closure in [0, 1].
        """
        return np.ascontiguousarray(self._expression(valence, arousal, closure)[:, :, :3])

    # ------------------------------------------------------------------ internals
    def _with_alpha(self, face: np.ndarray) -> np.ndarray:
        """(H, W, 4) uint8 BGRA head crop (alpha = feathered head ellipse), mirrored if needed."""
        bgra = np.dstack([face, self._alpha])
        return np.ascontiguousarray(bgra[:, ::-1]) if self._mirror else bgra

    def _expression(self, valence: float, arousal: float, closure: float) -> np.ndarray:
        """(H, W, 4) uint8 BGRA head crop with the expression applied via ``cv2.remap``."""
        import cv2

        key = (round(valence, 3), round(arousal, 3), round(closure, 3))
        if key != self._last_key:
            xx, yy = self._grid
            d = valence * self._fields[0] + arousal * self._fields[1] + closure * self._fields[2]
            # float32 maps: under numpy 2's promotion rules a numpy float64 drive would make them float64.
            mx, my = (xx + d[0]).astype(np.float32), (yy + d[1]).astype(np.float32)
            face = cv2.remap(self._face, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            self._last_face = self._with_alpha(face)
            self._last_key = key
        return self._last_face

    def _compose(self, face: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 frame: the BGRA head crop warped and alpha-blended onto the background."""
        import cv2

        tx, ty, rot, dscale = offsets
        fx = _FACE_CENTER[0] - _CROP_X
        if self._mirror:
            fx = _CROP_W - 1 - fx
        fy = _FACE_CENTER[1] - _CROP_Y
        matrix = cv2.getRotationMatrix2D((fx, fy), rot, self._scale * (1.0 + dscale))
        # Put the face centre slightly below the frame centre (room for the hair above).
        matrix[0, 2] += self.width / 2 + tx - fx
        matrix[1, 2] += self.height * 0.55 + ty - fy
        # Only the head's bounding box needs warping and blending.
        corners = np.array([[0, 0, 1], [_CROP_W, 0, 1], [0, _CROP_H, 1], [_CROP_W, _CROP_H, 1]], dtype=np.float64)
        mapped = corners @ matrix.T  # (4, 2)
        x0, y0 = np.maximum(np.floor(mapped.min(axis=0)).astype(int), 0)
        x1 = min(int(np.ceil(mapped[:, 0].max())) + 1, self.width)
        y1 = min(int(np.ceil(mapped[:, 1].max())) + 1, self.height)
        frame = self._background.copy()
        if x1 <= x0 or y1 <= y0:
            return frame
        matrix[:, 2] -= (x0, y0)
        warped = cv2.warpAffine(face, matrix, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR)
        weight = warped[:, :, 3].astype(np.float32) * (1.0 / 255.0)
        fg = cv2.cvtColor(warped, cv2.COLOR_BGRA2BGR)
        frame[y0:y1, x0:x1] = cv2.blendLinear(fg, frame[y0:y1, x0:x1], weight, 1.0 - weight)
        return frame


def expression_envelope(times: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n,) float64 in [0, 1]: 1 during the brief expression of each :data:`BURST_PERIOD_S`
    period (one per period, ``BURST_S`` long at a uniform random moment inside it, raised-cosine
    ramps of 0.1 s), 0 elsewhere. ``times`` in seconds from the session's start."""
    times = np.asarray(times, dtype=np.float64)
    n_periods = int(np.floor(times.max() / BURST_PERIOD_S)) + 1 if times.size else 0
    margin = _BURST_RAMP_S + 0.05
    onsets = np.arange(n_periods) * BURST_PERIOD_S + rng.uniform(margin, BURST_PERIOD_S - BURST_S - margin, n_periods)
    period = np.clip(np.floor(times / BURST_PERIOD_S).astype(int), 0, max(n_periods - 1, 0))
    phase = times - onsets[period] if n_periods else times
    # 0 before onset - ramp, rising ramp, flat top of BURST_S, falling ramp, 0 after.
    rise = np.clip((phase + _BURST_RAMP_S) / _BURST_RAMP_S, 0.0, 1.0)
    fall = np.clip((BURST_S + _BURST_RAMP_S - phase) / _BURST_RAMP_S, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * np.minimum(rise, fall))


def _expression_fields(xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """(3, 2, H, W) float32 displacement (dx, dy) per unit valence, arousal and eye closure.

    ``cv2.remap`` samples ``out(x) = src(x + d(x))``, so moving content by ``m`` needs ``d = -m``
    near it. The three effects barely overlap, so the frame's field is their weighted sum.
    """
    fields = np.zeros((3, 2) + xx.shape, dtype=np.float32)
    for k, (mx, my) in enumerate(_MOUTH_CORNERS):
        g = _bump(xx, yy, mx - _CROP_X, my - _CROP_Y, 8.0)
        outward = -1.0 if k == 0 else 1.0
        fields[0, 0] -= outward * _SMILE_OUT * g
        fields[0, 1] += _SMILE_UP * g  # content moves up
    for ex, ey in _EYES:
        ex, ey = ex - _CROP_X, ey - _CROP_Y
        # Wider eyes: content moves away from the eye's centre line; brows move up.
        fields[1, 1] -= _EYE_WIDEN * (yy - ey) * _bump(xx, yy, ex, ey, 8.0)
        fields[1, 1] += _BROW_RAISE * _bump(xx, yy, ex, _BROW_Y - _CROP_Y, 7.0)
        # Closed lid: the eye region samples the skin just above it.
        lid_y = ey - _EYE_HALF[1] - 2.0
        window = np.clip(1.6 * _bump(xx, yy, ex, ey, 6.0, sx=10.0), 0.0, 1.0)
        fields[2, 1] += (lid_y - yy) * window
    return fields


def _bump(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, sigma: float, sx: float | None = None) -> np.ndarray:
    sx = sigma if sx is None else sx
    return np.exp(-0.5 * (((xx - cx) / sx) ** 2 + ((yy - cy) / sigma) ** 2))


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 plain-ish backdrop: a tinted gradient, soft blotches and fine grain.

    Not flat on purpose: BlazeFace is known to behave differently on perfectly even frames.
    """
    import cv2

    base = rng.uniform(90, 200, 3).astype(np.float32)
    ramp = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None, None]
    tilt = rng.uniform(10, 30)
    blotch = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 25.0)
    blotch *= 12.0 / max(float(blotch.std()), 1e-6)
    grain = rng.normal(0, 2.0, (height, width, 3)).astype(np.float32)
    return np.clip(base + tilt * ramp + blotch[:, :, None] + grain, 0, 255).astype(np.uint8)
