"""OpenVINO backend: the ``.onnx`` graphs on an x86 CPU with OpenVINO's own kernels.

``openvino`` (the ``openvino`` extra) is imported when the runner is activated, never at module
import. OpenVINO reads the ONNX files directly: fp32 graphs, the fp16 graphs and both int8 kinds
(ONNX Runtime's dynamic MatMulInteger graphs and the static QDQ graphs of
``milmer export --int8 static``, which OpenVINO runs with its int8 kernels).

``inference_precision`` is OpenVINO's ``INFERENCE_PRECISION_HINT``: 'fp32' computes in float32
(set explicitly, because OpenVINO's own default on AMX CPUs is bfloat16); 'bf16' lets it run
matrix products and convolutions in bfloat16 (float32 accumulation) where the CPU has native
bfloat16 instructions (``avx512_bf16`` or ``amx_bf16`` in /proc/cpuinfo). Asking for 'bf16' on a
CPU without them is an error, not a silent fall-back to fp32 or a slow emulation.
"""

from __future__ import annotations

import importlib.util
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from ..check import MilmerInputError, check_compare, check_int, check_option, requires_error
from .base import Device, Precision, Runner, TensorMeta
from .ort import default_threads

__all__ = [
    "OpenVinoRunner",
    "InferencePrecision",
    "INFERENCE_PRECISIONS",
    "BF16_FLAGS",
    "X86_MACHINES",
    "cpu_flags",
    "has_bf16",
]

InferencePrecision = Literal["fp32", "bf16"]
INFERENCE_PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
#: /proc/cpuinfo flags of native bfloat16 arithmetic (AVX512_BF16: Cooper Lake, Zen 4+; AMX: Sapphire Rapids+).
BF16_FLAGS: frozenset[str] = frozenset({"avx512_bf16", "amx_bf16"})
#: ``platform.machine()`` values of x86 CPUs (OpenVINO's CPU plugin also runs on ARM, untested here).
X86_MACHINES: frozenset[str] = frozenset({"x86_64", "amd64", "i386", "i686"})
# Our precision names -> OpenVINO's element-type names for INFERENCE_PRECISION_HINT.
_OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}
_INSTALL_HINT = "install it with `pip install milmer[openvino]`, or use backend='ort'"


def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of the first processor in /proc/cpuinfo (empty where it is missing)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def has_bf16(flags: frozenset[str]) -> bool:
    """Whether ``flags`` include native bfloat16 arithmetic (:data:`BF16_FLAGS`)."""
    return bool(flags & BF16_FLAGS)


def _onnx_dim_labels(path: Path) -> dict[str, tuple[str | None, ...]]:
    """Input name -> the ONNX file's symbolic axis names ('N', 'B'); OpenVINO drops them.
    Empty when ``onnx`` is not installed (messages then show '?')."""
    try:
        import onnx
    except ImportError:
        return {}
    graph = onnx.load(str(path), load_external_data=False).graph
    return {
        i.name: tuple(d.dim_param or None for d in i.type.tensor_type.shape.dim) for i in graph.input
    }


class OpenVinoRunner(Runner):
    """Runs an ``.onnx`` graph with OpenVINO on the CPU.

    device:              'cpu'
    precision:           the graph file's precision ('fp32', 'fp16', 'int8')
    inference_precision: 'fp32' or 'bf16' (see the module docstring); needs a bfloat16 CPU
    num_threads:         OpenVINO's ``INFERENCE_NUM_THREADS``; ``None``: the cores this process may use
    num_streams:         OpenVINO's ``NUM_STREAMS`` (1 to ``num_threads``, default 1): parallel
                         inference streams sharing the threads. The pipeline makes one call at a time, which one
                         stream with every thread serves best; more streams help only callers
                         that run several requests at once
    cpu_flags:           returns the CPU's feature flags (default: read /proc/cpuinfo); for tests

    With the latency hint. The pipeline passes these as ``Pipeline(backend_options={'openvino':
    {...}})`` (validated by :func:`~.registry.check_backend_options`).
    """

    DEVICES: ClassVar[tuple[str, ...]] = ("cpu",)
    AUTO_DEVICES: ClassVar[tuple[str, ...]] = ("cpu",)
    #: ``auto`` picks OpenVINO for float graphs only: its int8 ran slower than ONNX Runtime's int8
    #: on every CPU measured (2-core AMD EPYC, AVX2: dynamic 1782 vs 740 ms, static QDQ 1206 vs
    #: 946 ms per bag; AVX-512 VNNI host: 0.62x ONNX Runtime fp32) and slower than its own fp32
    #: on the AVX2 one. ``--backend openvino --precision int8`` still runs them.
    AUTO_PRECISIONS: ClassVar[tuple[str, ...] | None] = ("fp32", "fp16")
    AUTO_PRECISION_SKIP: ClassVar[str] = (
        "auto leaves int8 graphs to ONNX Runtime (OpenVINO's int8 measured slower on CPUs); "
        "--backend openvino runs them"
    )

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        device: Device = "cpu",
        precision: Precision = "fp32",
        inference_precision: InferencePrecision = "fp32",
        num_threads: int | None = None,
        num_streams: int = 1,
        cpu_flags: Callable[[], frozenset[str]] | None = None,
    ) -> None:
        super().__init__(model_path, device=device, precision=precision)
        check_int("num_threads", num_threads, low=1, allow_none=True)
        check_int("num_streams", num_streams, low=1)
        reason = self.unavailable_reason(
            self.model_path,
            device=device,
            precision=precision,
            inference_precision=inference_precision,
            cpu_flags=cpu_flags,
        )
        if reason is not None:
            raise MilmerInputError(reason)
        self.inference_precision = inference_precision
        self.num_threads = num_threads or default_threads()
        # OpenVINO would quietly run fewer streams: each needs at least one thread.
        check_compare("num_streams", num_streams, "<=", "num_threads", self.num_threads, hint="each stream needs a thread of its own")
        self.num_streams = num_streams
        self._compiled: Any = None
        self._request: Any = None
        self._outputs: list[tuple[str, Any]] = []

    @classmethod
    def unavailable_reason(
        cls, model_path: str | os.PathLike[str], *, device: str, precision: Precision, **options: object
    ) -> str | None:
        """Not an x86 CPU, ``openvino`` not installed, or 'bf16' asked of a CPU without bfloat16."""
        inference_precision = options.get("inference_precision", "fp32")
        check_option("inference_precision", inference_precision, INFERENCE_PRECISIONS)
        machine = platform.machine().lower()
        if machine not in X86_MACHINES:
            return f"OpenVINO runs on x86 CPUs here, this machine is {platform.machine()!r}; use backend='ort'."
        if importlib.util.find_spec("openvino") is None:
            return f"OpenVINO is not installed; {_INSTALL_HINT}."
        if inference_precision == "bf16":
            read_flags = options.get("cpu_flags") or cpu_flags
            flags = read_flags()  # type: ignore[operator]
            if not has_bf16(flags):
                return str(requires_error(
                    "inference_precision", "bf16",
                    f"a CPU with native bfloat16 arithmetic ({' or '.join(sorted(BF16_FLAGS))} in /proc/cpuinfo)",
                    "a CPU with neither", hint="use inference_precision='fp32' (or an int8 graph for speed)",
                ))
        return None

    def activate_impl(self) -> None:
        try:
            import openvino
        except ImportError as err:
            raise MilmerInputError(f"OpenVINO is not available ({err}); {_INSTALL_HINT}.") from None
        core = openvino.Core()
        config = {
            "INFERENCE_PRECISION_HINT": _OV_PRECISION[self.inference_precision],
            "INFERENCE_NUM_THREADS": self.num_threads,
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": self.num_streams,
        }
        try:
            model = core.read_model(str(self.model_path))
        except RuntimeError as err:
            raise MilmerInputError(
                f"Cannot load ONNX model {str(self.model_path)!r} (corrupt, truncated or not an ONNX "
                f"file? re-export it): {err}"
            ) from None
        self._labels = _onnx_dim_labels(self.model_path)
        self._model_inputs = list(model.inputs)
        # Outputs are named after the ONNX graph (the read model), matched to the compiled ports by
        # position: compiling can rename a port after the node that now produces it (the fp16 graphs'
        # output Cast became 'graph_output_cast_0' instead of 'tokens').
        names = [port.get_any_name() for port in model.outputs]
        self._compiled = core.compile_model(model, "CPU", config)
        self._request = self._compiled.create_infer_request()
        self._outputs = list(zip(names, range(len(names)), strict=True))

    def deactivate_impl(self) -> None:
        self._request = None
        self._compiled = None
        self._outputs = []

    def input_metadata_impl(self) -> dict[str, TensorMeta]:
        meta: dict[str, TensorMeta] = {}
        for port in self._model_inputs:
            name = port.get_any_name()
            try:
                dtype = np.dtype(port.get_element_type().to_dtype())
            except (RuntimeError, TypeError):
                raise MilmerInputError(
                    f"Unsupported input {name!r} of type {port.get_element_type()} in {self.model_path.name!r}."
                ) from None
            shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
            labels = self._labels.get(name)
            if labels is not None and len(labels) != len(shape):
                labels = None
            meta[name] = TensorMeta(dtype, shape, labels)
        return meta

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # By position, like the outputs: ``feed`` is in the graph's input order (Runner.infer).
        results = self._request.infer(list(feed.values()))
        # The request reuses its output buffers on the next call: hand out copies.
        return {name: np.array(results[index], copy=True) for name, index in self._outputs}
