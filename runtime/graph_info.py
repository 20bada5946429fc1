"""An ONNX graph's metadata and inputs/outputs, read without running it.

Used by :mod:`.model_dir` (checking a model folder) and by the backends (a graph's embedded spec
gives its TensorRT optimisation profile). With the ``onnx`` package when installed, else with an
unoptimised ONNX Runtime session (the runtime does not need ``onnx``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .check import MilmerInputError

__all__ = ["SPEC_METADATA_KEY", "ORT_DTYPES", "Dim", "Signature", "GraphInfo", "read_graph_info"]

#: The ``metadata_props`` key under which every milmer graph carries its spec's JSON.
SPEC_METADATA_KEY = "milmer.spec"

#: ONNX Runtime's tensor type strings -> numpy dtypes.
ORT_DTYPES: dict[str, np.dtype] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(bool)": np.dtype(np.bool_),
}

Dim = int | str | None  # fixed size, symbolic name, or unnamed dynamic axis
Signature = dict[str, tuple[np.dtype, tuple[Dim, ...]]]



@dataclass(frozen=True)
class GraphInfo:
    """An ONNX graph's metadata and I/O, read without running it.

    inputs/outputs: name -> (dtype, dims) in graph order; a dim is an int, a symbolic name or None
    """

    metadata: dict[str, str]
    inputs: Signature
    outputs: Signature


def _read_with_onnx(path: Path) -> GraphInfo:
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, OSError) as err:
        raise MilmerInputError(
            f"Cannot read ONNX model {str(path)!r} (corrupt or truncated?): {err}"
        ) from None

    def signature(values: Any, skip: set[str]) -> Signature:
        result: Signature = {}
        for v in values:
            if v.name in skip:
                continue
            tt = v.type.tensor_type
            dims = tuple(
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim
            )
            result[v.name] = (np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)), dims)
        return result

    # Old exporters list initializers among graph inputs; they are weights, not inputs.
    weights = {t.name for t in model.graph.initializer}
    return GraphInfo(
        metadata={p.key: p.value for p in model.metadata_props},
        inputs=signature(model.graph.input, weights),
        outputs=signature(model.graph.output, set()),
    )


def _read_with_ort(path: Path) -> GraphInfo:
    import onnxruntime
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

    options = onnxruntime.SessionOptions()
    # Only the signature is needed: skip graph optimisation, the slow part of session creation.
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except (
        ort_errors.InvalidProtobuf,
        ort_errors.InvalidGraph,
        ort_errors.Fail,
        ort_errors.NoSuchFile,
    ) as err:
        raise MilmerInputError(
            f"Cannot read ONNX model {str(path)!r} (corrupt or truncated?): {err}"
        ) from None

    def signature(args: Any) -> Signature:
        return {a.name: (ORT_DTYPES.get(a.type, np.dtype(object)), tuple(a.shape)) for a in args}

    return GraphInfo(
        metadata=dict(session.get_modelmeta().custom_metadata_map),
        inputs=signature(session.get_inputs()),
        outputs=signature(session.get_outputs()),
    )


def read_graph_info(path: str | os.PathLike[str]) -> GraphInfo:
    """Metadata and I/O of an ONNX file: with the ``onnx`` package when installed (parses the
    file only), else with an unoptimised ONNX Runtime session (the runtime does not need onnx)."""
    path = Path(path)
    try:
        import onnx  # noqa: F401
    except ImportError:
        return _read_with_ort(path)
    return _read_with_onnx(path)
