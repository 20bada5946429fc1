"""TensorRT engine cache (pure Python): keys, metadata files, fit checks, lookup, profiles."""

from __future__ import annotations

import dataclasses

import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.backends.trt_cache import (
    EngineMeta,
    EngineTarget,
    check_engine_meta,
    check_in_profile,
    engine_key,
    engine_paths,
    file_sha256,
    find_engine,
    matching_engines,
    read_meta,
    write_meta,
)

PROFILE = {"frames": ((1, 3, 224, 224), (10, 3, 224, 224), (40, 3, 224, 224))}
KEY_FIELDS = dict(
    onnx_sha256="ab" * 32,
    tensorrt_version="10.3.0",
    gpu_name="NVIDIA GeForce RTX 4090",
    compute_capability="8.9",
    precision="fp16",
    profile=PROFILE,
)


def make_meta(**changes) -> EngineMeta:
    return EngineMeta(onnx_name="swin.onnx", **{**KEY_FIELDS, **changes})


def target_for(meta: EngineMeta, **changes) -> EngineTarget:
    fields = {
        n: getattr(meta, n)
        for n in ("tensorrt_version", "gpu_name", "compute_capability", "precision", "onnx_sha256")
    }
    return EngineTarget(**{**fields, **changes})


def add_engine(cache, meta: EngineMeta, payload: bytes = b"engine") -> None:
    engine_path, _ = engine_paths(cache, meta.key)
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    engine_path.write_bytes(payload)
    write_meta(meta, cache)


def test_file_sha256(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert (
        file_sha256(path, chunk_bytes=2) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_engine_key_is_pinned_and_order_free():
    # Engines on disk are named by this key: changing its canonical form orphans every cache.
    key = engine_key(**KEY_FIELDS)
    assert key == engine_key(**KEY_FIELDS)
    assert key == "3fbae036ca42734dde0a7131efd426a5fff0230390a15eac9dfd2b1a2c76fe1b"
    two = {"b": ((1, 2), (1, 2), (1, 2)), "a": ((1,), (2,), (3,))}
    assert engine_key(**{**KEY_FIELDS, "profile": two}) == engine_key(
        **{**KEY_FIELDS, "profile": dict(reversed(two.items()))}
    )
    # JSON lists (as read back from disk) give the same key as tuples.
    as_lists = {k: [list(s) for s in v] for k, v in PROFILE.items()}
    assert engine_key(**{**KEY_FIELDS, "profile": as_lists}) == key


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("onnx_sha256", "cd" * 32),
        ("tensorrt_version", "10.5.0"),
        ("gpu_name", "Orin"),
        ("compute_capability", "8.7"),
        ("precision", "fp32"),
        ("profile", {"frames": ((1, 3, 224, 224), (10, 3, 224, 224), (80, 3, 224, 224))}),
        ("profile", {"frames": ((1, 3, 224, 224), (20, 3, 224, 224), (40, 3, 224, 224))}),
        ("profile", {"frames": ((2, 3, 224, 224), (10, 3, 224, 224), (40, 3, 224, 224))}),
    ],
)
def test_engine_key_changes_with_each_field(field, value):
    assert engine_key(**{**KEY_FIELDS, field: value}) != engine_key(**KEY_FIELDS)


def test_meta_round_trip_and_paths(tmp_path):
    meta = make_meta(extra={"builder": "test"})
    assert meta.key == engine_key(**KEY_FIELDS)  # extra is not part of the key
    meta_path = write_meta(meta, tmp_path / "cache")
    assert (tmp_path / "cache" / f"{meta.key}.engine", meta_path) == engine_paths(
        tmp_path / "cache", meta.key
    )
    assert meta_path.name == f"{meta.key}.json"
    assert read_meta(meta_path) == meta
    assert read_meta(meta_path.with_suffix(".engine")) == meta  # the engine's path finds its .json
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_bad_meta_files(tmp_path):
    with pytest.raises(
        MilmerInputError, match=r"metadata file not found: '.*x\.json'.*rebuild with: milmer export"
    ):
        read_meta(tmp_path / "x.engine")
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(MilmerInputError, match=r"Invalid engine metadata: not valid JSON .*a\.json"):
        read_meta(tmp_path / "a.json")
    (tmp_path / "b.json").write_text('{"onnx_sha256": "x", "colour": "red"}')
    with pytest.raises(
        MilmerInputError,
        match=r"Invalid engine metadata: unknown key\(s\) colour; expected some of onnx_name, onnx_sha256, .*b\.json",
    ):
        read_meta(tmp_path / "b.json")
    (tmp_path / "c.json").write_text('{"onnx_sha256": "x"}')
    with pytest.raises(
        MilmerInputError,
        match=r"Invalid engine metadata: missing required key\(s\) compute_capability, gpu_name, onnx_name, precision, profile, tensorrt_version",
    ):
        read_meta(tmp_path / "c.json")
    with pytest.raises(
        MilmerInputError,
        match=r"'profile\['frames'\]': expected shapes of one rank with 0 < min <= opt <= max",
    ):
        make_meta(profile={"frames": ((4, 3), (2, 3), (8, 3))})
    with pytest.raises(
        MilmerInputError,
        match=r"Invalid value for 'precision': expected one of 'fp32', 'fp16', 'int8', got 'tf32'",
    ):
        make_meta(precision="tf32")


def test_check_engine_meta_names_the_differing_fields():
    meta = make_meta()
    check_engine_meta(meta, target_for(meta))  # fits: no error
    here = target_for(meta, tensorrt_version="10.5.0", gpu_name="Orin", compute_capability="8.7")
    with pytest.raises(MilmerInputError) as info:
        check_engine_meta(meta, here, engine="engine 'abc.engine'")
    message = str(info.value)
    assert message.startswith(
        "TensorRT engine 'abc.engine' does not fit (differs in tensorrt_version, gpu_name, compute_capability: "
        "tensorrt_version '10.3.0' vs '10.5.0'; gpu_name 'NVIDIA GeForce RTX 4090' vs 'Orin'; "
        "compute_capability '8.9' vs '8.7'): "
    )
    assert (
        "engine was built for TensorRT 10.3.0 on 'NVIDIA GeForce RTX 4090' (sm_89), fp16 from swin.onnx (abababababab); "
        "this machine has TensorRT 10.5.0 on 'Orin' (sm_87) and wants fp16 from swin.onnx (abababababab); "
        "rebuild with: milmer export CKPT --out DIR --trt --fp16."
    ) in message


def test_check_engine_meta_precision_and_graph():
    meta = make_meta()
    with pytest.raises(MilmerInputError, match=r"differs in precision: precision 'fp16' vs 'fp32'\)"):
        check_engine_meta(meta, target_for(meta, precision="fp32"))
    with pytest.raises(MilmerInputError, match=r"differs in onnx_sha256: onnx_sha256 'abab.*' vs 'cdcd.*'\)"):
        check_engine_meta(meta, target_for(meta, onnx_sha256="cd" * 32))
    check_engine_meta(meta, target_for(meta, onnx_sha256=None))  # an engine given directly: graph not checked


def test_find_engine(tmp_path):
    cache = tmp_path / "engines"
    meta = make_meta()
    with pytest.raises(
        MilmerInputError,
        match=r"No TensorRT engine in '.*engines'; build one on this machine \(TensorRT 10\.3\.0 on 'NVIDIA GeForce RTX 4090' \(sm_89\)\)",
    ):
        find_engine(cache, target_for(meta))
    add_engine(cache, meta)
    assert find_engine(cache, target_for(meta)) == (cache / f"{meta.key}.engine", meta)
    bigger = make_meta(profile={"frames": ((1, 3, 224, 224), (10, 3, 224, 224), (80, 3, 224, 224))})
    add_engine(cache, bigger)
    assert [m for _, m in matching_engines(cache, target_for(meta))] == [
        bigger,
        meta,
    ]  # larger max batch first
    # A .json without its engine (an interrupted build) is ignored.
    write_meta(make_meta(precision="fp32"), cache)
    with pytest.raises(MilmerInputError, match=r"differs in precision: precision 'fp16' vs 'fp32'"):
        find_engine(cache, target_for(meta, precision="fp32"))


def test_find_engine_explains_the_closest_mismatch(tmp_path):
    cache = tmp_path / "engines"
    meta = make_meta()
    add_engine(cache, meta)
    add_engine(cache, make_meta(gpu_name="Orin", compute_capability="8.7", tensorrt_version="10.5.0"))
    here = target_for(meta, gpu_name="Orin", compute_capability="8.7")
    # Closest: the Orin engine (differs only in TensorRT version), not the 4090 one.
    with pytest.raises(
        MilmerInputError, match=r"differs in tensorrt_version: tensorrt_version '10\.5\.0' vs '10\.3\.0'\)"
    ):
        find_engine(cache, here)


def test_check_in_profile():
    check_in_profile("frames", (1, 3, 224, 224), PROFILE)
    check_in_profile("frames", (40, 3, 224, 224), PROFILE)
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid input 'frames': shape \(41, 3, 224, 224\) is outside the engine's optimisation profile \(min \(1, 3, 224, 224\), max \(40, 3, 224, 224\)\)",
    ):
        check_in_profile("frames", (41, 3, 224, 224), PROFILE)
    with pytest.raises(MilmerInputError, match=r"outside"):
        check_in_profile("frames", (2, 3, 224), PROFILE)
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid input 'eeg': the engine's optimisation profile covers only 'frames'\.$",
    ):
        check_in_profile("eeg", (1, 32, 384), PROFILE)


def test_meta_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_meta().precision = "fp32"
