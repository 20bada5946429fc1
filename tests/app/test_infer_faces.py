"""`milmer-infer --faces FILE.png`: the crops the model saw, MIL-selected frames marked; windows
without a face reported as not predicted."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from milmer.app.infer import main as infer_main

from .conftest import write_edf, write_video

S = 224
GAP, HEADER, CAPTION = 4, 16, 14


def test_infer_draws_faces_with_the_selected_frames(capsys, tiny_graphs, tmp_path: Path) -> None:
    import cv2

    spec = tiny_graphs.tiny_spec()
    spec = spec.replace(face=dataclasses.replace(spec.face, detector="opencv-haar"))
    model = tiny_graphs.write_model_dir(tmp_path / "model", spec)
    # 9 s: the face is gone from 3.0 to 6.0 s, so window 1 has no face at all.
    video = write_video(tmp_path / "v.avi", 9.0, blank=lambda k: 60 <= k < 120)
    eeg = write_edf(tmp_path / "eeg.edf", 9.0)
    out, png = tmp_path / "p.json", tmp_path / "faces.png"
    code = infer_main([str(a) for a in [video, eeg, "--model", model, "--out", out, "--faces", png, "--quiet"]])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Warning: 1 of 3 windows have no face (none found in 10 of 30 frames)" in captured.err
    doc = json.loads(out.read_text())
    assert [w["predicted"] for w in doc["windows"]] == [True, False, True]
    assert [w["faces_found"] for w in doc["windows"]] == [10, 0, 10]
    assert doc["windows"][1]["label"] is None and doc["windows"][1]["selected"] == []
    img = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
    assert img.shape == (3 * (HEADER + S + CAPTION + GAP) + GAP, 10 * (S + GAP) + GAP, 3)
    gold = (img[..., 0] == 255) & (img[..., 1] == 215) & (img[..., 2] == 0)
    for r, w in enumerate(doc["windows"]):
        y = GAP + r * (HEADER + S + CAPTION + GAP) + HEADER
        marked = [c for c in range(10) if gold[y, GAP + c * (S + GAP) + S // 2]]
        assert marked == sorted(w["selected"])
    assert "Wrote the face crops of 3 windows" in captured.out.replace("\n", "")
    # Asked for, the faceless window is predicted too.
    forced = tmp_path / "forced.json"
    argv = [video, eeg, "--model", model, "--out", forced, "--quiet", "--predict-without-face"]
    assert infer_main([str(a) for a in argv]) == 0
    doc = json.loads(forced.read_text())
    assert [w["predicted"] for w in doc["windows"]] == [True, True, True]
    assert doc["windows"][1]["label"] in spec.class_names and doc["settings"]["predict_without_face"] is True
