"""Windows without a face get no emotion prediction, and the JSON and CSV say so (the terminal table:
tests/app/test_render.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from milmer.runtime import report
from milmer.runtime.face.extract import FRAME_NO_FACE, FaceWindow
from milmer.runtime.pipeline import Pipeline
from milmer.runtime.results import PredictionResult, RunStats
from milmer.runtime.windows import EEGWindows


def _stream(spec, faceless: set[int], n: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    f, s = spec.face.frames_per_window, spec.face.frame_size
    eeg = EEGWindows(
        data=rng.standard_normal((n, spec.eeg.n_channels, spec.eeg.window_samples)).astype(np.float32),
        starts=np.arange(n) * spec.eeg.window_s,
    )
    crops = rng.integers(0, 256, (n, f, s, s, 3), dtype=np.uint8)

    def faces():
        for i in range(n):
            found = np.full(f, i not in faceless)
            flags = np.where(found, 0, FRAME_NO_FACE).astype(np.uint8)
            yield FaceWindow(i, crops[i], found, spec.eeg.window_s * i + np.arange(f) * 0.3, flags)

    return eeg, faces


def test_faceless_windows_are_not_scored(tiny_model) -> None:
    with Pipeline(tiny_model, batch=2, intra_op_threads=1) as pipe:
        eeg, faces = _stream(pipe.spec, faceless={1, 2})
        stats = RunStats()
        preds = list(pipe.run_windows(eeg, faces(), stats=stats))
        forced = list(pipe.run_windows(eeg, faces(), predict_without_face=True))
        reference = pipe.score_bags(eeg.data, np.stack([w.crops for w in faces()]))
    assert [p.index for p in preds] == [0, 1, 2, 3, 4]  # in order, none left out
    assert [p.predicted for p in preds] == [True, False, False, True, True]
    assert [p.label for p in preds][1:3] == [None, None] and preds[1].class_index == -1
    assert np.isnan(preds[1].probabilities).all() and preds[1].selected.size == 0
    np.testing.assert_array_equal(preds[1].frame_flags, [FRAME_NO_FACE] * 10)
    # The quality column says why: 'no-face' on the unscored windows, nothing on the others.
    assert [p.flags for p in preds] == [(), ("no-face",), ("no-face",), (), ()]
    # Three windows scored, in batches of two: (0, 3) and (4); the faceless ones took no slot.
    assert (stats.n_batches, stats.max_batch, stats.n_windows) == (2, 2, 5)
    for k in (0, 3, 4):
        np.testing.assert_allclose(preds[k].probabilities, reference["probabilities"][k], rtol=1e-5, atol=1e-6)
    # Asked for, faceless windows are scored like the others.
    assert all(p.predicted for p in forced)
    np.testing.assert_allclose(forced[1].probabilities, reference["probabilities"][1], rtol=1e-5, atol=1e-6)


def test_outputs_report_no_prediction(tiny_model, tmp_path: Path) -> None:
    with Pipeline(tiny_model, batch=2, intra_op_threads=1) as pipe:
        eeg, faces = _stream(pipe.spec, faceless={1})
        stats = RunStats()
        preds = list(pipe.run_windows(eeg, faces(), stats=stats))
        result = PredictionResult(windows=preds, spec=pipe.spec, model_dir=tiny_model, settings={}, stats=stats)
    doc = report.result_to_dict(result)
    w1 = doc["windows"][1]
    assert (w1["label"], w1["predicted"], w1["window_has_face"], w1["selected"]) == (None, False, False, [])
    assert set(w1["probabilities"].values()) == {None} and w1["frame_flags"] == [1] * 10
    assert (w1["quality"], doc["windows"][0]["quality"]) == (["no-face"], [])
    assert doc["summary"]["windows_without_prediction"] == 1
    assert sum(doc["summary"]["class_counts"].values()) == 4
    json.loads(json.dumps(doc, allow_nan=False))  # no NaN leaks into the JSON
    path = report.write_csv(result, tmp_path / "p.csv")
    rows = list(csv.reader(path.open()))
    assert rows[2][2] == report.NO_FACE_LABEL and rows[2][3:7] == ["", "", "", ""] and rows[2][8] == ""
    assert rows[0][-4:] == ["quality", "demo_model", "video_start", "alignment"]
    assert (rows[1][-4], rows[2][-4]) == ("", "no-face")
    assert rows[1][2] in pipe.spec.class_names and float(rows[1][3]) > 0
