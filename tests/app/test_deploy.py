"""The deployment path as a Jetson user runs it: `milmer-infer` on the demo recording with the
default (ONNX BlazeFace) detector, in a process that never imports torch or mediapipe.

CI runs tests/runtime and tests/app in a torch-free Python 3.10 environment
(.ci/install_runtime310), where this test is the "fresh Python 3.10 venv, pip install .,
milmer-infer" check of deployment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("skimage", reason="the demo recording needs the demo extra")
pytest.importorskip("edfio", reason="the demo recording needs the demo extra")

RECORDING_S = 30


@pytest.fixture(scope="module")
def demo_recording(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo-data") / "d"
    from milmer.app.cli import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(
        app,
        ["demo-data", "--out", str(out), "--subjects", "1", "--trials", "4", "--trial-seconds", "3",
         "--recording-seconds", str(RECORDING_S)],
    )
    assert result.exit_code == 0, result.output
    return out / "recording"


def test_milmer_infer_predicts_every_window_without_torch_or_mediapipe(demo_recording, tiny_graphs, tmp_path):
    model = tiny_graphs.write_model_dir(tmp_path / "model", tiny_graphs.tiny_spec())
    out = tmp_path / "predictions.json"
    script = textwrap.dedent(
        f"""
        import sys
        from milmer.app.infer import main as infer_main
        rc = infer_main([{str(demo_recording / 'video.mp4')!r}, {str(demo_recording / 'eeg.edf')!r},
                         "--model", {str(model)!r}, "--out", {str(out)!r}, "--quiet"])
        heavy = sorted({{"torch", "mediapipe", "transformers"}} & {{m.split(".")[0] for m in sys.modules}})
        print("RC", rc, "HEAVY", heavy, "PY", sys.version_info[:2])
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "RC 0 HEAVY []" in run.stdout, (run.stdout, run.stderr[-2000:])
    doc = json.loads(out.read_text())
    windows = doc["windows"]
    # 30 s of EEG in 3 s windows, the face found by the ONNX detector in every window.
    assert len(windows) == RECORDING_S // 3
    assert all(w.get("label") in {"HAHV", "HALV", "LAHV", "LALV"} for w in windows), windows[0]
