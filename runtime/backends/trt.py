"""Native TensorRT backend (TensorRT 10.x and 11.x Python API, CUDA memory through ``cuda-python``).

NEVER RUN ON A GPU by this project: TensorRT's libraries come from NVIDIA's own package index and
our CI has no GPU. ``tests/runtime/backends/fake_tensorrt.py`` holds typed stand-ins for the
TensorRT 10.3 (JetPack 6) and 11.x Python surfaces and for ``cudart``, each exposing only the
attributes that version has, and the tests drive this module through them; the engine tests in
``test_trt.py`` run the real thing where ``tensorrt``, ``cuda-python`` and a GPU are present.
Only APIs present in both 10.3 and 11.x are used: the name-based tensor API
(``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``,
``get_tensor_profile_shape``) and the ``cudart`` bindings of ``cuda-python`` 12.x (JetPack 6 is
CUDA 12; cuda-python 13 needs a CUDA 13 driver).

``tensorrt`` and ``cuda-python`` are imported inside functions only, so importing this module
never needs them. Engines are found in a cache folder by :mod:`.trt_cache` and checked against
this machine (TensorRT version, GPU, compute capability), the graph's hash and the precision
before they are deserialised; after deserialising, the engine's I/O names, dtypes and
optimisation profile are checked against its metadata (:func:`check_engine`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..check import MilmerInputError
from ..hints import export_hint
from .base import Precision, Runner, TensorMeta
from .trt_cache import (
    ENGINE_DIRNAME,
    EngineMeta,
    EngineTarget,
    Profile,
    check_engine_meta,
    check_in_profile,
    file_sha256,
    find_engine,
    read_meta,
)

__all__ = [
    "TrtRunner",
    "import_tensorrt",
    "import_cudart",
    "tensorrt_major",
    "cuda_device_present",
    "local_target",
    "numpy_dtype",
    "engine_io",
    "check_engine",
]

_INSTALL_HINT = (
    "install TensorRT >= 10 and cuda-python 12 (`pip install \"milmer[trt]\"`; on Jetson use "
    "JetPack's TensorRT), or use --backend ort"
)
#: What a probe for 'auto' may meet when TensorRT or CUDA is half-installed or a driver call fails.
PROBE_ERRORS: tuple[type[BaseException], ...] = (MilmerInputError, RuntimeError, OSError, ImportError)


def import_tensorrt() -> Any:
    """``import tensorrt`` (>= 10), or a :class:`MilmerInputError` saying how to install it."""
    try:
        import tensorrt
    except (ImportError, OSError) as err:  # OSError: the module is there, libnvinfer is not
        raise MilmerInputError(f"TensorRT is not available ({err}); {_INSTALL_HINT}.") from None
    major = tensorrt_major(tensorrt)
    if major < 10:
        raise MilmerInputError(
            f"TensorRT {tensorrt.__version__} is too old: milmer needs TensorRT >= 10; {_INSTALL_HINT}."
        )
    return tensorrt


def tensorrt_major(trt: Any) -> int:
    """The major version of the ``tensorrt`` module ``trt`` (10 on JetPack 6, 11 from pip today)."""
    try:
        return int(str(trt.__version__).split(".")[0])
    except ValueError:
        raise MilmerInputError(f"Unreadable TensorRT version {trt.__version__!r}; {_INSTALL_HINT}.") from None


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
    except PROBE_ERRORS:
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


def numpy_dtype(trt: Any, dtype: Any) -> np.dtype:
    """The numpy dtype of TensorRT ``DataType`` ``dtype`` (the types milmer's graphs use)."""
    names = {
        "FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64,
        "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_,
    }
    for name, np_type in names.items():
        if getattr(trt.DataType, name, None) == dtype:
            return np.dtype(np_type)
    raise MilmerInputError(f"TensorRT engine uses data type {dtype}, which milmer's graphs never do.")


#: One engine tensor: (dtype, dims with None for a dynamic axis).
IOEntry = tuple[np.dtype, tuple[int | None, ...]]
#: Engine I/O: name -> :data:`IOEntry`, inputs and outputs in engine order.
EngineIO = tuple[dict[str, IOEntry], dict[str, IOEntry]]


def engine_io(trt: Any, engine: Any) -> EngineIO:
    """The inputs and outputs of a deserialised ``engine`` (``get_tensor_shape`` gives -1 for dynamic)."""
    inputs: dict[str, IOEntry] = {}
    outputs: dict[str, IOEntry] = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        dims = tuple(int(d) if int(d) >= 0 else None for d in engine.get_tensor_shape(name))
        entry = (numpy_dtype(trt, engine.get_tensor_dtype(name)), dims)
        (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs)[name] = entry
    return inputs, outputs


def check_engine(trt: Any, engine: Any, profile: Profile, *, engine_name: str, hint: str) -> EngineIO:
    """Raise :class:`MilmerInputError` unless ``engine`` was built for ``profile``: the same input
    names, each input float32 and dynamic only where the profile's min and max differ, and
    optimisation profile 0 equal to ``profile`` (its min, opt and max shapes).

    ``engine_name`` names the engine in messages, ``hint`` says how to get a fitting one.
    Returns :func:`engine_io`.
    """
    inputs, outputs = engine_io(trt, engine)
    problems = []
    if sorted(inputs) != sorted(profile):
        problems.append(f"inputs {sorted(inputs)} vs {sorted(profile)}")
    elif engine.num_optimization_profiles < 1:
        problems.append("no optimisation profile")
    else:
        for name, (lo, opt, hi) in profile.items():
            dtype, dims = inputs[name]
            if dtype != np.float32:
                problems.append(f"input {name!r} is {dtype}, not float32")
            got = tuple(tuple(int(d) for d in s) for s in engine.get_tensor_profile_shape(name, 0))
            if got != (lo, opt, hi):
                problems.append(f"input {name!r} profile min/opt/max {got} vs {(lo, opt, hi)}")
            ok = len(dims) == len(lo) and all(d is None or d == a == c for d, a, c in zip(dims, lo, hi))
            if not ok:
                problems.append(f"input {name!r} shape {dims} does not fit min {lo} / max {hi}")
    if problems:
        raise MilmerInputError(
            f"TensorRT engine {engine_name} does not fit its profile: {'; '.join(problems)}; {hint}."
        )
    return inputs, outputs


class TrtRunner(Runner):
    """Runs a prebuilt TensorRT engine for an ``.onnx`` graph (or an ``.engine`` file directly).

    model_path:   the ONNX graph (its engine is looked up in ``engine_dir`` by the graph's hash,
                  this machine and ``precision``) or an ``.engine`` with its ``.json`` beside it
    engine_dir:   the engine cache; ``None``: an ``engines`` folder beside ``model_path``
    device_index: which CUDA device
    """

    DEVICES: ClassVar[tuple[str, ...]] = ("cuda",)
    AUTO_DEVICES: ClassVar[tuple[str, ...]] = ("cuda",)
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
        """Why no TensorRT here: no TensorRT, no CUDA device, a failing CUDA call, or no engine
        fitting this machine. Never raises for those: 'auto' then moves on to the next backend."""
        try:
            import_tensorrt()
            if not cuda_device_present():
                return "no CUDA device found"
            cls(model_path, device=device, precision=precision, **options).resolve_engine()
        except PROBE_ERRORS as err:
            return str(err) or type(err).__name__
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
                f"Cannot load TensorRT engine {str(engine_path)!r} (corrupt, truncated, or built by another "
                f"TensorRT version or GPU); rebuild with: "
                f"{export_hint(self.precision, trt=True)}."
            )
        hint = f"rebuild it with: {export_hint(self.precision, trt=True)}"
        inputs, outputs = check_engine(trt, engine, meta.profile, engine_name=repr(engine_path.name), hint=hint)
        context = engine.create_execution_context()
        if context is None:
            raise RuntimeError(f"TensorRT could not create an execution context for {engine_path.name!r}.")
        dtypes = {n: dt for n, (dt, _) in (*inputs.items(), *outputs.items())}
        stream = _cuda(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
        self.engine_path, self.engine_meta = engine_path, meta
        self._state = {
            "trt": trt,
            "cudart": cudart,
            "logger": logger,  # TensorRT keeps a reference only; it must outlive the runtime
            "runtime": runtime,
            "engine": engine,
            "context": context,
            "inputs": list(inputs),
            "outputs": list(outputs),
            "input_dims": {n: dims for n, (_, dims) in inputs.items()},
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
        s = self._state
        return {name: TensorMeta(s["dtypes"][name], s["input_dims"][name]) for name in s["inputs"]}

    def _set_address(self, name: str, ptr: int) -> None:
        # set_tensor_address returns False (and logs) for a name the engine lacks or a misaligned pointer.
        if not self._state["context"].set_tensor_address(name, ptr):
            raise RuntimeError(f"TensorRT refused the device address of tensor {name!r} in {self.engine_path}.")

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
            self._set_address(name, ptr)
        results: dict[str, np.ndarray] = {}
        for name in s["outputs"]:
            shape = tuple(int(d) for d in context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                # -1: TensorRT cannot size this output from the input shapes (a data-dependent
                # shape, or an engine from another graph); milmer's graphs have none.
                raise MilmerInputError(
                    f"TensorRT engine {str(self.engine_path)!r} gives output {name!r} an unknown shape "
                    f"{shape} for inputs {', '.join(f'{n} {feed[n].shape}' for n in s['inputs'])}; milmer's "
                    f"graphs have no data-dependent outputs, so the engine is not one of them: rebuild it with: "
                    f"{export_hint(self.precision, trt=True)}."
                )
            results[name] = np.empty(shape, dtype=s["dtypes"][name])
            self._set_address(name, self._buffer(name, max(results[name].nbytes, 1)))
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
