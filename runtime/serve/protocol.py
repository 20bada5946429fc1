"""What the served model takes and returns: names, per-bag shapes and Triton dtypes.

One bag per batch row; Triton's dynamic batcher stacks the rows of concurrent requests::

    inputs   eeg           (B, C, T)        FP32   EEG window, spec channels, microvolts
             frames        (B, F, S, S, 3)  UINT8  RGB face crops (not normalised)
    outputs  logits        (B, K)           FP32
             probabilities (B, K)           FP32
             mil_weights   (B, F)           FP32   MIL weight of each frame (sums to 1)
             selected      (B, top_k)       INT64  frames the fusion attended to, strongest first

These are the inputs and outputs of :meth:`milmer.runtime.scoring.BagScorer.score_bags`; the
model repository written by ``milmer export-triton`` serves the same tensors, so one client
talks to both servers. The served model carries the model's ``spec.json`` in its Triton model
configuration (``parameters["milmer.spec"]``, the exported repository) or answers with it from the
companion model ``milmer_spec`` (``milmer serve``: PyTriton's Python backend keeps no custom
parameters): a client reads the input contract from the server instead of needing the model
directory.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..spec import ModelSpec

__all__ = ["MODEL_NAME", "SPEC_PARAMETER", "SPEC_MODEL_NAME", "INPUTS", "OUTPUTS", "TensorInfo", "bag_tensors"]

#: The Triton model name of the bag scorer (both the PyTriton server and the exported ensemble).
MODEL_NAME = "milmer"
#: Model-configuration parameter holding the spec JSON.
SPEC_PARAMETER = "milmer.spec"
#: Companion model answering any request with the spec JSON: output 'spec' (1,) BYTES.
SPEC_MODEL_NAME = "milmer_spec"
INPUTS: tuple[str, ...] = ("eeg", "frames")
OUTPUTS: tuple[str, ...] = ("logits", "probabilities", "mil_weights", "selected")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a bag: name, per-bag shape (no batch axis), numpy dtype name, Triton type."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    triton_dtype: str


_TRITON = {"float32": "FP32", "uint8": "UINT8", "int64": "INT64"}


def bag_tensors(spec: ModelSpec) -> tuple[tuple[TensorInfo, ...], tuple[TensorInfo, ...]]:
    """(inputs, outputs) of the served model for ``spec``, per bag, in :data:`INPUTS`/:data:`OUTPUTS` order."""
    f, s = spec.face.frames_per_window, spec.face.frame_size
    shapes_in = {"eeg": ((spec.eeg.n_channels, spec.eeg.window_samples), "float32"), "frames": ((f, s, s, 3), "uint8")}
    shapes_out = {
        "logits": ((spec.n_classes,), "float32"),
        "probabilities": ((spec.n_classes,), "float32"),
        "mil_weights": ((f,), "float32"),
        "selected": ((spec.graph.top_k,), "int64"),
    }
    make = lambda table: tuple(TensorInfo(n, shp, dt, _TRITON[dt]) for n, (shp, dt) in table.items())  # noqa: E731
    return make(shapes_in), make(shapes_out)
