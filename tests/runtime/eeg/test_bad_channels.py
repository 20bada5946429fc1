"""EOG channels checked a stretch at a time: the same answer as one pass over the channel."""

from __future__ import annotations

import numpy as np
import pytest

from milmer.runtime.eeg import bad_channels
from milmer.runtime.eeg.bad_channels import _finite_std, usable_eog
from milmer.runtime.spec import DEAP_CHANNELS, EEGSpec


def _raw(eog):
    import mne

    x = np.vstack([np.random.default_rng(0).standard_normal((32, eog.shape[1])) * 1e-5, eog])
    names = [*DEAP_CHANNELS, "hEOG", "vEOG", "EOG3"]
    return mne.io.RawArray(x, mne.create_info(names, 100.0, ["eeg"] * 32 + ["eog"] * 3), verbose="error")


@pytest.mark.parametrize("screen_s", [0.013, 60.0])  # stretches of 13 samples, or one
def test_eog_checked_in_stretches_as_in_one_pass(monkeypatch, screen_s):
    monkeypatch.setattr(bad_channels, "SCREEN_S", screen_s)
    rng = np.random.default_rng(1)
    live = 0.03 + rng.standard_normal(1000) * 2e-5  # a 30 mV offset, 20 uV of signal
    live[100:250] = np.nan
    raw = _raw(np.vstack([live, np.full(1000, 0.03), np.full(1000, np.nan)]))
    assert _finite_std(raw, "hEOG") == pytest.approx(np.nanstd(live), rel=1e-9)
    assert usable_eog(raw, EEGSpec()) == (["hEOG"], {"vEOG": "flat", "EOG3": "NaN or infinite values"})
