"""Bag scoring: the two graphs loaded once, score_bags against the runners and the numpy
reference, the batch policy, and options checked once at the boundary."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from milmer.runtime import choices, model_dir, precision, scoring
from milmer.runtime.backends import base, registry
from milmer.runtime.check import MilmerInputError, check_option
from milmer.runtime.model_dir import load_model_dir
from milmer.runtime.scoring import BagScorer

def test_score_bags_equals_runners_by_hand(tiny_graphs, tiny_model):
    rng = np.random.default_rng(3)
    with BagScorer(tiny_model, batch=2, intra_op_threads=1) as pipe:
        spec, g = pipe.spec, pipe.spec.graph
        crops = rng.integers(0, 256, (3, 10, 224, 224, 3), dtype=np.uint8)
        eeg = rng.standard_normal((3, 32, 384)).astype(np.float32)
        timings: dict[str, float] = {}
        got = pipe.score_bags(eeg, crops, timings=timings)
        frames = ((crops / np.float32(255) - np.float32(spec.face.mean)) / np.float32(spec.face.std)).astype(np.float32)
        frames = np.ascontiguousarray(frames.transpose(0, 1, 4, 2, 3).reshape(30, 3, 224, 224))
        tokens = pipe.swin.infer({"frames": frames})["tokens"].reshape(3, 10, g.tokens_per_frame, g.token_dim)
        by_hand = pipe.fusion.infer({"eeg": eeg, "tokens": tokens})
    assert set(got) == {"logits", "probabilities", "mil_weights", "selected"}
    assert set(timings) == {"normalise", "backbone", "fusion"}
    for key in got:
        np.testing.assert_allclose(got[key], by_hand[key], atol=1e-6, err_msg=key)
    ref = tiny_graphs.fusion_reference(spec, eeg, tiny_graphs.swin_reference(spec, frames).reshape(tokens.shape))
    np.testing.assert_allclose(got["probabilities"], ref["probabilities"], atol=1e-5)
    np.testing.assert_array_equal(got["selected"], ref["selected"])


def test_score_bags_rejects_bad_inputs(tiny_model):
    with BagScorer(tiny_model, batch=2) as pipe:
        crops = np.zeros((2, 10, 224, 224, 3), np.uint8)
        eeg = np.zeros((2, 32, 384), np.float32)
        with pytest.raises(MilmerInputError, match=r"'crops': expected a \(B, 10, 224, 224, 3\) uint8 array, got float32"):
            pipe.score_bags(eeg, crops.astype(np.float32))
        with pytest.raises(MilmerInputError, match=r"'crops': expected a \(B, 10, 224, 224, 3\) uint8 array, got uint8 \(2, 9,"):
            pipe.score_bags(eeg, crops[:, :9])
        with pytest.raises(MilmerInputError, match=r"'eeg': expected a \(2, 32, 384\) float32 array, got float32 \(3, 32, 384\)"):
            pipe.score_bags(np.zeros((3, 32, 384), np.float32), crops)
        with pytest.raises(MilmerInputError, match=r"'eeg': expected a \(2, 32, 384\) float32 array, got float64"):
            pipe.score_bags(eeg.astype(np.float64), crops)


def test_option_errors(tiny_model):
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'batch': expected an integer >= 1, got 0\.$"):
        BagScorer(tiny_model, batch=0)
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'backend': expected one of 'auto', 'ort', 'trt', 'openvino', got 'onnx'\.$"):
        BagScorer(tiny_model, backend="onnx")
    bundle = load_model_dir(tiny_model)
    with pytest.raises(MilmerInputError, match=r"'precision': expected 'fp32' \(the precision the model bundle was loaded at\), got 'fp16'; load it with load_model_dir"):
        BagScorer(bundle, precision="fp16")
    with pytest.raises(MilmerInputError, match=r"'precision': expected one of the precisions exported to '.*' \('fp32'\), got 'fp16'; 'fp16' needs swin\.fp16\.onnx, fusion\.fp16\.onnx"):
        BagScorer(tiny_model, precision="fp16")


def test_default_batch_is_small_on_cpu_and_large_on_gpu(tiny_model):
    assert (scoring.default_batch("cpu"), scoring.default_batch("cuda"), scoring.default_batch("tensorrt")) == (1, 16, 16)
    with BagScorer(tiny_model, backend="ort", device="auto") as pipe:
        assert pipe.swin.device == "cpu" and pipe.batch == 1
    with BagScorer(tiny_model, backend="ort", device="cpu", batch=5) as pipe:
        assert pipe.batch == 5



def test_thread_option_is_checked(tiny_model):
    with pytest.raises(MilmerInputError, match=r"^Invalid value for 'intra_op_threads': expected an integer >= 1 or None, got 0\.$"):
        BagScorer(tiny_model, intra_op_threads=0)


def test_backend_and_device_are_checked_once(tiny_model, monkeypatch):
    """BagScorer checks backend, device and precision once, before loading; the precision plan,
    the model folder, the backend choice and its two runners check them no more (each runner
    still checks that it runs on the device it got: the backend's own rule)."""
    calls: Counter[str] = Counter()

    def spy(module):
        def counted(name, value, allowed):
            calls[f"{module.__name__.rsplit('.', 1)[-1]}:{name}"] += 1
            return check_option(name, value, allowed)

        # raising=False: a layer that does not import check_option today is watched all the same.
        monkeypatch.setattr(module, "check_option", counted, raising=False)

    # Every layer the call passes through; the checks themselves live in milmer.runtime.choices.
    for module in (choices, scoring, precision, model_dir, registry, base):
        spy(module)
    with BagScorer(tiny_model, backend="ort", device="cpu", precision="fp32", intra_op_threads=1) as scorer:
        assert (scorer.swin.device, scorer.fusion.device) == ("cpu", "cpu")
    assert calls == {"choices:backend": 1, "choices:device": 1, "choices:precision": 1, "base:--device": 2}
    # make_runner, the public entry, checks once and builds without checking again.
    calls.clear()
    registry.make_runner("ort", tiny_model / "fusion.onnx", device="cpu")
    assert calls == {"choices:--backend": 1, "choices:--device": 1, "choices:--precision": 1, "base:--device": 1}


@pytest.fixture(scope="module")
def variant_model(tiny_graphs, tmp_path_factory):
    """The tiny model with a real fp16 variant (the export's converter: output Casts, float32 I/O)
    and an 'int8' copy of the fp32 graphs."""
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    spec = tiny_graphs.tiny_spec()
    model = tiny_graphs.write_model_dir(tmp_path_factory.mktemp("variants") / "m", spec, precisions=("fp32", "int8"))
    for stem in ("swin", "fusion"):
        # As milmer export --fp16 does (without importing the torch-side exporter): float32 I/O
        # through Cast nodes, which the converter appends last, so the nodes are re-sorted.
        fp16 = convert_float_to_float16(onnx.load(str(model / f"{stem}.onnx")), keep_io_types=True,
                                        op_block_list=list(DEFAULT_OP_BLOCK_LIST))  # fmt: skip
        known = {i.name for i in fp16.graph.input} | {t.name for t in fp16.graph.initializer} | {""}
        pending, ordered = [onnx.NodeProto.FromString(n.SerializeToString()) for n in fp16.graph.node], []
        while pending:
            ready = [n for n in pending if all(i in known for i in n.input)]
            ordered += ready
            known.update(o for n in ready for o in n.output)
            pending = [n for n in pending if all(n is not r for r in ready)]
        del fp16.graph.node[:]
        fp16.graph.node.extend(ordered)
        onnx.save(fp16, str(model / f"{stem}.fp16.onnx"))
    return model


def _cpu_backends() -> list[str]:
    from milmer.runtime.backends.openvino import OpenVinoRunner

    here = OpenVinoRunner.unavailable_reason("x.onnx", device="cpu", precision="fp32") is None
    return ["ort", "openvino"] if here else ["ort"]


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
@pytest.mark.parametrize("backend", _cpu_backends())
def test_every_cpu_backend_scores_every_graph_precision(variant_model, tiny_graphs, backend, precision):
    """Outputs are found under the spec's graph I/O names on every backend and precision (OpenVINO
    renamed the fp16 graphs' outputs after their Cast nodes: KeyError 'tokens' in score_bags)."""
    rng = np.random.default_rng(4)
    crops = rng.integers(0, 256, (2, 10, 224, 224, 3), dtype=np.uint8)
    eeg = rng.standard_normal((2, 32, 384)).astype(np.float32)
    with BagScorer(variant_model, backend=backend, device="cpu", precision=precision, intra_op_threads=1) as pipe:
        got = pipe.score_bags(eeg, crops)
        spec = pipe.spec
    frames = ((crops / np.float32(255) - np.float32(spec.face.mean)) / np.float32(spec.face.std)).astype(np.float32)
    frames = frames.transpose(0, 1, 4, 2, 3).reshape(20, 3, 224, 224)
    tokens = tiny_graphs.swin_reference(spec, frames).reshape(2, 10, spec.graph.tokens_per_frame, spec.graph.token_dim)
    ref = tiny_graphs.fusion_reference(spec, eeg, tokens)
    # fp16 keeps 11 significand bits: probabilities within a few units of 2**-11.
    atol = 4 * 2.0**-11 if precision == "fp16" else 1e-5
    np.testing.assert_allclose(got["probabilities"], ref["probabilities"], atol=atol)
    np.testing.assert_array_equal(got["selected"], ref["selected"])
