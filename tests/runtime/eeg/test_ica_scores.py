"""The eye-component scores made a stretch at a time agree with MNE's one-pass find_bads_eog."""

from __future__ import annotations

import numpy as np
import pytest

from milmer.runtime.eeg.ica_scores import eog_scores, zscore_outliers
from milmer.runtime.eeg.preprocess import array_to_raw
from milmer.runtime.spec import DEAP_CHANNELS


@pytest.fixture(scope="module")
def fitted(blinky):
    """A 60 s blinky recording at 128 Hz with a vEOG channel, a BAD_ span, band-passed, and its ICA."""
    import mne
    from mne.preprocessing import ICA

    raw = array_to_raw(np.vstack([blinky.eeg, blinky.eog]), list(DEAP_CHANNELS) + ["vEOG"], 128.0)
    raw.set_channel_types({"vEOG": "eog"})
    raw.set_eeg_reference("average", verbose="error")
    raw.filter(1.0, 45.0, picks=["eeg", "eog"], verbose="error")
    raw.set_annotations(mne.Annotations([19.5], [2.0], ["BAD_movement"]))
    ica = ICA(n_components=20, method="fastica", random_state=0, max_iter=400, verbose="error")
    ica.fit(raw, picks="eeg", reject_by_annotation=True, verbose="error")
    return raw, ica


@pytest.mark.parametrize("reference", [["vEOG"], ["Fp1", "Fp2"]])
@pytest.mark.parametrize("chunk_s", [3.0, 1e9])
def test_scores_match_find_bads_eog(fitted, reference, chunk_s):
    raw, ica = fitted
    found, expected = ica.find_bads_eog(raw, ch_name=reference, threshold=3.0, verbose="error")
    scores = eog_scores(ica, raw, reference, chunk_s=chunk_s)
    np.testing.assert_allclose(scores, np.atleast_2d(np.asarray(expected)), rtol=0, atol=1e-9)
    assert np.abs(scores).max() > 0.9  # the blink component
    ours = sorted({int(i) for row in scores for i in zscore_outliers(row, 3.0)})
    assert ours == sorted(int(i) for i in found) and ours


def test_zscore_outliers_iterates_like_mne():
    """Pinned: two rounds find both strong scores; MNE's own rule (a private helper) agrees."""
    from mne.preprocessing.bads import _find_outliers

    rng = np.random.default_rng(0)
    scores = np.r_[0.95, 0.5, 0.1 * rng.standard_normal(30)]
    assert list(zscore_outliers(scores, 3.0)) == [0, 1]
    assert list(zscore_outliers(scores, 3.0, max_iter=1)) == [0]
    for seed in range(20):
        x = np.random.default_rng(seed).standard_t(2, 31)
        for threshold in (2.0, 3.0):
            assert list(zscore_outliers(x, threshold)) == list(_find_outliers(x, threshold))
