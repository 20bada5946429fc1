"""The whole deployed pipeline on the exported model vs the PyTorch model on the same windows."""

from __future__ import annotations

import numpy as np
import torch

from milmer.synthetic.recording_writer import write_recording
from milmer.runtime.face.crop import normalize
from milmer.runtime.pipeline import Pipeline
from milmer.runtime.preprocess import preprocess_recording


def test_pipeline_probabilities_match_pytorch_on_the_demo_recording(exported, tiny_model, tmp_path):
    _, paths = write_recording(tmp_path / "recording", duration_s=6, fps=25, seed=0)
    with Pipeline(exported, backend="ort", device="cpu") as pipeline:
        result = pipeline.predict(paths["video"], paths["eeg"])
    assert [w.index for w in result.windows] == [0, 1]

    model, spec = tiny_model
    windows = preprocess_recording(paths["video"], paths["eeg"], spec)  # the same preprocessing path
    assert windows.faces.found.all()
    frames = torch.from_numpy(normalize(windows.faces.frames, spec.face.mean, spec.face.std))  # (W, F, 3, S, S)
    with torch.no_grad():
        logits, weights, selected = model(torch.from_numpy(windows.eeg.data), frames)
    expected = torch.softmax(logits, -1).numpy()
    got = np.stack([w.probabilities for w in result.windows])
    assert np.abs(got - expected).max() < 1e-4
    np.testing.assert_allclose(np.stack([w.mil_weights for w in result.windows]), weights.numpy(), atol=1e-4)
    np.testing.assert_array_equal(np.stack([w.selected for w in result.windows]), selected.numpy())
