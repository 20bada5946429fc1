"""Eye-artefact removal by ICA (the paper's preprocessing follows DEAP's: EOG removed).

:func:`remove_eye_artefacts` fits ICA (``ICASpec.method``: Picard-O by default, FastICA) on good
data only (``BAD_*`` spans left out, long recordings on every k-th sample) and removes the
components that correlate with the EOG channels (or, without EOG, the frontal proxy channels
Fp1/Fp2) beyond ``ICASpec.eog_threshold`` (MNE's iterative z-score) and with |r| >=
``ICASpec.min_correlation``, at most ``ICASpec.max_excluded`` of them, the strongest first
(:func:`eye_components`). :class:`ICATrace` keeps a before/after excerpt for plotting.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dependencies import missing_package_error
from ..scratch import empty, release
from ..spec import EEGSpec, ICASpec
from .artefacts import MNE_QUIET, good_chunks, kept_samples
from .channels import canonical_name
from .ica_scores import eog_scores, zscore_outliers
from .report import ICAReport, ICATrace

if TYPE_CHECKING:
    import mne

__all__ = [
    "TRACE_CHANNELS",
    "TRACE_SECONDS",
    "ICATrace",
    "remove_eye_artefacts",
    "ica_fit_params",
    "eye_components",
    "fit_decimation",
    "make_trace",
    "trace_data",
]

#: Channels and length of the before/after-ICA excerpt kept with ``keep_trace=True``.
TRACE_CHANNELS: tuple[str, ...] = ("Fp1", "Fp2", "Fz", "Cz", "O1")
TRACE_SECONDS = 10.0
#: Seconds of the recording the components are removed from at a time.
APPLY_CHUNK_S = 60.0


def remove_eye_artefacts(
    work: mne.io.BaseRaw, spec_eeg: EEGSpec, eog_names: list[str]
) -> ICAReport:
    """Fit ICA (``spec_eeg.ica.method``: Picard or FastICA) on the EEG channels of ``work``
    (``BAD_*`` spans left out, every k-th sample of long recordings: :func:`fit_decimation`) and
    remove the eye components (:func:`eye_components`) in place. Usable on its own: ``work`` is
    any MNE recording with the spec's EEG channels (typed 'eeg') and ``eog_names`` (typed 'eog')."""
    from mne.preprocessing import ICA

    cfg = spec_eeg.ica
    if not cfg.enabled:
        return ICAReport()
    if eog_names:
        reference, source = eog_names, f"EOG channels {eog_names}"
    else:
        by_key = {canonical_name(c): c for c in spec_eeg.channels}
        reference = [by_key[k] for k in map(canonical_name, cfg.proxy_channels) if k in by_key]
        source = f"proxy {'/'.join(reference)}" if reference else "none (no EOG or proxy channels)"

    n_components = cfg.n_components
    if n_components is None:
        # The data's rank (average reference and interpolation each remove one): ICA on a
        # zero-variance direction would divide by ~0. Singular values > 1e-6 of the largest, from
        # the (C, C) Gram matrix's eigenvalues (> 1e-12 of the largest): an SVD of the whole
        # (C, T) recording took seconds on 10 min.
        from threadpoolctl import threadpool_limits  # scikit-learn's dependency

        keep = kept_samples(work)
        chunk = int(APPLY_CHUNK_S * work.info["sfreq"])
        with threadpool_limits(limits=1):
            gram = sum(g @ g.T for g in good_chunks(work, spec_eeg.channels, keep, chunk))  # (C, C)
            eig = np.linalg.eigvalsh(gram)[::-1]  # (C,) descending
        n_components = int((eig > eig[0] * 1e-12).sum())
    ica = ICA(
        n_components=n_components,
        method=cfg.method,
        fit_params=ica_fit_params(cfg),
        max_iter=cfg.max_iter,
        random_state=cfg.random_state,
        verbose=MNE_QUIET,
    )
    decim = fit_decimation(work.n_times, float(work.info["sfreq"]), cfg.max_fit_s)
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency

    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # Recorded in ICAReport.converged instead of printed once per recording.
        warnings.filterwarnings("ignore", message="FastICA did not converge")
        warnings.filterwarnings("ignore", message="Picard did not converge")
        # BAD_* spans (artefacts, gaps) are left out of the fit: a 1 mV movement artefact would
        # take the components meant for the blinks. Long recordings are fitted on every k-th sample.
        # One BLAS thread: the products are (31 x 7680) at most, too small to gain from threads,
        # and BLAS threads on a machine busy with decoding and inference make the fit minutes long.
        ica.fit(fit_sample(work, decim), picks="eeg", verbose=MNE_QUIET)

    excluded: list[int] = []
    strength = np.zeros(ica.n_components_)
    if reference:
        # find_bads_eog's scores and outlier rule, a minute of components at a time
        # (:mod:`.ica_scores`): MNE's call holds several full-length copies of every component.
        scores = eog_scores(ica, work, reference)  # (n_reference, n_components)
        found = sorted({int(i) for row in scores for i in zscore_outliers(row, cfg.eog_threshold)})
        strength = np.abs(scores).max(axis=0)  # (n_components,)
        excluded = eye_components(found, strength, cfg)
    if excluded:
        # A minute at a time: ICA's unmixing is per sample, so the result is the same, and the
        # copies MNE makes stay a minute long however long the recording is.
        step = int(APPLY_CHUNK_S * work.info["sfreq"])
        for start in range(0, work.n_times, step):
            stop = min(start + step, work.n_times)
            ica.apply(work, exclude=excluded, start=start, stop=stop, verbose=MNE_QUIET)
            release(work._data)
    return ICAReport(
        method=cfg.method,
        n_components=int(ica.n_components_),
        excluded=tuple(int(i) for i in excluded),
        eog_source=source,
        scores_max=float(strength.max()) if reference else None,
        scores_excluded=tuple(round(float(strength[i]), 4) for i in excluded),
        n_iter=int(ica.n_iter_),
        converged=bool(ica.n_iter_ < cfg.max_iter),
        fit_decim=decim,
    )


def fit_sample(work: mne.io.BaseRaw, decim: int) -> mne.io.RawArray:
    """What ``ICA.fit(work, picks='eeg', reject_by_annotation=True, decim=decim)`` fits on (every
    ``decim``-th sample outside ``BAD_*`` spans, EEG channels), read a minute at a time: MNE's fit
    copies the whole recording before decimating it."""
    import mne

    eeg = [work.ch_names[i] for i in mne.pick_types(work.info, eeg=True)]
    keep = kept_samples(work)[::decim]
    chunk = int(APPLY_CHUNK_S * work.info["sfreq"])
    data = np.concatenate(list(good_chunks(work, eeg, keep, chunk)), axis=1)  # (C, T' / decim)
    return mne.io.RawArray(data, mne.pick_info(work.info, mne.pick_types(work.info, eeg=True)), verbose=MNE_QUIET)


def ica_fit_params(cfg: ICASpec) -> dict[str, Any]:
    """``fit_params`` of ``mne.preprocessing.ICA`` for ``cfg.method`` (see ``ICASpec``).

    Picard as Picard-O (``ortho=True, extended=True``: FastICA's contrast, MNE's recipe);
    FastICA with ``cfg.tol`` (MNE adds parallel/logcosh). Refuses Picard when python-picard is
    not installed, naming the package.
    """
    if cfg.method == "picard":
        import importlib.util

        if importlib.util.find_spec("picard") is None:
            hint = "use a spec with ica.method = 'fastica' (slower, and it may not converge)"
            raise missing_package_error("picard", needed_for="ica.method = 'picard'", hint=hint)
        return {"ortho": True, "extended": True, "tol": cfg.tol}
    return {"tol": cfg.tol}


def eye_components(found: Sequence[int], strength: np.ndarray, cfg: ICASpec) -> list[int]:
    """The decision rule: which of MNE's z-score outliers ``found`` are removed.

    strength: (n_components,) |correlation| of each component with the EOG/proxy signal.
    A component is removed when it is an outlier AND ``strength >= cfg.min_correlation``, at
    most ``cfg.max_excluded``, strongest first. The z-score rule alone also flags a component of
    pure brain signal fairly often (|r| 0.35-0.6, moving with the FastICA solver's version);
    blink components correlate at 0.95+, so the decision has a wide margin on either side.
    """
    kept = [int(i) for i in found if strength[i] >= cfg.min_correlation]
    return _strongest(kept, strength, cfg.max_excluded)


def fit_decimation(n_times: int, sfreq: float, max_fit_s: float | None) -> int:
    """Every how many samples ICA is fitted on: the smallest k >= 1 with
    ``ceil(n_times / k) <= max_fit_s * sfreq`` (1 when ``max_fit_s`` is None); see ``ICASpec``."""
    if max_fit_s is None:
        return 1
    cap = max(1, int(max_fit_s * sfreq))
    return max(1, -(-n_times // cap))


def _strongest(found: Sequence[int], strength: np.ndarray, limit: int) -> list[int]:
    """The ``limit`` components of ``found`` with the largest ``strength``, strongest first.

    strength: (n_components,) |correlation| of each component with the EOG/proxy signal.
    """
    return sorted((int(i) for i in found), key=lambda i: (-strength[i], i))[:limit]


def trace_rows(spec_eeg: EEGSpec) -> list[int]:
    """Rows (spec channel indices) of :data:`TRACE_CHANNELS` (the first five channels when the
    spec has none of them)."""
    by_key = {canonical_name(c): i for i, c in enumerate(spec_eeg.channels)}
    rows = [by_key[k] for k in map(canonical_name, TRACE_CHANNELS) if k in by_key]
    return rows or list(range(min(len(TRACE_CHANNELS), spec_eeg.n_channels)))


def trace_data(work: mne.io.BaseRaw, spec_eeg: EEGSpec) -> np.ndarray:
    """(R, T) float32 microvolts of the :func:`trace_rows` channels of ``work``, read a minute
    at a time (a scratch file when large, :mod:`.scratch`): no full-length copy of every channel."""
    names = [spec_eeg.channels[i] for i in trace_rows(spec_eeg)]
    out = empty((len(names), work.n_times), np.float32)
    step = int(APPLY_CHUNK_S * work.info["sfreq"])
    for a in range(0, work.n_times, step):
        out[:, a : a + step] = work.get_data(picks=names, start=a, stop=min(a + step, work.n_times)) * 1e6
        release(work._data)
        release(out)
    return out


def make_trace(
    before: np.ndarray, after: np.ndarray, spec_eeg: EEGSpec, report: ICAReport
) -> ICATrace:
    """before, after: (R, T) microvolts of the :func:`trace_rows` channels (:func:`trace_data`)
    -> the TRACE_SECONDS stretch ICA changed most (the first one when ICA changed nothing).
    Searched a minute at a time: nothing of the recording's length is made."""
    rows = trace_rows(spec_eeg)
    n_times = before.shape[1]
    n = min(int(round(TRACE_SECONDS * spec_eeg.sfreq)), n_times)
    step = max(int(APPLY_CHUNK_S * spec_eeg.sfreq), n)
    start, best = 0, -np.inf
    for a in range(0, n_times - n + 1, step):
        b = min(a + step + n - 1, n_times)  # the stretches starting in [a, a + step)
        removed = ((before[:, a:b] - after[:, a:b]) ** 2).sum(axis=0)  # (b - a,)
        per_start = np.convolve(removed, np.ones(n), mode="valid")  # power in each stretch
        release(before)
        release(after)
        if per_start.max() > best:  # the first of equal stretches, as one argmax would pick
            start, best = a + int(np.argmax(per_start)), float(per_start.max())
    return ICATrace(
        channels=tuple(spec_eeg.channels[i] for i in rows),
        sfreq=spec_eeg.sfreq,
        start_s=start / spec_eeg.sfreq,
        before=np.array(before[:, start : start + n], np.float32),
        after=np.array(after[:, start : start + n], np.float32),
        excluded=report.excluded,
        eog_source=report.eog_source,
    )
