"""Reduced-precision variants of the fp32 graphs, and how well they agree with fp32.

- **fp16** (``swin.fp16.onnx``, ``fusion.fp16.onnx``): :mod:`.fp16`.
- **int8** static (QDQ, calibrated) or dynamic: :mod:`.int8`.

Agreement is measured end to end (swin -> fusion) against the fp32 graphs in ONNX Runtime on
the same bags: top-1 agreement, ``selected`` agreement and max abs differences.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..runtime.model_dir import GRAPHS, graph_filename
from ..runtime.spec import ModelSpec
from .fp16 import FP16_KEEP_FLOAT32, convert_fp16, fp16_op_block_list
from .inputs import InputSet
from .int8 import (
    GELU_OPSET,
    INT8_METHODS,
    REDUCE_RANGE_WHY,
    Int8Method,
    make_int8_static,
    quantize_int8,
    quantize_int8_static,
    static_calibration_feeds,
    with_onnx_gelu,
)
from .verify import OnnxModel

__all__ = [
    "Variant",
    "VARIANTS",
    "FP16_KEEP_FLOAT32",
    "REDUCE_RANGE_WHY",
    "Int8Method",
    "INT8_METHODS",
    "Agreement",
    "fp16_op_block_list",
    "convert_fp16",
    "quantize_int8",
    "quantize_int8_static",
    "static_calibration_feeds",
    "make_int8_static",
    "make_variant",
    "GELU_OPSET",
    "with_onnx_gelu",
    "agreement",
]

Variant = Literal["fp16", "int8"]
VARIANTS: tuple[str, ...] = ("fp16", "int8")


def make_variant(model_dir: str | os.PathLike[str], precision: Variant, spec: ModelSpec) -> tuple[Path, Path]:
    """Write both graphs of ``precision`` next to the fp32 ones in ``model_dir``; returns their paths."""
    model_dir = Path(model_dir)
    convert = convert_fp16 if precision == "fp16" else quantize_int8
    paths = [
        convert(model_dir / graph_filename(g, "fp32"), model_dir / graph_filename(g, precision), spec) for g in GRAPHS
    ]
    return paths[0], paths[1]


@dataclass(frozen=True)
class Agreement:
    """A variant vs fp32 on the same bags (both in ONNX Runtime on the CPU).

    top1_agreement:     fraction of bags with the same arg-max class
    selected_agreement: fraction of bags with the same selected frames
    max_abs_*:          largest absolute difference of that output
    finite:             every variant output is finite (no fp16 overflow)
    """

    precision: str
    inputs: str
    n_bags: int
    top1_agreement: float
    selected_agreement: float
    max_abs_probabilities: float
    max_abs_logits: float
    max_abs_tokens: float
    finite: bool


def agreement(
    model_dir: str | os.PathLike[str], precisions: list[Variant], spec: ModelSpec, input_sets: list[InputSet]
) -> list[Agreement]:
    """One :class:`Agreement` per precision and input set for the graphs in ``model_dir``."""
    model_dir = Path(model_dir)
    logits, probs, _, selected = spec.graph.fusion_outputs

    def graphs(precision: str) -> list[Path]:
        return [model_dir / graph_filename(g, precision) for g in GRAPHS]

    with OnnxModel(*graphs("fp32"), spec) as ref_model:
        references = [ref_model.run(inputs) for inputs in input_sets]
    results = []
    for precision in precisions:
        with OnnxModel(*graphs(precision), spec, precision=precision) as model:
            for inputs, (ref_tokens, ref) in zip(input_sets, references):
                tokens, out = model.run(inputs)
                finite = all(np.isfinite(a).all() for a in (tokens, out[logits], out[probs]))
                results.append(
                    Agreement(
                        precision=precision,
                        inputs=inputs.name,
                        n_bags=inputs.n_bags,
                        top1_agreement=float(np.mean(out[probs].argmax(1) == ref[probs].argmax(1))),
                        selected_agreement=float(np.mean((out[selected] == ref[selected]).all(1))),
                        max_abs_probabilities=float(np.abs(out[probs] - ref[probs]).max()),
                        max_abs_logits=float(np.abs(out[logits] - ref[logits]).max()),
                        max_abs_tokens=float(np.abs(tokens - ref_tokens).max()),
                        finite=bool(finite),
                    )
                )
    return results
