"""The typed EEG report: notes carry a code and a severity; renderers style by severity."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from milmer.runtime.eeg.preprocess import EEGInputOptions, preprocess_eeg
from milmer.runtime.eeg.report import NOTE_CODES, EEGNote, EEGReport, ICAReport, ica_note
from milmer.runtime.spec import DEAP_CHANNELS, EEGSpec, ICASpec

from .conftest import SFREQ, brain

NO_ICA = dataclasses.replace(EEGSpec(), ica=ICASpec(enabled=False))


def test_preprocess_eeg_returns_windows_and_a_typed_report():
    import mne

    data = brain(30.0)
    data[:, int(13.5 * SFREQ) : int(14.0 * SFREQ)] = np.nan
    data[DEAP_CHANNELS.index("O2")] = 0.05  # railed
    raw = mne.io.RawArray(data, mne.create_info(list(DEAP_CHANNELS), SFREQ, "eeg"), verbose="error")
    windows, report = preprocess_eeg(raw, NO_ICA, options=EEGInputOptions(interpolate_missing=True))
    assert isinstance(report, EEGReport) and report.n_windows == len(windows.starts) == 9
    assert [(n.code, n.severity) for n in report.all_notes()] == [
        ("nan-gap", "warning"), ("bad-channel", "flag"), ("gap-windows-dropped", "warning"), ("interpolated", "flag"),
    ]
    assert report.notes[1].data == {"channel": "O2", "kind": "railed"}
    assert report.channels.bad == {"O2": "railed"} and report.channels.interpolated == ("O2",)
    assert report.ica == ICAReport() and report.windows_dropped_gap == (12.0,)
    # The JSON form is EEGWindows.info: the same facts, notes with their codes.
    assert windows.info == report.to_dict()
    assert windows.info["note_codes"][0]["code"] == "nan-gap" and windows.info["channels"]["bad"] == {"O2": "railed"}


def test_every_code_has_a_severity_and_unknown_codes_are_refused():
    assert set(NOTE_CODES.values()) <= {"info", "warning", "flag"}
    with pytest.raises(AssertionError):
        EEGNote("no-such-code", "info", "text")
    unconverged = ica_note(ICAReport(method="picard", n_components=31, converged=False, eog_source="proxy Fp1/Fp2"))
    assert (unconverged.code, unconverged.severity) == ("ica-not-converged", "warning")
    assert ica_note(ICAReport(method="picard", n_components=31, converged=True)).severity == "info"

