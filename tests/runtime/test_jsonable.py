"""The one JSON <-> frozen-dataclass helper behind the spec, the model and training configs and
the TensorRT engine metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import MappingProxyType

import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.jsonable import JsonDataclass, to_plain


@dataclass(frozen=True)
class Inner(JsonDataclass):
    _json_what = "test doc"
    _json_legacy = {"added": "old"}

    size: int = 3
    added: str = "new"

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise MilmerInputError(f"Invalid value for 'inner.size': expected > 0, got {self.size!r}.")


@dataclass(frozen=True)
class Outer(JsonDataclass):
    _json_what = "test doc"
    _json_nested = {"inner": Inner}
    _json_required = ("name",)

    name: str = "x"
    names: tuple[str, ...] = ("a", "b")
    inner: Inner = field(default_factory=Inner)
    extra: dict[str, tuple[int, ...]] = field(default_factory=dict)


def test_round_trip_is_exact_and_canonical(tmp_path):
    doc = Outer(name="n", names=("c",), inner=Inner(size=5), extra={"k": (1, 2)})
    assert doc.to_dict() == {"name": "n", "names": ["c"], "inner": {"size": 5, "added": "new"}, "extra": {"k": [1, 2]}}
    assert list(json.loads(doc.to_json())) == ["extra", "inner", "name", "names"]  # sorted keys
    back = Outer.from_json(doc.to_json())
    assert back.names == ("c",) and back.inner == Inner(size=5)
    path = doc.save(tmp_path / "doc.json")
    assert path.read_text().endswith("}\n") and Outer.load(path).to_dict() == doc.to_dict()
    assert to_plain(MappingProxyType({1: (2,)})) == {"1": [2]}


def test_keys_are_checked_with_the_section_named():
    with pytest.raises(MilmerInputError, match=r"^Invalid test doc: unknown key\(s\) inner.colour; expected inner.size, inner.added\.$"):
        Outer.from_dict({"name": "n", "inner": {"size": 1, "added": "a", "colour": 1}})
    with pytest.raises(MilmerInputError, match=r"^Invalid test doc: missing required key\(s\) name\.$"):
        Outer.from_dict({"names": []})
    with pytest.raises(MilmerInputError, match=r"^Invalid test doc: 'inner' must be an object, got list\.$"):
        Outer.from_dict({"name": "n", "inner": [1]})
    with pytest.raises(MilmerInputError, match=r"^Invalid test doc: expected a JSON object, got list\.$"):
        Outer.from_dict([])
    with pytest.raises(MilmerInputError, match=r"^Invalid test doc: not valid JSON"):
        Outer.from_json("{nope")
    with pytest.raises(MilmerInputError, match=r"'inner.size': expected > 0, got 0"):  # the dataclass validates values
        Outer.from_dict({"name": "n", "inner": {"size": 0, "added": "a"}})
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'config': file not found"):
        Outer.load("/nonexistent/doc.json")


def test_legacy_keys_take_what_old_documents_meant():
    """A section written before a field existed gets the legacy value, not today's default."""
    assert Outer.from_dict({"name": "n", "inner": {"size": 2}}).inner.added == "old"
    assert Inner().added == "new"


def test_every_runtime_config_uses_it():
    """(The training configs: tests/training/test_train_config.py.)"""
    from milmer.runtime.backends.trt_cache import EngineMeta
    from milmer.runtime.spec import EEGSpec, FaceSpec, GraphSpec, ICASpec, ModelSpec

    for cls in (ModelSpec, EEGSpec, ICASpec, FaceSpec, GraphSpec, EngineMeta):
        assert issubclass(cls, JsonDataclass)
        assert "to_dict" not in vars(cls) and "to_json" not in vars(cls), cls
