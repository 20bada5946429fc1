"""The shared part of every backend: lifecycle and input checks (no ONNX Runtime involved)."""

from __future__ import annotations

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.backends.base import Runner, TensorMeta, check_feed


class EchoRunner(Runner):
    """Returns its inputs doubled; records what the base class hands to the hooks."""

    DEVICES = ("cpu",)

    def __init__(self, path, **kw):
        super().__init__(path, device="cpu", precision="fp32", **kw)
        self.calls: list[str] = []
        self.seen: dict[str, np.ndarray] = {}

    def activate_impl(self):
        self.calls.append("activate")

    def deactivate_impl(self):
        self.calls.append("deactivate")

    def input_metadata_impl(self):
        self.calls.append("metadata")
        return {
            "eeg": TensorMeta(np.float32, (None, 32, 384), ("B", None, None)),
            "tokens": TensorMeta(np.float32, (None, 10, 49, 96), ("B", None, None, None)),
        }

    def infer_impl(self, feed):
        self.seen = feed
        return {name: 2 * a for name, a in feed.items()}


@pytest.fixture
def runner(tmp_path):
    path = tmp_path / "g.onnx"
    path.write_bytes(b"x")
    return EchoRunner(path)


def good_feed(b=2):
    rng = np.random.default_rng(0)
    return {
        "eeg": rng.standard_normal((b, 32, 384)).astype(np.float32),
        "tokens": rng.standard_normal((b, 10, 49, 96)).astype(np.float32),
    }


def test_lifecycle_is_lazy_and_idempotent(runner):
    assert runner.calls == [] and not runner.is_active
    with runner as r:
        assert r is runner and runner.is_active
        runner.activate()  # second activation is a no-op
        runner.input_metadata()
        runner.input_metadata()  # cached until deactivation
    assert runner.calls == ["activate", "metadata", "deactivate"]
    assert not runner.is_active
    runner.deactivate()
    assert runner.calls == ["activate", "metadata", "deactivate"]


def test_infer_needs_activation(runner):
    with pytest.raises(RuntimeError, match=r"EchoRunner.infer\(\) needs an active runner"):
        runner.infer(good_feed())


def test_infer_passes_contiguous_arrays_in_input_order(runner):
    feed = good_feed()
    tokens_view = np.asfortranarray(feed["tokens"])
    with runner:
        out = runner.infer({"tokens": tokens_view, "eeg": feed["eeg"]})
    assert list(runner.seen) == ["eeg", "tokens"]
    assert all(a.flags.c_contiguous for a in runner.seen.values())
    assert runner.seen["eeg"] is feed["eeg"]  # already contiguous: no copy
    np.testing.assert_array_equal(out["tokens"], 2 * feed["tokens"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda f: f.pop("tokens"),
            r"^Invalid feed: missing input\(s\) 'tokens'; the graph takes 'eeg', 'tokens'\.$",
        ),
        (
            lambda f: f.update(frames=f["eeg"]),
            r"^Invalid feed: unexpected input\(s\) 'frames'; the graph takes 'eeg', 'tokens'\.$",
        ),
        (
            lambda f: f.update(eeg=f["eeg"].astype(np.float64)),
            r"^Invalid input 'eeg': expected dtype float32, got float64",
        ),
        (
            lambda f: f.update(eeg=f["eeg"].tolist()),
            r"^Invalid input 'eeg': expected a numpy array, got list\.$",
        ),
        (
            lambda f: f.update(eeg=f["eeg"][0]),
            r"^Invalid input 'eeg': expected shape \(B, 32, 384\), got \(32, 384\)\.$",
        ),
        (
            lambda f: f.update(tokens=f["tokens"][:, :8]),
            r"^Invalid input 'tokens': expected shape \(B, 10, 49, 96\), got \(2, 8, 49, 96\)\.$",
        ),
    ],
    ids=["missing", "unexpected", "dtype", "not-array", "rank", "static-dim"],
)
def test_shared_input_checks(runner, change, message):
    feed = good_feed()
    change(feed)
    with runner, pytest.raises(MilmerInputError, match=message):
        runner.infer(feed)
    assert runner.seen == {}  # the backend never saw the bad feed


def test_dynamic_axis_accepts_any_batch(runner):
    with runner:
        for b in (1, 5):
            assert runner.infer(good_feed(b))["eeg"].shape == (b, 32, 384)


def test_describe_shape_labels_dynamic_axes():
    assert TensorMeta(np.float32, (None, 3), (None, None)).describe_shape() == "(?, 3)"
    assert TensorMeta(np.float32, (None,), ("N",)).describe_shape() == "(N,)"
    assert TensorMeta(np.int64, (4, None)).describe_shape() == "(4, ?)"


def test_check_feed_rejects_non_dict():
    with pytest.raises(MilmerInputError, match="expected a dict of input name -> numpy array, got list"):
        check_feed([], {})


def test_constructor_checks(tmp_path):
    with pytest.raises(MilmerInputError, match=r"file not found: .*missing\.onnx"):
        EchoRunner(tmp_path / "missing.onnx")
    other = tmp_path / "model.pt"
    other.write_bytes(b"x")
    with pytest.raises(MilmerInputError, match=r"unsupported file type '\.pt' for 'model\.pt'; expected one of '\.onnx'; the files EchoRunner loads"):
        EchoRunner(other)
    ok = tmp_path / "g.onnx"
    ok.write_bytes(b"x")
    with pytest.raises(
        MilmerInputError, match=r"Invalid value for '--device': expected one of 'cpu', got 'cuda'"
    ):
        Runner.__init__(EchoRunner.__new__(EchoRunner), ok, device="cuda", precision="fp32")
