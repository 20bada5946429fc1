"""Where a model came from: the spec's provenance, or, for a spec written before it existed, the
demo-model record and the benchmark marker file as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from milmer.runtime.demo_model import BENCH_MODEL_MARKER, ModelProvenance, model_provenance, record_demo_model
from milmer.runtime.spec import ModelSpec


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MILMER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _folder(path: Path, marker: bool = False) -> Path:
    path.mkdir()
    if marker:
        (path / BENCH_MODEL_MARKER).write_text('{"tiny": true, "seed": 0}\n')
    return path


@pytest.mark.parametrize("kind", ["trained", "demo", "benchmark"])
def test_the_spec_decides_whatever_the_side_files_say(kind, tmp_path):
    """A spec that states its provenance wins over the demo record and the marker file."""
    model = _folder(tmp_path / "m", marker=True)
    record_demo_model(model)
    assert model_provenance(ModelSpec(provenance=kind), model) == ModelProvenance(kind, "spec")
    assert model_provenance(ModelSpec(provenance=kind), None) == ModelProvenance(kind, "spec")


def test_a_spec_without_provenance_is_inferred_as_before(tmp_path):
    legacy = ModelSpec(provenance=None)
    demo, bench, other = _folder(tmp_path / "demo"), _folder(tmp_path / "bench", marker=True), _folder(tmp_path / "o")
    assert model_provenance(legacy, demo) == ModelProvenance("trained", "inferred")  # nothing recorded yet
    record_demo_model(demo)
    assert model_provenance(legacy, demo) == ModelProvenance("demo", "inferred")
    assert model_provenance(legacy, bench) == ModelProvenance("benchmark", "inferred")
    assert model_provenance(legacy, other) == ModelProvenance("trained", "inferred")
    assert model_provenance(legacy, None) == ModelProvenance("trained", "inferred")


def test_describe_says_when_it_was_inferred():
    assert ModelProvenance("demo", "spec").describe() == "demo"
    assert ModelProvenance("benchmark", "inferred").describe() == "benchmark (inferred: the spec predates provenance)"
    assert (ModelProvenance("demo", "spec").demo, ModelProvenance("benchmark", "spec").benchmark) == (True, True)
