"""Units applied a stretch at a time: the same numbers as one pass."""

from __future__ import annotations

import numpy as np
import pytest

from milmer.runtime.eeg import units
from milmer.runtime.eeg.units import to_volts


@pytest.mark.parametrize("eeg_unit", [None, "mV"])
def test_to_volts_in_stretches_equals_one_pass(monkeypatch, eeg_unit):
    import mne

    x = np.random.default_rng(2).standard_normal((3, 1234)) * 1e-5
    raw = mne.io.RawArray(x, mne.create_info(["Fz", "Cz", "Pz"], 100.0, ["eeg", "misc", "eeg"]), verbose="error")
    raw._orig_units = {"Fz": "uV", "Cz": "\u03bcV", "Pz": "uV"}  # Cz: a unit MNE left unscaled
    whole = to_volts(raw, [2, 1, 0], eeg_unit)
    monkeypatch.setattr(units, "VOLTS_CHUNK_S", 0.37)
    assert np.array_equal(to_volts(raw, [2, 1, 0], eeg_unit), whole)
    if eeg_unit is None:
        np.testing.assert_allclose(whole, x[[2, 1, 0]] * [[1], [1e-6], [1]])
