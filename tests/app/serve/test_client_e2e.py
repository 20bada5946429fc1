"""End to end against a real server: ``milmer-infer --server`` writes what local scoring writes, and
``milmer score-study`` scores a manifest concurrently, resumably, reporting failures per recording."""

from __future__ import annotations

import json

import numpy as np
import pytest

from milmer.app.cli import main
from milmer.app.infer import main as infer_main


def _windows(path):
    return json.loads(path.read_text())["windows"]


def _assert_same_predictions(got: list[dict], want: list[dict]) -> None:
    assert [w["index"] for w in got] == [w["index"] for w in want]
    for g, w in zip(got, want):
        assert g["label"] == w["label"]
        assert g["selected"] == w["selected"]
        assert g["faces_found"] == w["faces_found"]
        for key in ("probabilities", "mil_weights"):
            a, b = g[key], w[key]
            a = np.array(list(a.values()) if isinstance(a, dict) else a, float)
            b = np.array(list(b.values()) if isinstance(b, dict) else b, float)
            # the files round to 6 decimals; the scores themselves agree to 1e-6 (test_server.py)
            np.testing.assert_allclose(a, b, rtol=0, atol=1.5e-6, err_msg=key)


@pytest.fixture(scope="module")
def local_json(haar_model, recording, tmp_path_factory):
    """Local scoring of the test recording (``milmer-infer --model``), the reference."""
    video, eeg = recording
    out = tmp_path_factory.mktemp("local") / "local.json"
    assert infer_main([str(video), str(eeg), "--model", str(haar_model), "--backend", "ort", "--out", str(out), "--quiet"]) == 0
    return out


def test_infer_with_server_writes_the_local_predictions(server, local_json, recording, tmp_path):
    video, eeg = recording
    local, remote = local_json, tmp_path / "remote.json"
    assert infer_main([str(video), str(eeg), "--server", server.url, "--out", str(remote), "--quiet"]) == 0
    got, want = _windows(remote), _windows(local)
    assert len(want) == 4  # 12 s of EEG in 3 s windows
    _assert_same_predictions(got, want)
    doc = json.loads(remote.read_text())
    assert doc["model"]["dir"] == server.url
    assert doc["settings"]["server"] == server.url


def _csv_windows(path):
    import csv

    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_score_study_is_concurrent_resumable_and_reports_failures(server, local_json, recording, tmp_path, capsys):
    video, eeg = recording
    manifest = tmp_path / "study.csv"
    # Saved as "CSV UTF-8" by a spreadsheet: a byte-order mark before 'id'. A recording may be
    # called 'failures': its result must not collide with the failure list.
    manifest.write_text(
        "\ufeffid,video,eeg,offset,baseline\n"
        f"failures,{video},{eeg},0,0\n"
        f"rec-b,{video},{eeg},0.0,3\n"
        f"rec-missing,{video},{tmp_path / 'nope.edf'},0,0\n",
        encoding="utf-8",
    )
    out = tmp_path / "results"
    reference = _windows(local_json)
    study = ["score-study", str(manifest), "--server", server.url, "--out", str(out), "--format", "csv"]

    code = main([*study, "--workers", "2"])
    err = capsys.readouterr()
    assert code == 1
    # stdout is the summary only: no MNE log lines from the worker threads
    assert err.out.splitlines() == [f"Scored 2, skipped 0 already scored, failed 1; results in {out}"]
    assert "Failed rec-missing: Invalid value for 'eeg'" in err.err
    assert sorted(p.name for p in out.iterdir()) == ["_failures.csv", "failures.csv", "rec-b.csv"]
    assert (out / "_failures.csv").read_text().splitlines()[1].startswith("rec-missing,Invalid value for 'eeg'")
    got = _csv_windows(out / "failures.csv")
    assert len(got) == len(reference) == 4
    assert [row["label"] for row in got] == [w["label"] for w in reference]
    assert len(_csv_windows(out / "rec-b.csv")) == 3  # the 3 s baseline drops one window

    # Resumable: done recordings are skipped ('failures' among them); the failed one is tried again.
    before = (out / "failures.csv").stat().st_mtime_ns
    code = main(study)
    assert code == 1
    assert "Scored 0, skipped 2 already scored, failed 1" in capsys.readouterr().out
    assert (out / "failures.csv").stat().st_mtime_ns == before

    # Once the manifest is fixed, the run completes and the failure list is gone.
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(str(tmp_path / "nope.edf"), str(eeg)), encoding="utf-8")
    assert main(study) == 0
    assert "Scored 1, skipped 2 already scored, failed 0" in capsys.readouterr().out
    assert not (out / "_failures.csv").exists()
    assert (out / "failures.csv").stat().st_mtime_ns == before


def test_a_full_disk_is_named_and_the_summary_kept(server, recording, tmp_path, capsys, monkeypatch):
    import errno

    import milmer.runtime.report as report
    import milmer.runtime.serve.study as study

    def no_space(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(report, "write_predictions", lambda result, out: no_space(out))
    monkeypatch.setattr(study, "write_text_atomic", lambda path, text: no_space(path))
    video, eeg = recording
    manifest = tmp_path / "study.csv"
    manifest.write_text(f"id,video,eeg\nrec-a,{video},{eeg}\n")
    out = tmp_path / "results"
    code = main(["score-study", str(manifest), "--server", server.url, "--out", str(out)])
    err = capsys.readouterr()
    assert code == 1
    assert "Scored 0, skipped 0 already scored, failed 1" in err.out
    assert f"Failed rec-a: no space left on device writing {out / 'rec-a.json'}" in err.err
    assert f"Error: could not write {out / '_failures.csv'}: no space left on device writing {out / '_failures.csv'}." in err.err
    assert "bug in milmer" not in err.err
