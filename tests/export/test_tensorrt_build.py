"""TensorRT engine building and trtexec lines, on TensorRT 10.3 (JetPack 6) and 11.x.

Without TensorRT or a GPU here, the builder runs against typed stand-ins of both API surfaces
(``tests/runtime/backends/fake_tensorrt.py``; 11.x has no ``BuilderFlag.FP16``), and the ONNX
files are checked against what TensorRT 10.3's parser accepts. The ``trt``/``gpu`` test at the
bottom runs the real thing where TensorRT and a GPU exist; it has never run here.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from milmer.export import command
from milmer.export.tensorrt_build import (
    TRT_MAX_IR_VERSION,
    TRT_MAX_OPSET,
    build_engine,
    build_engines,
    check_bag_profile,
    graph_profiles,
    network_flags,
    register_engine,
    timing_cache_name,
    trtexec_commands,
)
from milmer.runtime.check import MilmerInputError
from milmer.runtime.backends.trt_cache import EngineTarget, read_meta
from milmer.runtime.spec import ModelSpec

SWIN_FP16 = (
    "trtexec --onnx=swin.fp16.onnx --saveEngine=engines/swin.fp16.trtexec.engine --stronglyTyped "
    "--minShapes=frames:10x3x224x224 --optShapes=frames:80x3x224x224 --maxShapes=frames:320x3x224x224 "
    "--memPoolSize=workspace:4096M --timingCacheFile=engines/timing.trtexec.cache"
)
FUSION_FP32 = (
    "trtexec --onnx=fusion.onnx --saveEngine=engines/fusion.fp32.trtexec.engine --stronglyTyped --noTF32 "
    "--minShapes=eeg:2x32x384,tokens:2x10x49x64 --optShapes=eeg:4x32x384,tokens:4x10x49x64 "
    "--maxShapes=eeg:16x32x384,tokens:16x10x49x64 --memPoolSize=workspace:1536M "
    "--timingCacheFile=engines/timing.trtexec.cache"
)
VERSIONS = ("10.3.0", "11.1.0")


def _fake():
    name = "milmer_tests_fake_tensorrt"
    if name not in sys.modules:
        path = Path(__file__).parents[1] / "runtime" / "backends" / "fake_tensorrt.py"
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def model_dir(exported, tmp_path):
    """A writable copy of the exported tiny model (fp32 + fp16 graphs)."""
    return Path(shutil.copytree(exported, tmp_path / "model", ignore=shutil.ignore_patterns("*.int8.onnx")))


def test_trtexec_commands_are_pinned(exported):
    """trtexec 10.3 and 11: strongly typed, no --fp16 (removed in 11), the fp16 graph file."""
    swin, fusion = trtexec_commands(exported, (1, 8, 32), "fp16")
    assert swin == SWIN_FP16
    assert fusion.startswith(
        "trtexec --onnx=fusion.fp16.onnx --saveEngine=engines/fusion.fp16.trtexec.engine --stronglyTyped --minShapes="
    )
    assert trtexec_commands(exported, (2, 4, 16), "fp32", workspace_gb=1.5)[1] == FUSION_FP32
    for line in (swin, fusion, FUSION_FP32):
        assert " --fp16" not in line and " --int8" not in line and " --best" not in line
    with pytest.raises(MilmerInputError, match="Invalid value for '--precision'.*got 'int8'"):
        trtexec_commands(exported, (1, 8, 32), "int8")


def test_trtexec_file_is_written_by_every_export(exported):
    text = (exported / "trtexec.txt").read_text()
    assert SWIN_FP16 in text
    assert "trtexec --onnx=swin.onnx --saveEngine=engines/swin.fp32.trtexec.engine --stronglyTyped --noTF32" in text
    assert "register_engine('.', 'engines/swin.fp16.trtexec.engine', graph='swin', precision='fp16'" in text
    assert "--fp16" not in text


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_graphs_fit_tensorrt_10_3_parser(exported, precision):
    """What JetPack 6's TensorRT 10.3 reads: opset 9-20, IR version <= 10 (ONNX 1.16); TopK sorted
    (the fusion graph's top-K and its index sort) so the selected frames come out in order."""
    for stem in ("swin", "fusion"):
        proto = onnx.load(str(exported / (f"{stem}.onnx" if precision == "fp32" else f"{stem}.fp16.onnx")))
        opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
        assert 9 <= opset <= TRT_MAX_OPSET and proto.ir_version <= TRT_MAX_IR_VERSION, (stem, opset, proto.ir_version)
        assert {o.domain for o in proto.opset_import} <= {"", "ai.onnx"}, stem  # no custom ops
    fusion = onnx.load(str(exported / ("fusion.onnx" if precision == "fp32" else "fusion.fp16.onnx")))
    topks = [n for n in fusion.graph.node if n.op_type == "TopK"]
    assert len(topks) == 2
    for node in topks:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs.get("sorted", 1) == 1, node.name
    assert (TRT_MAX_OPSET, TRT_MAX_IR_VERSION) == (20, 10)


@pytest.mark.parametrize("version", VERSIONS)
def test_engines_build_strongly_typed_on_10_3_and_11(model_dir, monkeypatch, version):
    """Every engine comes from a strongly typed network and its precision's graph file; no
    precision builder flag is touched (11.x has none); fp32 clears TF32; one timing cache per
    TensorRT version and GPU."""
    fake = _fake()
    trt, _ = fake.install(monkeypatch, version)
    lines: list[str] = []
    built = build_engines(model_dir, ("fp32", "fp16"), (1, 2, 4), workspace_gb=1, log=lines.append)
    assert [(e.graph, e.precision) for e in built] == [("swin", "fp32"), ("fusion", "fp32"), ("swin", "fp16"), ("fusion", "fp16")]
    for e in built:
        data = json.loads(e.engine_path.read_bytes())
        assert data["strongly_typed"] is True, e
        assert Path(data["onnx"]).name == (f"{e.graph}.onnx" if e.precision == "fp32" else f"{e.graph}.fp16.onnx")
        assert ("TF32" in data["flags"]) == (e.precision == "fp16")
        assert not set(data["flags"]) & fake.TYPING_FLAGS
        meta = read_meta(e.engine_path)
        assert (meta.tensorrt_version, meta.gpu_name, meta.compute_capability, meta.precision) == (version, "Orin", "8.7", e.precision)
        assert meta.extra["strongly_typed"] is True
    assert meta.profile == {"eeg": ((1, 32, 384), (2, 32, 384), (4, 32, 384)),
                            "tokens": ((1, 10, 49, 64), (2, 10, 49, 64), (4, 10, 49, 64))}
    caches = sorted(p.name for p in (model_dir / "engines").glob("*.cache"))
    assert caches == [f"timing-trt{version}-orin-sm87.cache"]
    cache = json.loads((model_dir / "engines" / caches[0]).read_bytes())
    assert cache == {"header": {"tensorrt": version, "gpu": "Orin"}, "entries": 4}
    assert len(lines) == 4 and not trt.log


def test_network_flags():
    fake = _fake()
    assert network_flags(fake.make_tensorrt("10.3.0", None)) == 2  # 1 << STRONGLY_TYPED
    assert network_flags(fake.make_tensorrt("11.1.0", None)) == 2
    trt = fake.make_tensorrt("11.1.0", None)
    del trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED
    assert network_flags(trt) == 0  # 11.x is always strongly typed
    trt.__version__ = "9.3.0"
    with pytest.raises(MilmerInputError, match="has no strongly typed networks"):
        network_flags(trt)


def test_timing_cache_names():
    orin = EngineTarget("10.3.0", "Orin", "8.7", "fp32")
    rtx = EngineTarget("11.1.0", "NVIDIA GeForce RTX 4090", "8.9", "fp16")
    assert timing_cache_name(orin) == "timing-trt10.3.0-orin-sm87.cache"
    assert timing_cache_name(rtx) == "timing-trt11.1.0-nvidia-geforce-rtx-4090-sm89.cache"


@pytest.mark.parametrize("version", VERSIONS)
def test_foreign_timing_cache_is_replaced_not_trusted(model_dir, monkeypatch, version):
    """A cache from another GPU under this GPU's name is verified (ignore_mismatch=False), rejected
    and replaced; with ignore_mismatch=True TensorRT would have used its timings."""
    fake = _fake()
    fake.install(monkeypatch, version)
    cache = model_dir / "engines" / f"timing-trt{version}-orin-sm87.cache"
    cache.parent.mkdir()
    cache.write_text(json.dumps({"header": {"tensorrt": version, "gpu": "NVIDIA A100"}, "entries": 7}))
    lines: list[str] = []
    build_engine(model_dir / "swin.onnx", graph_profiles(ModelSpec.load(model_dir / "spec.json"), (1, 1, 2))["swin"],
                 "fp32", model_dir / "engines", timing_cache=cache, log=lines.append)
    assert lines == [f"TensorRT rejected the timing cache {cache}; starting an empty one"]
    assert json.loads(cache.read_bytes()) == {"header": {"tensorrt": version, "gpu": "Orin"}, "entries": 1}
    cache.write_bytes(b"not a cache")
    build_engine(model_dir / "swin.onnx", graph_profiles(ModelSpec.load(model_dir / "spec.json"), (1, 1, 2))["swin"],
                 "fp32", model_dir / "engines", timing_cache=cache)
    assert json.loads(cache.read_bytes())["entries"] == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_wrong_graph_or_profile_is_refused(model_dir, monkeypatch, version):
    _fake().install(monkeypatch, version)
    profiles = graph_profiles(ModelSpec.load(model_dir / "spec.json"), (1, 2, 4))
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid value for '--precision': 'fp16' needs the fp16 graph file \(strong typing .*\), got swin\.onnx, "
        r"which has no float16 tensors; pass the graph written by: milmer export CKPT --out DIR --fp16\.$",
    ):
        build_engine(model_dir / "swin.onnx", profiles["swin"], "fp16", model_dir / "engines")
    with pytest.raises(MilmerInputError, match=r"'fp32' needs the fp32 graph file .*, got swin\.fp16\.onnx, which has float16"):
        build_engine(model_dir / "swin.fp16.onnx", profiles["swin"], "fp32", model_dir / "engines")
    with pytest.raises(MilmerInputError, match=r"profile for swin\.onnx: it names inputs \['eeg', 'tokens'\], the graph has \['frames'\]"):
        build_engine(model_dir / "swin.onnx", profiles["fusion"], "fp32", model_dir / "engines")
    four_channels = {"frames": tuple((n, 4, 224, 224) for n in (1, 2, 4))}
    with pytest.raises(MilmerInputError, match=r"TensorRT rejected the optimisation profile .* check --trt-profile"):
        build_engine(model_dir / "swin.onnx", four_channels, "fp32", model_dir / "engines")
    assert not (model_dir / "engines").exists()


def _trtexec_engine(model_dir: Path, graph: str, precision: str, bags: tuple[int, int, int]) -> Path:
    """What trtexec leaves behind: an engine file without metadata (built here through the API)."""
    onnx_name = f"{graph}.onnx" if precision == "fp32" else f"{graph}.{precision}.onnx"
    profile = graph_profiles(ModelSpec.load(model_dir / "spec.json"), bags)[graph]
    path, _ = build_engine(model_dir / onnx_name, profile, precision, model_dir / "scratch")
    target = model_dir / "engines" / f"{graph}.{precision}.trtexec.engine"
    target.parent.mkdir(exist_ok=True)
    shutil.move(path, target)
    return target


@pytest.mark.parametrize("version", VERSIONS)
def test_register_engine_loads_and_checks_before_filing(model_dir, monkeypatch, version):
    fake = _fake()
    fake.install(monkeypatch, version)
    source = _trtexec_engine(model_dir, "swin", "fp16", (1, 8, 32))
    # another profile than trtexec used: refused, nothing filed, the source kept
    with pytest.raises(
        MilmerInputError,
        match=r"does not fit its profile: input 'frames' profile min/opt/max \(\(10, 3, 224, 224\), \(80, 3, 224, 224\), "
        r"\(320, 3, 224, 224\)\) vs \(\(10, 3, 224, 224\), \(20, 3, 224, 224\), \(40, 3, 224, 224\)\); rebuild it with the fp16 "
        r"lines of trtexec\.txt",
    ):
        register_engine(model_dir, source, graph="swin", precision="fp16", profile=(1, 2, 4))
    # the fusion engine filed as swin: refused
    fusion = _trtexec_engine(model_dir, "fusion", "fp16", (1, 8, 32))
    with pytest.raises(MilmerInputError, match=r"does not fit its profile: inputs \['eeg', 'tokens'\] vs \['frames'\]"):
        register_engine(model_dir, fusion, graph="swin", precision="fp16", profile=(1, 8, 32))
    garbage = model_dir / "engines" / "garbage.engine"
    garbage.write_bytes(b"\x00not an engine")
    with pytest.raises(MilmerInputError, match=rf"Cannot load TensorRT engine .*garbage\.engine.*TensorRT {version}"):
        register_engine(model_dir, garbage, graph="swin", precision="fp16", profile=(1, 8, 32))
    assert source.is_file() and not list((model_dir / "engines").glob("*.json"))
    filed = register_engine(model_dir, "engines/swin.fp16.trtexec.engine", graph="swin", precision="fp16", profile=(1, 8, 32))
    meta = read_meta(filed)
    assert (meta.onnx_name, meta.precision, meta.tensorrt_version, meta.extra) == ("swin.fp16.onnx", "fp16", version, {"builder": "trtexec"})
    assert not source.exists() and filed.read_bytes() and filed.parent == model_dir / "engines"


def test_register_refuses_an_engine_from_another_tensorrt(model_dir, monkeypatch):
    fake = _fake()
    fake.install(monkeypatch, "11.1.0")
    source = _trtexec_engine(model_dir, "fusion", "fp32", (1, 8, 32))
    fake.install(monkeypatch, "10.3.0")
    with pytest.raises(MilmerInputError, match=r"built by another TensorRT version or GPU than this machine's TensorRT 10\.3\.0"):
        register_engine(model_dir, source, graph="fusion", precision="fp32", profile=(1, 8, 32))
    assert source.is_file()


def test_profiles_scale_frames_by_frames_per_window():
    profiles = graph_profiles(ModelSpec(), (1, 8, 32))
    assert profiles["swin"] == {"frames": ((10, 3, 224, 224), (80, 3, 224, 224), (320, 3, 224, 224))}
    assert profiles["fusion"]["tokens"] == ((1, 10, 49, 768), (8, 10, 49, 768), (32, 10, 49, 768))
    assert profiles["fusion"]["eeg"][2] == (32, 32, 384)


@pytest.mark.parametrize("bags", [(0, 1, 2), (1, 8), (4, 2, 8), (1, 2.5, 4), [1, True, 3]])
def test_bad_bag_profiles(bags):
    with pytest.raises(MilmerInputError, match=r"'--trt-profile': expected \(min, opt, max\) bags"):
        check_bag_profile(bags)


def test_without_tensorrt_building_says_how_to_install(exported, tmp_path, monkeypatch, tiny_ckpt):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` fail
    with pytest.raises(MilmerInputError, match=r"TensorRT is not available .*pip install \"milmer\[trt\]\""):
        build_engine(exported / "swin.onnx", graph_profiles(ModelSpec(), (1, 1, 1))["swin"], "fp32", tmp_path)
    # export --trt fails before the (slow) export, leaving nothing behind
    with pytest.raises(MilmerInputError, match="TensorRT is not available"):
        command.export_command(tiny_ckpt, tmp_path / "model", trt=True, progress=False)
    assert not (tmp_path / "model").exists()


@pytest.mark.gpu
@pytest.mark.trt
def test_engines_build_and_match_onnx_runtime(exported, tmp_path):
    pytest.importorskip("tensorrt")
    pytest.importorskip("cuda")
    import shutil

    from milmer.runtime.backends.ort import OrtRunner
    from milmer.runtime.backends.trt import TrtRunner, cuda_device_present

    if not cuda_device_present():
        pytest.skip("no CUDA device")
    model_dir = shutil.copytree(exported, tmp_path / "model")
    built = build_engines(model_dir, ("fp32", "fp16"), (1, 2, 4), workspace_gb=1)
    assert {(e.graph, e.precision) for e in built} == {(g, p) for g in ("swin", "fusion") for p in ("fp32", "fp16")}
    assert (model_dir / "engines" / "timing.cache").is_file()
    frames = np.random.default_rng(0).standard_normal((20, 3, 224, 224)).astype(np.float32)
    with OrtRunner(model_dir / "swin.onnx") as ort_runner:
        expected = ort_runner.infer({"frames": frames})["tokens"]
    for precision, atol in (("fp32", 1e-3), ("fp16", 5e-2)):
        name = "swin.onnx" if precision == "fp32" else "swin.fp16.onnx"
        with TrtRunner(model_dir / name, precision=precision) as trt_runner:
            got = trt_runner.infer({"frames": frames})["tokens"]
        assert np.abs(got - expected).max() < atol, precision


def test_engine_tools_import_without_torch():
    """trtexec lines and engine registration run on a Jetson that has no PyTorch."""
    import subprocess

    code = (
        "import sys; import milmer.export.tensorrt_build; "
        "heavy = [m for m in ('torch', 'transformers', 'tensorrt') if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
