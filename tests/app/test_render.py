"""Terminal rendering: EEG notes are styled by their severity."""

from __future__ import annotations

from milmer.runtime.eeg.report import EEGNote


def test_summary_markup_follows_the_severity_not_the_words():
    from milmer.app.render import eeg_note_markup

    assert eeg_note_markup(EEGNote.of("clipping", "clipping in Fp1")) == "[yellow]clipping in Fp1[/yellow]"
    # An info note that happens to contain the old trigger words stays plain.
    assert eeg_note_markup(EEGNote.of("line-noise", "did NOT converge [sic]")) == "did NOT converge \\[sic]"
