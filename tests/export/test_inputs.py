"""Windows files read as export inputs (milmer.export.inputs.load_demo_windows): refused by shape."""

from __future__ import annotations

import numpy as np
import pytest

from milmer.export.inputs import load_demo_windows
from milmer.runtime.check import MilmerInputError
from milmer.runtime.spec import FaceSpec, ModelSpec

SPEC = ModelSpec(face=FaceSpec(frame_size=16, frames_per_window=3))
C, T = SPEC.eeg.n_channels, SPEC.eeg.window_samples


def _windows(tmp_path, eeg, faces):
    path = tmp_path / "windows.npz"
    np.savez(path, eeg=eeg, faces=faces)
    return path


def test_windows_of_the_spec_are_read(tmp_path):
    path = _windows(tmp_path, np.zeros((3, C, T), np.float32), np.zeros((3, 3, 16, 16, 3), np.uint8))
    assert load_demo_windows(tmp_path, SPEC, max_bags=2).n_bags == 2
    assert load_demo_windows(path, SPEC, max_bags=8).n_bags == 3


@pytest.mark.parametrize(
    "eeg, faces, match",
    [
        (np.zeros((3, C, T + 1), np.float32), np.zeros((3, 3, 16, 16, 3), np.uint8),
         rf"^Invalid value for 'w': expected eeg of shape \(W, {C}, {T}\), got float32 \(3, {C}, {T + 1}\); "
         r"the windows must be made for this model's spec\.$"),
        (np.zeros((3, C, T), np.float32), np.zeros((3, 3, 16, 16, 3), np.float32),
         r"^Invalid value for 'w': expected faces of shape \(W, 3, 16, 16, 3\) uint8, got float32 \(3, 3, 16, 16, 3\); "
         r"the windows must be made for this model's spec\.$"),
        (np.zeros((3, C, T), np.float32), np.zeros((2, 3, 16, 16, 3), np.uint8),
         r"^Invalid values for 'w eeg'/'w faces': expected the same length, got 3 and 2\.$"),
        (np.zeros((0, C, T), np.float32), np.zeros((0, 3, 16, 16, 3), np.uint8),
         r"^Invalid value for 'w': expected at least one window, got none\.$"),
    ],
)
def test_windows_that_do_not_fit_the_spec_are_refused(tmp_path, eeg, faces, match):
    path = _windows(tmp_path, eeg, faces)
    with pytest.raises(MilmerInputError, match=match):
        load_demo_windows(path, SPEC, max_bags=8, name="w")
