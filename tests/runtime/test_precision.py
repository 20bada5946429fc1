"""--precision: graph precisions pass through, bf16 is refused where it cannot run, 'auto' takes
bf16 only on a bfloat16 CPU where it agrees with fp32 (checked once, cached)."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

from milmer.runtime import precision as prec
from milmer.runtime.backends.openvino import OpenVinoRunner, cpu_flags, has_bf16
from milmer.runtime.check import MilmerInputError
from milmer.runtime.choices import check_precision
from milmer.runtime.precision import Bf16Agreement, choose_precision, graph_precision
from milmer.runtime.scoring import BagScorer

OV_HERE = importlib.util.find_spec("openvino") is not None and (
    OpenVinoRunner.unavailable_reason("x.onnx", device="cpu", precision="fp32") is None
)
needs_ov = pytest.mark.skipif(not OV_HERE, reason="OpenVINO is not installed or this is not an x86 CPU")
AVX2 = frozenset({"avx2", "fma", "avx512f", "avx512_vnni"})
BF16_CPU = AVX2 | {"avx512_bf16"}


@pytest.fixture
def counted(monkeypatch):
    """measure_bf16_agreement replaced by a counter returning ``counted.result``."""

    class Counter:
        calls = 0
        result = Bf16Agreement(n_bags=8, top1=1.0, selected=1.0, max_abs_probabilities=0.004)

    def measure(model_dir, n_bags=prec.CHECK_BAGS):
        Counter.calls += 1
        return Counter.result

    monkeypatch.setattr(prec, "measure_bf16_agreement", measure)
    return Counter


def test_graph_precisions_pass_through(tiny_model):
    for p in ("fp32", "fp16", "int8"):
        assert choose_precision(tiny_model, p) == prec.PrecisionChoice(p, p, p)
        assert graph_precision(p) == p
    assert graph_precision("auto") == graph_precision("bf16") == "fp32"
    # The value is checked where it enters (check_precision), once; choose_precision trusts it.
    with pytest.raises(MilmerInputError, match=r"^Invalid value for '--precision': expected one of 'auto', 'fp32', 'bf16', 'fp16', 'int8', got 'fp64'\.$"):
        check_precision("fp64", "--precision")


def test_bf16_refusals_name_the_option_the_flags_and_the_way_forward(tiny_model):
    with pytest.raises(MilmerInputError, match=r"^Invalid value for '--precision': 'bf16' needs OpenVINO's bfloat16 hint on the fp32 graphs, got --backend ort \(no bfloat16 path\); use --backend openvino \(or auto\), or --precision fp32\.$"):
        choose_precision(tiny_model, "bf16", backend="ort")
    with pytest.raises(MilmerInputError, match=r"'bf16' needs the CPU \(OpenVINO\), got --device cuda; use --device cpu"):
        choose_precision(tiny_model, "bf16", device="cuda")
    if OV_HERE:
        with pytest.raises(MilmerInputError, match=r"'bf16' needs a CPU with native bfloat16 arithmetic, got one without the CPU flags amx_bf16 and avx512_bf16 \(/proc/cpuinfo\); use --precision fp32"):
            choose_precision(tiny_model, "bf16", cpu_flags_fn=lambda: AVX2)
        choice = choose_precision(tiny_model, "bf16", cpu_flags_fn=lambda: BF16_CPU)
        assert (choice.graphs, choice.compute, choice.backend) == ("fp32", "bf16", "openvino")
        assert choice.backend_options == {"openvino": {"inference_precision": "bf16"}}


def test_auto_keeps_fp32_without_bf16_or_openvino(tiny_model, tmp_path, counted, monkeypatch):
    assert choose_precision(tiny_model, cpu_flags_fn=lambda: AVX2, cache_dir=tmp_path) == prec.PrecisionChoice("auto", "fp32", "fp32")
    assert choose_precision(tiny_model, backend="ort", cpu_flags_fn=lambda: BF16_CPU, cache_dir=tmp_path).compute == "fp32"
    assert choose_precision(tiny_model, device="cuda", cpu_flags_fn=lambda: BF16_CPU, cache_dir=tmp_path).compute == "fp32"
    monkeypatch.setitem(sys.modules, "openvino", None)
    assert choose_precision(tiny_model, cpu_flags_fn=lambda: BF16_CPU, cache_dir=tmp_path).compute == "fp32"
    assert counted.calls == 0  # no check where bf16 cannot run


@needs_ov
def test_auto_takes_bf16_where_it_agrees_checked_once(tiny_model, tmp_path, counted):
    lines: list[str] = []
    choice = choose_precision(tiny_model, cpu_flags_fn=lambda: BF16_CPU, cache_dir=tmp_path, log=lines.append)
    assert (choice.graphs, choice.compute, choice.backend) == ("fp32", "bf16", "openvino")
    assert choice.note == (
        "Precision bf16 (auto: CPU has avx512_bf16; agrees with fp32: top-1 100%, selected frames 100% on 8 "
        "check bags); --precision fp32 to turn off."
    )
    assert lines == ["Checking bf16 against fp32 on 8 bags (once per model and CPU)..."]
    [cached] = list(tmp_path.iterdir())
    assert json.loads(cached.read_text()) == {"n_bags": 8, "top1": 1.0, "selected": 1.0, "max_abs_probabilities": 0.004}
    again = choose_precision(tiny_model, cpu_flags_fn=lambda: BF16_CPU, cache_dir=tmp_path, log=lines.append)
    assert counted.calls == 1 and again.agreement.cached and again.compute == "bf16" and len(lines) == 1
    # Another CPU (other flags) is another cache entry.
    choose_precision(tiny_model, cpu_flags_fn=lambda: BF16_CPU | {"amx_bf16"}, cache_dir=tmp_path)
    assert counted.calls == 2


@needs_ov
def test_auto_keeps_fp32_where_bf16_disagrees(tiny_model, tmp_path, counted):
    counted.result = Bf16Agreement(n_bags=8, top1=0.875, selected=1.0, max_abs_probabilities=0.2)
    choice = choose_precision(tiny_model, cpu_flags_fn=lambda: BF16_CPU, cache_dir=tmp_path)
    assert (choice.compute, choice.backend_options) == ("fp32", {})
    assert choice.note == (
        "Precision fp32 (auto: bf16 disagrees with fp32 on this model: top-1 88%, selected frames 100% on 8 "
        "check bags, needs 98%/95%); --precision bf16 to force it."
    )


@needs_ov
def test_check_bags_are_deterministic_images(tiny_model):
    from milmer.runtime.spec import ModelSpec

    spec = ModelSpec.load(tiny_model / "spec.json")
    eeg, crops = prec.check_bags(spec, 2)
    assert eeg.shape == (2, 32, 384) and eeg.dtype == np.float32
    assert crops.shape == (2, 10, 224, 224, 3) and crops.dtype == np.uint8
    np.testing.assert_array_equal(prec.check_bags(spec, 2)[1], crops)
    assert 20 < crops.std() < 120  # textured, not flat


@needs_ov
def test_bag_scorer_auto_on_this_cpu(tiny_model, monkeypatch, tmp_path):
    """On a bfloat16 CPU 'auto' computes in bf16 and owes bf16's agreement; elsewhere it is fp32."""
    monkeypatch.setenv("MILMER_HOME", str(tmp_path))
    rng = np.random.default_rng(5)
    crops = rng.integers(0, 256, (2, 10, 224, 224, 3), dtype=np.uint8)
    eeg = rng.standard_normal((2, 32, 384)).astype(np.float32)
    with BagScorer(tiny_model, precision="auto", device="cpu") as scorer:
        got = scorer.score_bags(eeg, crops)
        compute = scorer.settings["compute_precision"]
    with BagScorer(tiny_model, precision="fp32", backend="ort", device="cpu") as scorer:
        ref = scorer.score_bags(eeg, crops)
    assert compute == ("bf16" if has_bf16(cpu_flags()) else "fp32")
    # bf16 keeps 8 significand bits: a few units of 2**-8 on probabilities.
    atol = 4 * 2.0**-8 if compute == "bf16" else 1e-5
    np.testing.assert_allclose(got["probabilities"], ref["probabilities"], atol=atol)
    if compute != "bf16":
        return
    with pytest.raises(MilmerInputError, match=r"'backend_options\['openvino'\]\['inference_precision'\]': expected 'bf16' \(precision 'bf16' computes in bf16\), got 'fp32'; give one of them"):
        BagScorer(tiny_model, precision="bf16", backend_options={"openvino": {"inference_precision": "fp32"}})
