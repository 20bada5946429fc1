"""Every export checks itself: ONNX checker, then ONNX Runtime against PyTorch.

For each input set (random and demo bags, see :mod:`.inputs`) three comparisons are made, the
way timm's ``check_forward`` does for one graph:

- ``swin``:       swin.onnx vs ``forward_backbone`` on the same frames (output ``tokens``);
- ``fusion``:     fusion.onnx vs ``forward_fusion`` + softmax on the same EEG and PyTorch tokens;
- ``end-to-end``: swin.onnx -> fusion.onnx vs the PyTorch model, what a user sees.

A float output passes when ``|onnx - torch| <= atol + rtol * |torch|`` everywhere (numpy's
``allclose``). The default ``atol = rtol = 1e-4`` is ~25x the error measured for a full-size
Swin-T (tokens within 4e-6 of PyTorch, values up to ~4.5): float32 summation order differs
between ONNX Runtime and PyTorch, so bit-exactness is not expected, while every export bug seen
(a batch size baked into the graph, a wrong mask) is off by 1e-3 or more. ``selected`` (int64)
must match exactly, except in rows where PyTorch's MIL weights of the last selected and the
first unselected frame tie within the same tolerance (either choice is then correct).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..runtime.backends.base import Precision
from ..runtime.backends.ort import OrtRunner
from ..runtime.spec import ModelSpec
from .inputs import InputSet

if TYPE_CHECKING:
    from ..training.model import MilmerModel

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "OutputError",
    "ParityCheck",
    "ExportParityError",
    "check_onnx_file",
    "compare_float",
    "compare_selected",
    "OnnxModel",
    "run_torch",
    "verify_export",
    "format_checks",
]

DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-4


class ExportParityError(RuntimeError):
    """An exported graph disagrees with PyTorch beyond the tolerance."""


@dataclass(frozen=True)
class OutputError:
    """How far one output of ONNX Runtime is from PyTorch's.

    max_rel:         max of ``|onnx - torch| / max(|torch|, atol)`` (the floor keeps values
                     near zero from dominating)
    mismatched_rows: for ``selected``: rows whose selected frames differ
    tied_rows:       of those, rows where the MIL weights tie within tolerance (allowed)
    """

    name: str
    max_abs: float
    max_rel: float
    atol: float
    rtol: float
    passed: bool
    mismatched_rows: int = 0
    tied_rows: int = 0


@dataclass(frozen=True)
class ParityCheck:
    """One comparison: ``graph`` ('swin', 'fusion', 'end-to-end') on input set ``inputs``."""

    graph: str
    inputs: str
    n_bags: int
    outputs: tuple[OutputError, ...]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    def to_dict(self) -> dict[str, object]:
        return {
            "graph": self.graph,
            "inputs": self.inputs,
            "n_bags": self.n_bags,
            "passed": self.passed,
            "outputs": [asdict(o) for o in self.outputs],
        }


def check_onnx_file(path: str | os.PathLike[str]) -> None:
    """``onnx.checker.check_model`` with ``full_check`` (strict shape inference) on the file."""
    import onnx

    try:
        onnx.checker.check_model(os.fspath(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ExportParityError(f"{Path(path).name} fails the ONNX checker: {err}") from None


def compare_float(name: str, got: np.ndarray, ref: np.ndarray, *, atol: float, rtol: float) -> OutputError:
    """Compare one float output (see module doc)."""
    got64, ref64 = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    if got64.shape != ref64.shape:
        return OutputError(name, float("inf"), float("inf"), atol, rtol, False)
    diff = np.abs(got64 - ref64)
    finite = bool(np.isfinite(got64).all())
    max_abs = float(diff.max()) if diff.size else 0.0
    max_rel = float((diff / np.maximum(np.abs(ref64), atol)).max()) if diff.size else 0.0
    passed = finite and bool(np.all(diff <= atol + rtol * np.abs(ref64)))
    if not finite:
        max_abs = max_rel = float("inf")
    return OutputError(name, max_abs, max_rel, atol, rtol, passed)


def compare_selected(
    name: str, got: np.ndarray, ref: np.ndarray, ref_weights: np.ndarray, *, atol: float, rtol: float
) -> OutputError:
    """Compare ``selected`` (B, K) int64 exactly, allowing rows whose choice is a tie.

    ref_weights: (B, F) the reference MIL weights; a row may differ only if the K-th and
    (K+1)-th largest weights are within ``atol + rtol * w_K`` of each other.
    """
    if got.shape != ref.shape:
        return OutputError(name, float("inf"), float("inf"), atol, rtol, False, len(ref), 0)
    rows = np.flatnonzero((got != ref).any(axis=1))
    k = ref.shape[1]
    tied = 0
    for row in rows:
        w = np.sort(np.asarray(ref_weights[row], np.float64))[::-1]
        if k < w.size and w[k - 1] - w[k] <= atol + rtol * abs(w[k - 1]):
            tied += 1
    max_abs = float(np.abs(got.astype(np.int64) - ref.astype(np.int64)).max()) if got.size else 0.0
    return OutputError(name, max_abs, 0.0, atol, rtol, tied == len(rows), int(len(rows)), tied)


class OnnxModel:
    """Both graphs of a model in ONNX Runtime (CPU), loaded once: ``with OnnxModel(...) as m:``."""

    def __init__(
        self,
        swin_path: str | os.PathLike[str],
        fusion_path: str | os.PathLike[str],
        spec: ModelSpec,
        *,
        precision: Precision = "fp32",
    ) -> None:
        self.spec = spec
        self.swin = OrtRunner(swin_path, precision=precision)
        self.fusion = OrtRunner(fusion_path, precision=precision)

    def __enter__(self) -> OnnxModel:
        self.swin.activate()
        self.fusion.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.swin.deactivate()
        self.fusion.deactivate()

    def backbone(self, frames: np.ndarray) -> np.ndarray:
        """frames (B, F, 3, S, S) -> tokens (B*F, P, H)."""
        g = self.spec.graph
        flat = np.ascontiguousarray(frames.reshape(-1, *frames.shape[2:]))  # (B*F, 3, S, S)
        return self.swin.infer({g.backbone_input: flat})[g.backbone_output]

    def head(self, eeg: np.ndarray, tokens: np.ndarray) -> dict[str, np.ndarray]:
        """eeg (B, C, T), tokens (B*F, P, H) -> fusion outputs by name."""
        g = self.spec.graph
        bag_tokens = np.ascontiguousarray(tokens.reshape(len(eeg), -1, *tokens.shape[1:]))  # (B, F, P, H)
        return self.fusion.infer(dict(zip(g.fusion_inputs, (eeg, bag_tokens))))

    def run(self, inputs: InputSet) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Both graphs, end to end -> (tokens (B*F, P, H), fusion outputs by name)."""
        tokens = self.backbone(inputs.frames)
        return tokens, self.head(inputs.eeg, tokens)


def run_torch(model: MilmerModel, spec: ModelSpec, inputs: InputSet) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The PyTorch reference -> (tokens (B*F, P, H), fusion outputs by ``spec.graph`` names)."""
    import torch

    from .onnx_graphs import BackboneGraph, FusionGraph

    b, f = inputs.frames.shape[:2]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            frames = torch.from_numpy(inputs.frames).flatten(0, 1)  # (B*F, 3, S, S)
            tokens = BackboneGraph(model)(frames)  # (B*F, P, H)
            outs = FusionGraph(model)(torch.from_numpy(inputs.eeg), tokens.reshape(b, f, *tokens.shape[1:]))
    finally:
        model.train(was_training)
    return tokens.numpy(), {name: t.numpy() for name, t in zip(spec.graph.fusion_outputs, outs)}


def _compare_fusion(
    got: dict[str, np.ndarray], ref: dict[str, np.ndarray], spec: ModelSpec, atol: float, rtol: float
) -> tuple[OutputError, ...]:
    logits, probs, weights, selected = spec.graph.fusion_outputs
    floats = tuple(compare_float(n, got[n], ref[n], atol=atol, rtol=rtol) for n in (logits, probs, weights))
    return (*floats, compare_selected(selected, got[selected], ref[selected], ref[weights], atol=atol, rtol=rtol))


def verify_export(
    model: MilmerModel,
    spec: ModelSpec,
    swin_path: str | os.PathLike[str],
    fusion_path: str | os.PathLike[str],
    input_sets: list[InputSet],
    *,
    atol: float | None = None,
    rtol: float | None = None,
) -> list[ParityCheck]:
    """Check both graphs (ONNX checker, then ONNX Runtime vs PyTorch on every input set).

    Returns every :class:`ParityCheck`; raises :class:`ExportParityError` listing them when
    any output is over tolerance. ``atol``/``rtol`` default to :data:`DEFAULT_ATOL`/``RTOL``.
    """
    atol = DEFAULT_ATOL if atol is None else atol
    rtol = DEFAULT_RTOL if rtol is None else rtol
    check_onnx_file(swin_path)
    check_onnx_file(fusion_path)
    g = spec.graph
    checks: list[ParityCheck] = []
    with OnnxModel(swin_path, fusion_path, spec) as onnx_model:
        for inputs in input_sets:
            ref_tokens, ref = run_torch(model, spec, inputs)
            tokens, end_to_end = onnx_model.run(inputs)
            fusion_only = onnx_model.head(inputs.eeg, ref_tokens)
            n = inputs.n_bags
            swin_error = compare_float(g.backbone_output, tokens, ref_tokens, atol=atol, rtol=rtol)
            checks.append(ParityCheck("swin", inputs.name, n, (swin_error,)))
            checks.append(ParityCheck("fusion", inputs.name, n, _compare_fusion(fusion_only, ref, spec, atol, rtol)))
            checks.append(ParityCheck("end-to-end", inputs.name, n, _compare_fusion(end_to_end, ref, spec, atol, rtol)))
    if not all(c.passed for c in checks):
        raise ExportParityError(
            "Exported graphs disagree with PyTorch beyond tolerance (no model directory written):\n"
            + format_checks(checks)
        )
    return checks


def format_checks(checks: list[ParityCheck]) -> str:
    """A plain-text table: one line per output of every check."""
    lines = [f"{'graph':<11} {'inputs':<8} {'output':<14} {'max abs':>10} {'max rel':>10}  result"]
    for c in checks:
        for o in c.outputs:
            extra = f" ({o.mismatched_rows} rows differ, {o.tied_rows} ties)" if o.mismatched_rows else ""
            verdict = "ok" if o.passed else f"FAIL (atol {o.atol:g}, rtol {o.rtol:g})"
            lines.append(
                f"{c.graph:<11} {c.inputs:<8} {o.name:<14} {o.max_abs:>10.3g} {o.max_rel:>10.3g}  {verdict}{extra}"
            )
    return "\n".join(lines)
