"""Backend table, make_runner and 'auto' selection."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.backends import (
    BACKENDS,
    DEVICES,
    OpenVinoRunner,
    OrtRunner,
    TrtRunner,
    auto_candidates,
    choose,
    make_runner,
    resolve_backend,
)
from milmer.runtime.backends import openvino as ov_backend
from milmer.runtime.backends import ort as ort_backend


@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)


@pytest.fixture
def no_openvino(monkeypatch):
    monkeypatch.setattr(ov_backend.platform, "machine", lambda: "aarch64")


@pytest.fixture
def cpu_only_ort(monkeypatch):
    monkeypatch.setattr(ort_backend, "available_providers", lambda: ["CPUExecutionProvider"])


def test_table():
    assert BACKENDS == {"ort": OrtRunner, "trt": TrtRunner, "openvino": OpenVinoRunner}


def test_make_ort_runner_and_run(swin_path):
    runner = make_runner("ort", swin_path, device="cpu", options={"ort": {"intra_op_num_threads": 1}})
    assert isinstance(runner, OrtRunner) and runner.intra_op_num_threads == 1
    with runner:
        assert runner.infer({"frames": np.zeros((1, 3, 224, 224), np.float32)})["tokens"].shape == (1, 49, 8)


def test_auto_resolves_to_ort_without_openvino(swin_path, no_tensorrt, cpu_only_ort, no_openvino):
    assert resolve_backend(swin_path) == "ort"
    runner = make_runner("auto", swin_path, options={"trt": {"engine_dir": "unused"}})
    assert isinstance(runner, OrtRunner) and runner.device == "cpu"


def test_auto_picks_trt_when_it_can_run(swin_path, monkeypatch):
    seen = {}

    def usable(cls, model_path, **kwargs):
        seen.update(kwargs)
        return None

    monkeypatch.setattr(TrtRunner, "unavailable_reason", classmethod(usable))
    runner = make_runner("auto", swin_path, precision="fp16", options={"trt": {"engine_dir": "e"}})
    assert isinstance(runner, TrtRunner) and runner.device == "cuda" and runner.precision == "fp16"
    assert seen == {"device": "cuda", "precision": "fp16", "engine_dir": "e"}
    # An explicit CPU device rules TensorRT out.
    assert isinstance(make_runner("auto", swin_path, device="cpu"), (OrtRunner, OpenVinoRunner))


def test_auto_prefers_openvino_on_an_x86_cpu(swin_path, no_tensorrt, cpu_only_ort):
    if OpenVinoRunner.unavailable_reason(swin_path, device="cpu", precision="fp32") is not None:
        pytest.skip("OpenVINO cannot run here")
    assert resolve_backend(swin_path) == "openvino"
    assert resolve_backend(swin_path, precision="fp16") == "openvino"
    # int8 graphs go to ONNX Runtime (OpenVINO's int8 measured slower on CPUs), and the note says so;
    # asked for by name, OpenVINO still runs them.
    choice = choose(swin_path, precision="int8")
    assert (choice.backend, choice.device) == ("ort", "cpu")
    assert "skipped openvino on cpu: auto leaves int8 graphs to ONNX Runtime" in choice.note()
    assert choose(swin_path, backend="openvino", precision="int8").backend == "openvino"
    runner = make_runner("auto", swin_path, options={"openvino": {"num_threads": 1}})
    assert isinstance(runner, OpenVinoRunner) and runner.device == "cpu" and runner.num_threads == 1
    # A bf16 request this CPU cannot serve passes over to ONNX Runtime, saying why in the log.
    options = {"openvino": {"inference_precision": "bf16", "cpu_flags": lambda: frozenset({"avx2"})}}
    assert resolve_backend(swin_path, options=options) == "ort"


def test_auto_puts_a_gpu_before_openvino(swin_path, no_tensorrt, monkeypatch):
    monkeypatch.setattr(
        ort_backend, "available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    assert resolve_backend(swin_path) == "ort"
    runner = make_runner("auto", swin_path)
    assert isinstance(runner, OrtRunner) and runner.device == "cuda"
    if OpenVinoRunner.unavailable_reason(swin_path, device="cpu", precision="fp32") is None:
        assert resolve_backend(swin_path, device="cpu") == "openvino"


def test_cli_choices_agree_with_the_table():
    """The numpy-free names `milmer --help` shows are the registry's."""
    from milmer.runtime import choices
    from milmer.runtime.backends import PRECISIONS
    from milmer.runtime.backends.registry import BACKEND_NAMES

    assert list(choices.BACKEND_NAMES) == list(BACKENDS) == list(BACKEND_NAMES)
    assert choices.DEVICES == DEVICES and choices.PRECISIONS == PRECISIONS


def test_candidates_come_from_the_table():
    """TensorRT > CUDA EP > OpenVINO (CPU) > ONNX Runtime (CPU); ORT's TensorRT EP only on request."""
    assert auto_candidates() == [("trt", "cuda"), ("ort", "cuda"), ("openvino", "cpu"), ("ort", "cpu")]
    assert auto_candidates("ort") == [("ort", "cuda"), ("ort", "cpu")]
    assert auto_candidates("auto", "tensorrt") == [("ort", "tensorrt")]
    assert auto_candidates("auto", "cuda") == [("trt", "cuda"), ("ort", "cuda")]
    assert auto_candidates("trt", "cpu") == []
    assert DEVICES == ("auto", "cpu", "cuda", "tensorrt")


def test_auto_note_says_what_was_picked_and_why_others_were_skipped(swin_path, fusion_path, no_tensorrt, cpu_only_ort, no_openvino):
    choice = choose([swin_path, fusion_path])
    assert (choice.backend, choice.device) == ("ort", "cpu")
    note = choice.note()
    assert note.startswith("Using ONNX Runtime on cpu (--backend auto --device auto); skipped trt on cuda: TensorRT is not available")
    assert " | skipped ort on cuda: 'cuda' needs onnxruntime's CUDAExecutionProvider, got an onnxruntime that offers only" in note
    # The note names what is missing; the install advice stays in the full reasons (errors, log).
    assert "install" not in note and "Invalid value" not in note
    assert any("install" in reason for _, reason in choice.skipped)
    assert " | skipped openvino on cpu: " in note
    assert "\n" not in note and "CPUExecutionProvider | skipped openvino on cpu: " in note
    explicit = choose(swin_path, backend="ort", device="cpu")
    assert explicit.skipped == () and explicit.note() == "Using ONNX Runtime on cpu (--backend ort --device cpu)."


def test_auto_needs_every_graph_to_run(swin_path, fusion_path, monkeypatch, cpu_only_ort, no_openvino):
    """TensorRT with an engine for the backbone only is skipped: both graphs run on one backend."""
    monkeypatch.setattr(
        TrtRunner,
        "unavailable_reason",
        classmethod(lambda cls, p, **kw: None if str(p).endswith("swin.onnx") else "no engine for fusion.onnx"),
    )
    assert choose(swin_path).backend == "trt"
    choice = choose([swin_path, fusion_path])
    assert (choice.backend, choice.device) == ("ort", "cpu")
    assert choice.skipped[0] == (("trt", "cuda"), "no engine for fusion.onnx")


def test_auto_with_nothing_able_to_run_explains(swin_path, no_tensorrt, cpu_only_ort):
    with pytest.raises(MilmerInputError) as info:
        make_runner("auto", swin_path, device="cuda")
    message = str(info.value)
    assert "No backend can run" in message and "with --backend auto --device cuda --precision fp32" in message
    assert "trt on cuda: TensorRT is not available" in message
    assert "ort on cuda: Invalid value for '--device': 'cuda' needs onnxruntime's CUDAExecutionProvider" in message


def test_invalid_arguments(swin_path):
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid value for '--backend': expected one of 'auto', 'ort', 'trt', 'openvino', got 'tensorrtt'\.$",
    ):
        make_runner("tensorrtt", swin_path)
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid value for '--device': expected one of 'auto', 'cpu', 'cuda', 'tensorrt', got 'gpu'\.$",
    ):
        make_runner("ort", swin_path, device="gpu")
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid value for '--device': expected one of 'auto', 'cuda', got 'cpu'; where backend 'trt' runs\.$",
    ):
        make_runner("trt", swin_path, device="cpu")
    with pytest.raises(MilmerInputError, match=r"^Invalid backend options: unknown key\(s\) onnx; expected some of ort, trt, openvino\.$"):
        make_runner("ort", swin_path, options={"onnx": {}})
    with pytest.raises(
        MilmerInputError,
        match=r"Invalid options for backend 'ort': unknown key\(s\) engine_dir; expected some of intra_op_num_threads, ",
    ):
        make_runner("ort", swin_path, device="cpu", options={"ort": {"engine_dir": "x"}})


def test_device_auto_for_ort_follows_providers(swin_path, cpu_only_ort, monkeypatch):
    assert make_runner("ort", swin_path).device == "cpu"
    monkeypatch.setattr(
        ort_backend, "available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    assert make_runner("ort", swin_path).device == "cuda"


def test_auto_prefers_openvino_on_an_x86_cpu_after_any_gpu(swin_path, fusion_path, no_tensorrt, cpu_only_ort):
    """With the openvino extra on an x86 CPU, 'auto' picks OpenVINO (same fp32 results, faster here)
    once TensorRT and the CUDA provider are ruled out."""
    pytest.importorskip("openvino")
    choice = choose([swin_path, fusion_path])
    assert (choice.backend, choice.device) == ("openvino", "cpu")
    assert choice.note().startswith("Using OpenVINO on cpu (--backend auto --device auto); skipped trt on cuda")


def test_backend_option_names_come_from_the_runners():
    from milmer.runtime.backends.registry import backend_option_names

    assert backend_option_names("openvino") == ("inference_precision", "num_threads", "num_streams", "cpu_flags")
    assert backend_option_names("ort")[:2] == ("intra_op_num_threads", "trt_cache_dir")


def test_backend_options_are_checked_for_every_backend(swin_path):
    """A misspelt OpenVINO option is refused even where 'auto' would pick another backend."""
    from milmer.runtime.backends.registry import check_backend_options

    ok = {"openvino": {"inference_precision": "bf16", "num_streams": 2}, "ort": {"intra_op_num_threads": 1}}
    assert check_backend_options(ok) == ok and check_backend_options(None) == {}
    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid options for backend 'openvino': unknown key\(s\) inference_precison; expected some of "
        r"inference_precision, num_threads, num_streams, cpu_flags\.$",
    ):
        make_runner("ort", swin_path, device="cpu", options={"openvino": {"inference_precison": "bf16"}})
    with pytest.raises(MilmerInputError, match=r"'options\['openvino'\]': expected a mapping of option -> value, got str"):
        check_backend_options({"openvino": "bf16"})
    with pytest.raises(MilmerInputError, match=r"'options': expected a mapping of backend name -> options, got list"):
        check_backend_options([("openvino", {})])


def test_build_runner_refuses_options_the_runner_does_not_take(swin_path):
    from milmer.runtime.backends.registry import build_runner

    with pytest.raises(
        MilmerInputError,
        match=r"^Invalid value for 'options\['ort'\]': expected options among the ort runner's options \('intra_op_num_threads'.*\), "
        r"got 'threads', which is not\.$",
    ):
        build_runner("ort", swin_path, device="cpu", precision="fp32", options={"ort": {"threads": 2}})
