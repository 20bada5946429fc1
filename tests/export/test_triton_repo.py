"""The Triton model repository: parsed with Triton's own model-config protobuf, checked against the
ONNX graphs it ships (names, dtypes, shapes, ensemble wiring), and its graphs run with ONNX Runtime
give the runtime's numbers. The stock Triton server itself is not run here (no GPU, no build with
these backends)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from milmer.app.cli import main
from milmer.export.triton_repo import BACKBONE_MODEL, FUSION_MODEL, write_triton_repo
from milmer.runtime.check import MilmerInputError
from milmer.runtime.pipeline import Pipeline
from milmer.runtime.serve.protocol import SPEC_PARAMETER, bag_tensors
from milmer.runtime.spec import ModelSpec

model_config_pb2 = pytest.importorskip(
    "tritonclient.grpc.model_config_pb2", reason="needs tritonclient (Triton's model-config protobuf; serve extra)"
)
from google.protobuf import text_format  # noqa: E402

TYPE = {np.dtype(np.float32): "TYPE_FP32", np.dtype(np.uint8): "TYPE_UINT8", np.dtype(np.int64): "TYPE_INT64"}


def _config(path):
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def _type_name(enum_value: int) -> str:
    return model_config_pb2.DataType.Name(enum_value)


def _graph_io(path):
    model = onnx.load(str(path))
    weights = {t.name for t in model.graph.initializer}

    def rows(values):
        out = {}
        for v in values:
            if v.name in weights:
                continue
            tt = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
            out[v.name] = (TYPE[np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type))], dims)
        return out

    return rows(model.graph.input), rows(model.graph.output)


def _io(tensors):
    return {t.name: (_type_name(t.data_type), list(t.dims)) for t in tensors}


@pytest.fixture(scope="module")
def repo(exported, tmp_path_factory):
    return write_triton_repo(exported, tmp_path_factory.mktemp("triton") / "repo")


def test_step_configs_match_their_graphs(repo):
    for name in (BACKBONE_MODEL, FUSION_MODEL):
        config = _config(repo / name / "config.pbtxt")
        assert config.name == name
        assert config.backend == "onnxruntime" and config.default_model_filename == "model.onnx"
        assert config.max_batch_size == 32
        assert list(config.dynamic_batching.preferred_batch_size) == [8]
        assert config.dynamic_batching.max_queue_delay_microseconds == 2000
        assert [(g.kind, g.count) for g in config.instance_group] == [(model_config_pb2.ModelInstanceGroup.KIND_GPU, 1)]
        (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
        assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP32"
        inputs, outputs = _graph_io(repo / name / "1" / "model.onnx")
        # Triton's dims leave out the batch axis, which every graph has dynamic.
        assert {k: (t, [-1, *d]) for k, (t, d) in _io(config.input).items()} == inputs
        assert {k: (t, [-1, *d]) for k, (t, d) in _io(config.output).items()} == outputs


def test_ensemble_serves_the_protocol_and_is_wired_consistently(repo, exported):
    spec = ModelSpec.load(exported / "spec.json")
    ensemble = _config(repo / "milmer" / "config.pbtxt")
    assert ensemble.platform == "ensemble" and ensemble.max_batch_size == 32
    ins, outs = bag_tensors(spec)
    to_type = {"FP32": "TYPE_FP32", "UINT8": "TYPE_UINT8", "INT64": "TYPE_INT64"}
    assert _io(ensemble.input) == {t.name: (to_type[t.triton_dtype], list(t.shape)) for t in ins}
    assert _io(ensemble.output) == {t.name: (to_type[t.triton_dtype], list(t.shape)) for t in outs}
    assert _io(ensemble.input) == {"eeg": ("TYPE_FP32", [32, 384]), "frames": ("TYPE_UINT8", [10, 224, 224, 3])}
    assert ModelSpec.from_json(ensemble.parameters[SPEC_PARAMETER].string_value) == spec

    # Follow every tensor through the steps: each consumer gets a tensor that exists by then, with
    # the dtype and dims its model declares; the ensemble's outputs are all produced.
    available = _io(ensemble.input)
    steps = [step.model_name for step in ensemble.ensemble_scheduling.step]
    assert steps == [BACKBONE_MODEL, FUSION_MODEL]
    for step in ensemble.ensemble_scheduling.step:
        model = _config(repo / step.model_name / "config.pbtxt")
        assert model.max_batch_size == ensemble.max_batch_size
        model_in, model_out = _io(model.input), _io(model.output)
        assert set(step.input_map) == set(model_in), step.model_name
        for model_name, tensor in step.input_map.items():
            assert available[tensor] == model_in[model_name], (step.model_name, model_name, tensor)
        assert set(step.output_map) <= set(model_out)
        for model_name, tensor in step.output_map.items():
            available[tensor] = model_out[model_name]
    assert {name: available[name] for name in _io(ensemble.output)} == _io(ensemble.output)


def test_repository_graphs_give_the_runtimes_numbers(repo, exported):
    """Backbone (with its preprocessing head) then fusion, as the ensemble runs them, in ONNX Runtime."""
    import onnxruntime

    with Pipeline(exported, backend="ort", device="cpu") as pipeline:
        spec = pipeline.spec
        rng = np.random.default_rng(0)
        eeg = rng.normal(0, 20, (3, spec.eeg.n_channels, spec.eeg.window_samples)).astype(np.float32)
        frames = rng.integers(0, 256, (3, spec.face.frames_per_window, 224, 224, 3), dtype=np.uint8)
        want = pipeline.score_bags(eeg, frames)
    ensemble = _config(repo / "milmer" / "config.pbtxt")
    backbone_step, fusion_step = ensemble.ensemble_scheduling.step
    tensors = {"eeg": eeg, "frames": frames}
    for step in (backbone_step, fusion_step):
        session = onnxruntime.InferenceSession(str(repo / step.model_name / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
        out = session.run(None, {k: tensors[v] for k, v in step.input_map.items()})
        names = [o.name for o in session.get_outputs()]
        tensors.update({step.output_map[n]: o for n, o in zip(names, out) if n in step.output_map})
    for key in ("logits", "probabilities", "mil_weights"):
        np.testing.assert_allclose(tensors[key], want[key], rtol=0, atol=1e-6, err_msg=key)
    np.testing.assert_array_equal(tensors["selected"], want["selected"])


def test_tensorrt_repository_and_engine_script(exported, tmp_path):
    repo = write_triton_repo(exported, tmp_path / "trt", backend="tensorrt", precision="fp16", profile=(2, 4, 16))
    for name in (BACKBONE_MODEL, FUSION_MODEL):
        config = _config(repo / name / "config.pbtxt")
        assert config.platform == "tensorrt_plan" and config.max_batch_size == 16
        assert list(config.dynamic_batching.preferred_batch_size) == [4]
    spec = ModelSpec.load(exported / "spec.json")
    d = spec.graph.token_dim
    script = (repo / "build_engines.sh").read_text().splitlines()
    assert script[-2] == (
        f"trtexec --onnx={BACKBONE_MODEL}/1/model.onnx --saveEngine={BACKBONE_MODEL}/1/model.plan --fp16 "
        "--minShapes=frames:2x10x224x224x3 --optShapes=frames:4x10x224x224x3 --maxShapes=frames:16x10x224x224x3 "
        "--memPoolSize=workspace:4096M"
    )
    assert script[-1] == (
        f"trtexec --onnx={FUSION_MODEL}/1/model.onnx --saveEngine={FUSION_MODEL}/1/model.plan --fp16 "
        f"--minShapes=eeg:2x32x384,tokens:2x10x49x{d} --optShapes=eeg:4x32x384,tokens:4x10x49x{d} "
        f"--maxShapes=eeg:16x32x384,tokens:16x10x49x{d} --memPoolSize=workspace:4096M"
    )
    assert json.loads((repo / "milmer_repo.json").read_text())["source_graphs"] == {
        BACKBONE_MODEL: "swin.fp16.onnx",
        FUSION_MODEL: "fusion.fp16.onnx",
    }


def test_cli_and_bad_options(exported, tmp_path, capsys):
    out = tmp_path / "cpu"
    assert main(["export-triton", str(exported), "--out", str(out), "--device", "cpu", "--precision", "int8"]) == 0
    config = _config(out / BACKBONE_MODEL / "config.pbtxt")
    assert [g.kind for g in config.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_CPU]
    assert not config.optimization.HasField("execution_accelerators")
    assert main(["export-triton", str(exported), "--out", str(out)]) == 2
    assert "is not empty; choose another folder or pass --overwrite" in capsys.readouterr().err
    with pytest.raises(MilmerInputError, match=r"Invalid value for '--backend': expected one of .*'onnxruntime', 'tensorrt'.*got 'trt'"):
        write_triton_repo(exported, tmp_path / "x", backend="trt")  # type: ignore[arg-type]
    with pytest.raises(MilmerInputError, match=r"^Invalid value for '--backend': 'tensorrt' needs a GPU at fp32 or fp16, got device 'cpu'"):
        write_triton_repo(exported, tmp_path / "x", backend="tensorrt", device="cpu")
    with pytest.raises(MilmerInputError, match=r"Invalid value for '--trt-profile': expected \(min, opt, max\) bags"):
        write_triton_repo(exported, tmp_path / "x", profile=(8, 4, 16))
    assert not (tmp_path / "x").exists()
