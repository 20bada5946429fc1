"""Whether a model is the paper's size: the MODEL bench times decides, not the ``--tiny`` flag."""

from __future__ import annotations

import dataclasses

from milmer.benchmarks.model import not_paper_size
from milmer.benchmarks.summary import SPEED_TARGETS, speed_targets, tiny_reason
from milmer.runtime.spec import ModelSpec


def test_the_paper_size_spec_is_paper_size():
    assert not_paper_size(ModelSpec(provenance="benchmark")) == []
    assert not_paper_size(ModelSpec()) == []  # a trained paper-size model keeps the targets


def test_each_size_that_differs_is_named():
    spec = ModelSpec()
    small = spec.replace(graph=dataclasses.replace(spec.graph, token_dim=64, top_k=2))
    assert not_paper_size(small) == ["token_dim 64 (paper: 768)", "top_k 2 (paper: 3)"]
    fewer = spec.replace(face=dataclasses.replace(spec.face, frames_per_window=5, frame_size=112))
    assert not_paper_size(fewer) == ["frames_per_window 5 (paper: 10)", "frame_size 112 (paper: 224)"]


def test_the_demo_model_is_never_paper_size():
    """`milmer demo` trains the paper's architecture at toy size: its provenance says so."""
    assert not_paper_size(ModelSpec(provenance="demo")) == ["demo model"]


def test_a_tiny_model_skips_the_paper_size_targets_and_says_why(monkeypatch):
    """The rows of a result whose model is not the paper's size (as bench_command records it):
    only the model-independent target (ICA) is kept, and the reason names the sizes."""
    from milmer.benchmarks import summary

    rows = [{"target": text, "value": 1.0, "unit": "x", "threshold": limit, "met": True}
            for text, limit in SPEED_TARGETS.values()]  # fmt: skip
    monkeypatch.setattr(summary, "_speed_targets", lambda _: list(rows))
    result = {"model": {"tiny": True, "not_paper_size": ["token_dim 64 (paper: 768)"]}}
    assert [r["target"] for r in speed_targets(result)] == [SPEED_TARGETS["ica"][0]]
    assert len(speed_targets({"model": {"tiny": False}})) == len(SPEED_TARGETS)
    assert tiny_reason(result) == "TINY model (not the paper's size: token_dim 64 (paper: 768))"
    assert tiny_reason({"model": {"tiny": True}}) == "TINY model"  # results saved before the reason
