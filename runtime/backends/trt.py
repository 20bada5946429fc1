"""Native TensorRT backend (TensorRT >= 10 Python API, CUDA memory through ``cuda-python``).

UNTESTED IN OUR CI: TensorRT's libraries come from NVIDIA's own package index and our CI has no
GPU, so only the import guard and the pure-Python engine cache (``trt_cache.py``) are tested
there; ``tests/runtime/backends/test_trt.py`` runs the rest where ``tensorrt`` is installed. The
code follows the TensorRT 10 name-based tensor API (``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``) and the ``cudart`` bindings of ``cuda-python``.

``tensorrt`` and ``cuda-python`` are imported inside functions only, so importing this module
never needs them. Engines are found in a cache folder by :mod:`.trt_cache` and checked against
this machine (TensorRT version, GPU, compute capability), the graph's hash and the precision
before they are deserialised.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .._check import MilmerInputError
from .._hints import export_hint
from .base import Precision, Runner, TensorMeta
from .trt_cache import (
    ENGINE_DIRNAME,
    EngineMeta,
    EngineTarget,
    check_engine_meta,
    check_in_profile,
    file_sha256,
    find_engine,
    read_meta,
)

__all__ = ["TrtRunner", "import_tensorrt", "import_cudart", "cuda_device_present", "local_target"]

_INSTALL_HINT = (
    "install TensorRT >= 10 and cuda-python (`pip install milmer[trt] cuda-python`; on Jetson use "
    "JetPack's TensorRT), or use backend='ort'"
)


def import_tensorrt() -> Any:
    """``import tensorrt`` (>= 10), or a :class:`MilmerInputError` saying how to install it."""
    try:
        import tensorrt
    except ImportError as err:
        raise MilmerInputError(f"TensorRT is not available ({err}); {_INSTALL_HINT}.") from None
    major = int(str(tensorrt.__version__).split(".")[0])
    if major < 10:
        raise MilmerInputError(
            f"TensorRT {tensorrt.__version__} is too old: milmer needs TensorRT >= 10; {_INSTALL_HINT}."
        )
    return tensorrt


def import_cudart() -> Any:
    """The CUDA runtime bindings of ``cuda-python`` (new and old module layouts)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as err:
            raise MilmerInputError(f"cuda-python is not available ({err}); {_INSTALL_HINT}.") from None
    return cudart


def _cuda(cudart: Any, result: Any, what: str) -> Any:
    """Unpack a ``cudart`` call's ``(error, *values)`` tuple; raise on a CUDA error."""
    err, *values = result
    if err != cudart.cudaError_t.cudaSuccess:
        name = getattr(err, "name", str(err))
        raise RuntimeError(f"CUDA error in {what}: {name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def cuda_device_present() -> bool:
    """True when ``cuda-python`` loads and sees at least one CUDA device."""
    try:
        cudart = import_cudart()
        count = _cuda(cudart, cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
    except (MilmerInputError, RuntimeError):
        return False
    return bool(count)


def local_target(
    precision: Precision, *, onnx_sha256: str | None = None, device_index: int = 0
) -> EngineTarget:
    """This machine's TensorRT version and GPU (``device_index``) as an :class:`EngineTarget`.

    Export uses it to label the engines it builds; the runner to pick a fitting one.
    """
    trt = import_tensorrt()
    cudart = import_cudart()
    props = _cuda(cudart, cudart.cudaGetDeviceProperties(device_index), "cudaGetDeviceProperties")
    name = props.name
    if isinstance(name, bytes):
        name = name.split(b"\0", 1)[0].decode()
    return EngineTarget(
        tensorrt_version=str(trt.__version__),
        gpu_name=str(name),
        compute_capability=f"{props.major}.{props.minor}",
        precision=precision,
        onnx_sha256=onnx_sha256,
    )


class TrtRunner(Runner):
    """Runs a prebuilt TensorRT engine for an ``.onnx`` graph (or an ``.engine`` file directly).

    model_path:   the ONNX graph (its engine is looked up in ``engine_dir`` by the graph's hash,
                  this machine and ``precision``) or an ``.engine`` with its ``.json`` beside it
    engine_dir:   the engine cache; ``None``: an ``engines`` folder beside ``model_path``
    device_index: which CUDA device
    """

    DEVICES: ClassVar[tuple[str, ...]] = ("cuda",)
    SUFFIXES: ClassVar[tuple[str, ...]] = (".onnx", ".engine")

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        device: str = "cuda",
        precision: Precision = "fp32",
        engine_dir: str | os.PathLike[str] | None = None,
        device_index: int = 0,
    ) -> None:
        super().__init__(model_path, device=device, precision=precision)
        self.engine_dir = (
            Path(engine_dir) if engine_dir is not None else self.model_path.parent / ENGINE_DIRNAME
        )
        self.device_index = device_index
        self.engine_path: Path | None = None
        self.engine_meta: EngineMeta | None = None
        self._state: dict[str, Any] = {}

    @classmethod
    def unavailable_reason(
        cls, model_path: str | os.PathLike[str], *, device: str, precision: Precision, **options: Any
    ) -> str | None:
        """Why no TensorRT here: no TensorRT, no CUDA device, or no engine fitting this machine."""
        try:
            import_tensorrt()
        except MilmerInputError as err:
            return str(err)
        if not cuda_device_present():
            return "no CUDA device found"
        try:
            cls(model_path, device=device, precision=precision, **options).resolve_engine()
        except MilmerInputError as err:
            return str(err)
        return None

    def resolve_engine(self) -> tuple[Path, EngineMeta]:
        """The engine this runner will load, checked against this machine (needs TensorRT + CUDA)."""
        if self.model_path.suffix.lower() == ".engine":
            meta = read_meta(self.model_path)
            check_engine_meta(
                meta,
                local_target(self.precision, device_index=self.device_index),
                engine=f"engine {self.model_path.name!r}",
            )
            return self.model_path, meta
        target = local_target(
            self.precision, onnx_sha256=file_sha256(self.model_path), device_index=self.device_index
        )
        return find_engine(self.engine_dir, target)

    def activate_impl(self) -> None:
        trt = import_tensorrt()
        cudart = import_cudart()
        _cuda(cudart, cudart.cudaSetDevice(self.device_index), "cudaSetDevice")
        engine_path, meta = self.resolve_engine()
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if engine is None:
            raise MilmerInputError(
                f"Cannot load TensorRT engine {str(engine_path)!r} (corrupt or truncated?); rebuild with: "
                f"{export_hint(self.precision, trt=True)}."
            )
        context = engine.create_execution_context()
        if context is None:
            raise RuntimeError(f"TensorRT could not create an execution context for {engine_path.name!r}.")
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        stream = _cuda(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.engine_path, self.engine_meta = engine_path, meta
        self._state = {
            "trt": trt,
            "cudart": cudart,
            "logger": logger,  # TensorRT keeps a reference only; it must outlive the runtime
            "runtime": runtime,
            "engine": engine,
            "context": context,
            "inputs": inputs,
            "outputs": outputs,
            "dtypes": dtypes,
            "stream": stream,
            "buffers": {},  # name -> (device pointer, capacity in bytes)
        }

    def deactivate_impl(self) -> None:
        state, self._state = self._state, {}
        cudart = state["cudart"]
        try:
            _cuda(cudart, cudart.cudaStreamSynchronize(state["stream"]), "cudaStreamSynchronize")
            for ptr, _ in state["buffers"].values():
                _cuda(cudart, cudart.cudaFree(ptr), "cudaFree")
            _cuda(cudart, cudart.cudaStreamDestroy(state["stream"]), "cudaStreamDestroy")
        finally:
            # The context must go before the engine, the engine before the runtime.
            del state["context"]
            del state["engine"]
            del state["runtime"]
            del state["logger"]

    def input_metadata_impl(self) -> dict[str, TensorMeta]:
        engine = self._state["engine"]
        meta: dict[str, TensorMeta] = {}
        for name in self._state["inputs"]:
            shape = tuple(int(d) if d >= 0 else None for d in engine.get_tensor_shape(name))
            meta[name] = TensorMeta(self._state["dtypes"][name], shape)
        return meta

    def _buffer(self, name: str, nbytes: int) -> int:
        """A device buffer of at least ``nbytes`` for tensor ``name``, grown (never shrunk) as needed."""
        cudart = self._state["cudart"]
        buffers = self._state["buffers"]
        ptr, capacity = buffers.get(name, (None, 0))
        if nbytes > capacity:
            if ptr is not None:
                _cuda(cudart, cudart.cudaFree(ptr), "cudaFree")
                del buffers[name]
            ptr = _cuda(cudart, cudart.cudaMalloc(nbytes), "cudaMalloc")
            buffers[name] = (ptr, nbytes)
        return int(ptr)

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        s = self._state
        cudart, context, stream = s["cudart"], s["context"], s["stream"]
        assert self.engine_meta is not None
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name in s["inputs"]:
            array = feed[name]
            check_in_profile(name, array.shape, self.engine_meta.profile)
            if not context.set_input_shape(name, tuple(array.shape)):
                raise MilmerInputError(
                    f"Invalid input {name!r}: TensorRT rejected shape {tuple(array.shape)} for "
                    f"engine {str(self.engine_path)!r}."
                )
            ptr = self._buffer(name, max(array.nbytes, 1))
            _cuda(
                cudart,
                cudart.cudaMemcpyAsync(ptr, array.ctypes.data, array.nbytes, h2d, stream),
                "cudaMemcpyAsync",
            )
            context.set_tensor_address(name, ptr)
        results: dict[str, np.ndarray] = {}
        for name in s["outputs"]:
            shape = tuple(int(d) for d in context.get_tensor_shape(name))
            results[name] = np.empty(shape, dtype=s["dtypes"][name])
            context.set_tensor_address(name, self._buffer(name, max(results[name].nbytes, 1)))
        if not context.execute_async_v3(int(stream)):
            raise RuntimeError(f"TensorRT execution failed for {self.engine_path}; see TensorRT's log above.")
        for name, out in results.items():
            ptr = s["buffers"][name][0]
            _cuda(
                cudart,
                cudart.cudaMemcpyAsync(out.ctypes.data, ptr, out.nbytes, d2h, stream),
                "cudaMemcpyAsync",
            )
        _cuda(cudart, cudart.cudaStreamSynchronize(stream), "cudaStreamSynchronize")
        return results
