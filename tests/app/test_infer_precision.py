"""milmer-infer's --precision: the one line saying what 'auto' took, and the bf16 refusal as the
command shows it (the rule itself is tested in tests/runtime/test_precision.py)."""

from __future__ import annotations

import importlib.util

import pytest

from milmer.app.infer import run_infer_cli
from milmer.runtime.backends.openvino import OpenVinoRunner, cpu_flags, has_bf16
from milmer.runtime.check import MilmerInputError

OV_HERE = importlib.util.find_spec("openvino") is not None and (
    OpenVinoRunner.unavailable_reason("x.onnx", device="cpu", precision="fp32") is None
)
needs_ov = pytest.mark.skipif(not OV_HERE, reason="OpenVINO is not installed or this is not an x86 CPU")


@needs_ov
def test_milmer_infer_says_which_precision_auto_took(tiny_model, recording, monkeypatch, tmp_path, capsys):
    """The default --precision auto: one line saying bf16 (on a bfloat16 CPU) and why; an explicit
    --precision fp32 says nothing about precision; bf16 with --backend ort is refused (exit 2 text)."""
    monkeypatch.setenv("MILMER_HOME", str(tmp_path))
    video, eeg = recording
    run_infer_cli(video=video, eeg=eeg, model=tiny_model, device="cpu", quiet=False)
    captured = capsys.readouterr()
    err, out = captured.err.replace("\n", ""), " ".join(captured.out.replace("│", " ").split())
    if has_bf16(cpu_flags()):
        assert "Precision bf16 (auto: CPU has " in err and "--precision fp32 to turn off." in err
        assert "Checking bf16 against fp32 on 8 bags" in err
        assert "bf16 (fp32 graphs), batch 1" in out  # the summary says what the products ran in
    else:
        assert "Precision" not in err and "fp32, batch 1" in out
    run_infer_cli(video=video, eeg=eeg, model=tiny_model, device="cpu", precision="fp32")
    assert "Precision" not in capsys.readouterr().err
    with pytest.raises(MilmerInputError, match=r"got --backend ort \(no bfloat16 path\)"):
        run_infer_cli(video=video, eeg=eeg, model=tiny_model, backend="ort", precision="bf16")
