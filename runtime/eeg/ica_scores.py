"""How closely each ICA component follows the eye signal, computed a stretch at a time.

MNE's ``ICA.find_bads_eog`` on a Raw makes every component's time course for the whole
recording (``BAD_*`` spans omitted), band-passes it and the EOG (1-10 Hz, FIR ``zero-double``,
10 s long) and correlates them (Pearson r): several ``(n_components, T)`` float64 copies, about
0.5 GB per hour at 128 Hz. :func:`eog_scores` gives the same scores (to float rounding; a test
pins the agreement) with the sources made and filtered ``chunk_s`` at a time, each stretch read
with :data:`MARGIN_S` of its neighbours on either side so that the filter sees what it sees in
one pass, and the correlation summed over the stretches; :func:`zscore_outliers` is MNE's
iterative z-score rule (``find_bads_eog(measure='zscore')``). Memory: one stretch, whatever the
recording's length.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..scratch import release
from .artefacts import MNE_QUIET, kept_samples

if TYPE_CHECKING:
    import mne
    from mne.preprocessing import ICA

__all__ = ["SCORE_CHUNK_S", "MARGIN_S", "EOG_FILTER", "eog_scores", "zscore_outliers"]

#: Seconds of components scored at a time.
SCORE_CHUNK_S = 60.0
#: Seconds read on each side of a stretch: more than the reach of the 10 s FIR applied twice.
MARGIN_S = 25.0
#: ``find_bads_eog``'s band-pass of the sources and the EOG (MNE's ``_band_pass_filter``).
EOG_FILTER = dict(
    phase="zero-double", filter_length="10s", fir_window="hann",
    l_trans_bandwidth=0.5, h_trans_bandwidth=0.5, fir_design="firwin2",
)  # fmt: skip


def eog_scores(
    ica: ICA, work: mne.io.BaseRaw, reference: list[str], *,
    l_freq: float = 1.0, h_freq: float = 10.0, chunk_s: float | None = None,
) -> np.ndarray:  # fmt: skip
    """(n_reference, n_components) Pearson r of each band-passed component with each band-passed
    ``reference`` channel, over the samples outside ``BAD_*`` spans (as ``find_bads_eog`` with
    ``reject_by_annotation=True``: the omitted spans are cut out before filtering);
    ``chunk_s`` (default :data:`SCORE_CHUNK_S`) seconds at a time."""
    from mne.filter import filter_data

    sfreq = float(work.info["sfreq"])
    keep = kept_samples(work)  # (T',) sample indices of the 'omit' stream
    step = max(1, int(round((SCORE_CHUNK_S if chunk_s is None else chunk_s) * sfreq)))
    margin = int(np.ceil(MARGIN_S * sfreq))
    unmixing = ica.unmixing_matrix_ @ ica.pca_components_[: ica.n_components_]  # (K, C)
    n_ref, k = len(reference), int(ica.n_components_)
    n = 0
    s_sum, s_sq = np.zeros(k), np.zeros(k)
    t_sum, t_sq = np.zeros(n_ref), np.zeros(n_ref)
    st = np.zeros((n_ref, k))
    for a in range(0, keep.size, step):
        b = min(a + step, keep.size)
        lo, hi = max(0, a - margin), min(keep.size, b + margin)
        idx = keep[lo:hi]
        first, last = int(idx[0]), int(idx[-1]) + 1
        data = work.get_data(picks=list(ica.ch_names), start=first, stop=last)[:, idx - first]
        target = work.get_data(picks=list(reference), start=first, stop=last)[:, idx - first]
        release(getattr(work, "_data", None))
        data /= ica.pre_whitener_
        if ica.pca_mean_ is not None:
            data -= ica.pca_mean_[:, None]
        both = np.vstack([unmixing @ data, target])  # (K + R, L)
        both = filter_data(both, sfreq, l_freq, h_freq, **EOG_FILTER, verbose=MNE_QUIET)[:, a - lo : b - lo]
        s, t = both[:k], both[k:]
        n += s.shape[1]
        s_sum += s.sum(axis=1)
        s_sq += (s * s).sum(axis=1)
        t_sum += t.sum(axis=1)
        t_sq += (t * t).sum(axis=1)
        st += t @ s.T
    cov = st - np.outer(t_sum, s_sum) / n
    s_var = s_sq - s_sum**2 / n
    t_var = t_sq - t_sum**2 / n
    return cov / np.sqrt(np.outer(t_var, s_var))


def zscore_outliers(scores: np.ndarray, threshold: float, max_iter: int = 2) -> np.ndarray:
    """Indices whose |z-score| exceeds ``threshold``, z-scoring again without them (MNE's rule
    for ``find_bads_eog``: at most ``max_iter`` rounds). scores: (n_components,)."""
    from scipy.stats import zscore

    mask = np.zeros(len(scores), dtype=bool)
    for _ in range(max_iter):
        z = np.abs(zscore(np.ma.masked_array(scores, mask)))
        new = np.asarray(np.ma.filled(z > threshold, False), dtype=bool)
        mask |= new
        if not new.any():
            break
    return np.flatnonzero(mask)

