"""Model directory loader: a good directory loads; disagreeing or missing pieces are named."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.model_dir import (
    GraphInfo,
    ModelBundle,
    available_precisions,
    load_model_dir,
    read_graph_info,
)


def _tiny():
    name = "milmer_tests_tiny_graphs"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).parent / "backends" / "tiny_graphs.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


tiny = _tiny()


@pytest.fixture(scope="module")
def spec():
    return tiny.tiny_spec()


def with_face(spec, **changes):
    return spec.replace(face=dataclasses.replace(spec.face, **changes))


def test_good_dir_loads(tmp_path, spec):
    out = tiny.write_model_dir(tmp_path / "m", spec, precisions=("fp32", "fp16"))
    bundle = load_model_dir(out)
    assert bundle == ModelBundle(
        spec=spec, swin_path=out / "swin.onnx", fusion_path=out / "fusion.onnx", dir=out, precision="fp32"
    )
    assert bundle.engine_dir == out / "engines"
    fp16 = load_model_dir(out, precision="fp16")
    assert (fp16.swin_path.name, fp16.fusion_path.name, fp16.precision) == (
        "swin.fp16.onnx",
        "fusion.fp16.onnx",
        "fp16",
    )
    assert available_precisions(out) == ("fp32", "fp16")


def test_spec_json_disagreeing_with_graphs(tmp_path, spec):
    out = tiny.write_model_dir(tmp_path / "m", spec)
    with_face(spec, frame_size=192).save(out / "spec.json")
    with pytest.raises(
        MilmerInputError,
        match=r"^spec mismatch between swin\.onnx and spec\.json: face\.frame_size 224 vs 192\.$",
    ):
        load_model_dir(out)


def test_one_graph_exported_with_another_spec(tmp_path, spec):
    other = with_face(spec, box_expand=0.2).replace(label_scheme="deap2-valence", class_names=("low", "high"))
    out = tiny.write_model_dir(tmp_path / "m", spec, fusion_spec_json=other.to_json())
    with pytest.raises(
        MilmerInputError,
        match=r"^spec mismatch between fusion\.onnx and spec\.json: class_names \['low', 'high'\] vs \['HAHV', 'HALV', 'LAHV', 'LALV'\]; "
        r"face\.box_expand 0\.2 vs 0\.1; label_scheme 'deap2-valence' vs 'deap4'\.$",
    ):
        load_model_dir(out)


def test_graph_without_spec_metadata(tmp_path, spec):
    out = tiny.write_model_dir(tmp_path / "m", spec, swin_spec_json=None)
    with pytest.raises(MilmerInputError, match=r"swin\.onnx carries no 'milmer\.spec' metadata"):
        load_model_dir(out)


def test_graph_io_disagreeing_with_spec(tmp_path, spec):
    out = tiny.write_model_dir(tmp_path / "m", spec, swin_frame_size=112)
    with pytest.raises(
        MilmerInputError,
        match=r"^graph I/O mismatch between swin\.onnx and spec\.json: input 'frames' axis 2 is 112, face\.frame_size is 224; "
        r"input 'frames' axis 3 is 112, face\.frame_size is 224\.$",
    ):
        load_model_dir(out)
    out = tiny.write_model_dir(tmp_path / "k", spec, fusion_top_k=2)
    with pytest.raises(
        MilmerInputError,
        match=r"^graph I/O mismatch between fusion\.onnx and spec\.json: output 'selected' axis 1 is 2, graph\.top_k is 3\.$",
    ):
        load_model_dir(out)


def test_graph_io_names_disagreeing_with_spec(tmp_path, spec):
    out = tiny.write_model_dir(tmp_path / "m", spec)
    renamed = spec.replace(graph=dataclasses.replace(spec.graph, backbone_input="images"))
    # Rewrite spec.json and both graphs' metadata with the renamed spec, keep the graphs' I/O.
    renamed.save(out / "spec.json")
    for name in ("swin.onnx", "fusion.onnx"):
        model = onnx.load(str(out / name))
        del model.metadata_props[:]
        onnx.helper.set_model_props(model, {"milmer.spec": renamed.to_json()})
        onnx.save(model, str(out / name))
    with pytest.raises(
        MilmerInputError,
        match=r"^graph I/O mismatch between swin\.onnx and spec\.json: input names \['frames'\] vs \['images'\]\.$",
    ):
        load_model_dir(out)


def test_missing_files(tmp_path, spec):
    out = tiny.write_model_dir(tmp_path / "m", spec)
    (out / "fusion.onnx").unlink()
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid model directory '.*m': missing fusion\.onnx; a model directory holds spec\.json, swin\.onnx and fusion\.onnx "
        r"\(optionally swin\.fp16\.onnx/fusion\.fp16\.onnx, swin\.int8\.onnx/fusion\.int8\.onnx and an engines/ folder\); "
        r"make one with: milmer export CKPT --out DIR, or `milmer demo` for a demo model\.$",
    ):
        load_model_dir(out)
    (out / "spec.json").unlink()
    with pytest.raises(MilmerInputError, match=r"missing spec\.json, fusion\.onnx; a model directory holds"):
        load_model_dir(out)
    with pytest.raises(MilmerInputError, match=r"directory not found: '.*nowhere'; a model directory holds"):
        load_model_dir(tmp_path / "nowhere")


def test_missing_precision_variant_lists_available(tmp_path, spec):
    out = tiny.write_model_dir(tmp_path / "m", spec, precisions=("fp32", "fp16"))
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid value for 'precision': expected one of the precisions exported to '.*m' \('fp32', 'fp16'\), "
        r"got 'int8'; 'int8' needs swin\.int8\.onnx, fusion\.int8\.onnx; export it with: milmer export CKPT --out DIR --int8 static\.$",
    ):
        load_model_dir(out, precision="int8")
    (out / "fusion.fp16.onnx").unlink()
    with pytest.raises(
        MilmerInputError, match=r"exported to .* \('fp32'\), got 'fp16'; 'fp16' needs fusion\.fp16\.onnx;"
    ):
        load_model_dir(out, precision="fp16")
    with pytest.raises(
        MilmerInputError,
        match=r"Invalid value for 'precision': expected one of 'fp32', 'fp16', 'int8', got 'fp8'",
    ):
        load_model_dir(out, precision="fp8")


def test_only_a_variant_present(tmp_path, spec):
    out = tiny.write_model_dir(tmp_path / "m", spec, precisions=("fp16",))
    assert load_model_dir(out, precision="fp16").swin_path == out / "swin.fp16.onnx"
    with pytest.raises(
        MilmerInputError,
        match=r"exported to .* \('fp16'\), got 'fp32'; 'fp32' needs swin\.onnx, fusion\.onnx;",
    ):
        load_model_dir(out)


def test_corrupt_graph_and_spec(tmp_path, spec):
    out = tiny.write_model_dir(tmp_path / "m", spec)
    data = (out / "fusion.onnx").read_bytes()
    (out / "fusion.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(
        MilmerInputError, match=r"Cannot read ONNX model '.*fusion\.onnx' \(corrupt or truncated\?\)"
    ):
        load_model_dir(out)
    (out / "spec.json").write_text("{")
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid model directory: spec\.json is unreadable: Invalid model spec: '.*spec\.json' is not valid JSON",
    ):
        load_model_dir(out)


@pytest.mark.parametrize("name", ["swin.onnx", "fusion.onnx"])
def test_graph_info_same_with_onnx_and_with_onnxruntime(tmp_path, spec, name, monkeypatch):
    out = tiny.write_model_dir(tmp_path / "m", spec)
    with_onnx = read_graph_info(out / name)
    monkeypatch.setitem(sys.modules, "onnx", None)  # the runtime must work without the onnx package
    with_ort = read_graph_info(out / name)
    assert with_onnx == with_ort
    assert with_onnx.metadata == {"milmer.spec": spec.to_json()}
    if name == "swin.onnx":
        assert with_onnx == GraphInfo(
            metadata={"milmer.spec": spec.to_json()},
            inputs={"frames": (np.dtype(np.float32), ("N", 3, 224, 224))},
            outputs={"tokens": (np.dtype(np.float32), ("N", 49, 8))},
        )
    else:
        assert with_onnx.outputs["selected"] == (np.dtype(np.int64), ("B", 3))


def test_load_without_onnx_package(tmp_path, spec, monkeypatch):
    out = tiny.write_model_dir(tmp_path / "m", spec)
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert load_model_dir(out).spec == spec
    with_face(spec, frame_size=192).save(out / "spec.json")
    with pytest.raises(MilmerInputError, match=r"face\.frame_size 224 vs 192"):
        load_model_dir(out)
