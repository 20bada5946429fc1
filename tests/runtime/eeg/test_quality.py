"""Line-noise spectra of long recordings: read a block of Welch segments at a time."""

from __future__ import annotations

import numpy as np
import pytest

from milmer.runtime.eeg import quality
from milmer.runtime.eeg.quality import line_share_of, mean_psd_of


@pytest.mark.parametrize("block", [1, 7, 64])
def test_blockwise_psd_equals_one_welch_pass(monkeypatch, block):
    """Blocks of whole segments of the one-pass grid: Welch's mean over all segments, to
    rounding, with BAD_* spans left out (the segments run across the omitted joins as MNE's
    'omit' stream does)."""
    import mne

    rng = np.random.default_rng(5)
    t = np.arange(int(300 * 128)) / 128
    x = rng.standard_normal((2, t.size)) * 1e-5 + 3e-6 * np.sin(2 * np.pi * 50 * t)
    raw = mne.io.RawArray(x, mne.create_info(["Fz", "Cz"], 128.0, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([40.3, 201.0], [12.7, 0.4], ["BAD_move", "BAD_ACQ_SKIP"]))
    freqs, whole, _ = mean_psd_of(raw, ["Fz", "Cz"])  # 142 segments: one pass
    share = line_share_of(raw, ["Fz", "Cz"], 50.0, (1.0, 64.0))
    monkeypatch.setattr(quality, "PSD_BLOCK_SEGMENTS", block)
    freqs_b, blocks, _ = mean_psd_of(raw, ["Fz", "Cz"])
    np.testing.assert_array_equal(freqs_b, freqs)
    np.testing.assert_allclose(blocks, whole, rtol=1e-12)
    assert line_share_of(raw, ["Fz", "Cz"], 50.0, (1.0, 64.0)) == pytest.approx(share, rel=1e-12)
    assert share > 0.01
