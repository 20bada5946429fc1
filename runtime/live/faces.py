"""Live face crops: the offline sampling, detection, subject tracking and crop rule on received frames.

For each window the spec's ``frames_per_window`` instants are sampled as offline
(:func:`~..face.video.sample_times`), the nearest received frame to each is taken (by its LSL
arrival time), and the frames go through the same steps as a file's: one ``detect_batch`` call,
the :class:`~..face.track.SubjectTracker` (one subject followed through the session), and the crop
rule with its no-face fallbacks (:mod:`..face.extract`). A frame farther than 1.5 frame intervals
from its instant is flagged ``timing_off``, as offline; an instant with no frame within
``stale_s`` makes the window unusable (the camera stopped): it is skipped, never cropped from an
old frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..face.window_crops import (
    FRAME_TIMING_OFF,
    FaceExtractionStats,
    FaceWindow,
    _crop_window,
    _detect_pending,
    _WindowBuffer,
)
from ..face.track import SubjectTracker
from ..face.video import TIMING_TOLERANCE_FRAMES, sample_times
from ..spec import FaceSpec
from .buffers import FrameBuffer

__all__ = ["LiveFaces"]


class LiveFaces:
    """Face windows from a :class:`~.buffers.FrameBuffer` (one detector and tracker per session).

    stale_s: an instant whose nearest frame is farther than this is missing (the window is skipped)
    """

    def __init__(self, spec_face: FaceSpec, window_s: float, detector: Any, *, stale_s: float = 0.5) -> None:
        self.spec, self.window_s, self.detector, self.stale_s = spec_face, window_s, detector, stale_s
        self.tracker = SubjectTracker()
        self.stats = FaceExtractionStats()
        self._known: dict[float, tuple[Any, int]] = {}

    def instants(self, start: float) -> np.ndarray:
        """(F,) LSL times sampled in the window starting at ``start``."""
        return sample_times(np.array([start]), self.window_s, self.spec.frames_per_window)[0]

    def window(self, index: int, start: float, frames: FrameBuffer) -> FaceWindow | None:
        """The crops of the window at ``start``; None when an instant has no frame within ``stale_s``
        or lies before the first frame (offline's coverage rule: a window is covered when all its
        sampled instants are)."""
        times = self.instants(start)
        if frames.first_stamp is None or times[0] < frames.first_stamp:
            return None
        picked, stamps = frames.nearest(times)
        error = np.abs(stamps - times)
        if np.any(~np.isfinite(error)) or np.any(error > self.stale_s):
            return None
        buf = _WindowBuffer(len(times))
        for f, (frame, t) in enumerate(zip(picked, stamps)):
            buf.frames[f], buf.timestamps[f] = frame, float(t)
            if error[f] > TIMING_TOLERANCE_FRAMES * frames.interval_s():
                buf.flags[f] |= FRAME_TIMING_OFF
                self.stats.frames_timing_off += 1
            buf.answered += 1
        _detect_pending(self.detector, {index: buf}, self._known, self.tracker, self.stats)
        # Frames of later windows are later than this one's: the detections can go.
        oldest = float(np.nanmin(buf.timestamps))
        self._known = {t: v for t, v in self._known.items() if t >= oldest}
        return _crop_window(index, buf, self.spec, self.stats)
