"""Typed stand-ins for the TensorRT 10.3 / 11.x Python APIs and cuda-python's ``cudart``.

Each :func:`make_tensorrt` module exposes the members that TensorRT version has where milmer
touches them. Which names exist comes from the real bindings: ``tensorrt_api/tensorrt-10.3.0.txt``
and ``tensorrt-11.4.0.106.txt`` hold the names in ``tensorrt_bindings/tensorrt.so`` of the
``tensorrt-cu12-bindings`` wheels (source wheel and hashes in each file; ``tensorrt_api/extract.py``
writes them). Two checks tie the stand-ins to them: ``test_tensorrt_api.py`` compares the enums
below with the files, and while a test runs, every attribute that milmer's own code reads from a
stand-in must be in that version's file, else it raises AttributeError as the real module would
(``touched`` records them). 11.x has no ``BuilderFlag.FP16``/``INT8``/``BF16``/``FP8``/``INT4``/
``OBEY_PRECISION_CONSTRAINTS``/``PREFER_PRECISION_CONSTRAINTS``/``REJECT_EMPTY_ALGORITHMS``/
``WEIGHTLESS`` and no ``NetworkDefinitionCreationFlag.EXPLICIT_BATCH``; every 11.x network is
strongly typed. A removed
member raises AttributeError as in the real module (a MagicMock would invent it).

Behaviour modelled after the real API, where milmer depends on it:
- ``OnnxParser.parse_from_file`` reads the ONNX file: network inputs (-1 for dynamic axes) and
  one layer per initializer and node, with FLOAT or HALF outputs as the graph's types say.
- a strongly typed network refuses precision builder flags at build time (10.x: the build fails).
- ``IOptimizationProfile.set_shape`` raises RuntimeError for min > opt > max;
  ``add_optimization_profile`` returns -1 for a profile that does not fit the network.
- a timing cache carries a header (TensorRT version, GPU); ``set_timing_cache(c, False)`` returns
  False for another header, ``set_timing_cache(c, True)`` accepts it (verification skipped).
- ``deserialize_cuda_engine`` returns None for bytes that are not an engine of this version and GPU.
- ``IExecutionContext``: ``set_input_shape``/``set_tensor_address``/``execute_async_v3`` return
  bools; output shapes are -1 until every input shape is set. Execution runs the ONNX graph with
  ONNX Runtime on the bytes at the tensor addresses, so data really goes host -> "device" -> host.
- ``cudart``: every call returns ``(cudaError_t, *values)``; device memory is host memory that
  only the fake hands out, and copies check that a device range was allocated.
"""

from __future__ import annotations

import ctypes
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- the real names
API_DIR = Path(__file__).with_name("tensorrt_api")
#: TensorRT major version -> the bindings whose names the stand-ins of that major follow.
API_VERSIONS = {10: "10.3.0", 11: "11.4.0.106"}
_MILMER_SOURCE = str(Path(__file__).resolve().parents[3]) + "/"
_TEST_SOURCE = str(Path(__file__).resolve().parents[2]) + "/"


def api_names(version: str) -> frozenset[str]:
    """The names in ``tensorrt.so`` of the bindings wheel ``version`` (a ``tensorrt_api`` file)."""
    lines = (API_DIR / f"tensorrt-{version}.txt").read_text().splitlines()
    return frozenset(line.split()[0] for line in lines if line and not line.startswith("#"))


def api_header(version: str) -> dict[str, str]:
    """The ``# key: value`` lines of a ``tensorrt_api`` file (wheel, hashes, count)."""
    lines = (API_DIR / f"tensorrt-{version}.txt").read_text().splitlines()
    return dict(line[2:].split(": ", 1) for line in lines if line.startswith("# ") and ": " in line)


def _called_from_milmer(depth: int = 2) -> bool:
    filename = sys._getframe(depth).f_code.co_filename
    return filename.startswith(_MILMER_SOURCE) and not filename.startswith(_TEST_SOURCE)


class _Guard:
    """Names milmer's code reads from one stand-in module; unknown ones raise AttributeError."""

    def __init__(self, version: str) -> None:
        self.version = API_VERSIONS[int(version.split(".")[0])]
        self.names = api_names(self.version)
        self.touched: set[str] = set()

    def check(self, name: str) -> None:
        if name.startswith("__"):
            return
        self.touched.add(name)
        if name not in self.names:
            raise AttributeError(
                f"TensorRT {self.version} has no attribute {name!r} (not in its tensorrt.so; see tests/runtime/"
                "backends/tensorrt_api)"
            )


_GUARD: _Guard | None = None  # the guard of the module being built by make_tensorrt


class _CheckedMeta(type):
    """Class-level reads (``trt.BuilderFlag.FP16``, ``trt.Logger.WARNING``) from milmer are checked."""

    def __getattribute__(cls, name: str) -> Any:
        guard = type.__getattribute__(cls, "_guard") if name != "_guard" else None
        if guard is not None and _called_from_milmer():
            guard.check(name)
        return type.__getattribute__(cls, name)


class _Checked(metaclass=_CheckedMeta):  # noqa: B903
    """Instance reads (``config.set_flag``, ``engine.num_io_tensors``) from milmer are checked."""

    _guard: _Guard | None = None

    def __getattribute__(self, name: str) -> Any:
        guard = object.__getattribute__(self, "_guard")
        if guard is not None and _called_from_milmer():
            guard.check(name)
        return object.__getattribute__(self, name)


class _CheckedModule(types.ModuleType):
    def __getattribute__(self, name: str) -> Any:
        guard = types.ModuleType.__getattribute__(self, "__dict__").get("guard")
        if guard is not None and _called_from_milmer():
            guard.check(name)
        return types.ModuleType.__getattribute__(self, name)


# --------------------------------------------------------------------------- enums
class _Member:
    def __init__(self, enum: str, name: str, value: int) -> None:
        self.enum, self.name, self.value = enum, name, value

    def __int__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return f"{self.enum}.{self.name}"


def _enum(name: str, members: list[str], values: dict[str, int] | None = None, guard: _Guard | None = None) -> type:
    attrs = {m: _Member(name, m, (values or {}).get(m, i)) for i, m in enumerate(members)}
    return _CheckedMeta(name, (), {**attrs, "__members__": attrs, "_guard": guard})


# BuilderFlag members of 10.3 (pyCore.cpp, release/10.3) and of 11.x (10.x minus the removed ones).
BUILDER_FLAGS_10_3 = [
    "FP16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS",
    "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO",
    "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8", "ERROR_ON_TIMING_CACHE_MISS",
    "BF16", "DISABLE_COMPILATION_CACHE", "STRIP_PLAN", "WEIGHTLESS", "REFIT_IDENTICAL", "WEIGHT_STREAMING", "INT4",
]
#: Not in 11.4's BuilderFlag: the typing flags (the migration guide; ``FP16`` does not occur in
#: 11.4's tensorrt.so at all, ``INT8``/``BF16``/... remain DataType members) and the names that
#: occur in 10.3's tensorrt.so and not in 11.4's (test_tensorrt_api.py checks both).
REMOVED_IN_11 = {
    "FP16", "INT8", "BF16", "FP8", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
    "REJECT_EMPTY_ALGORITHMS", "WEIGHTLESS",
}
BUILDER_FLAGS_11 = [f for f in BUILDER_FLAGS_10_3 if f not in REMOVED_IN_11] + [
    "REFIT_INDIVIDUAL", "STRICT_NANS", "MONITOR_MEMORY", "EDITABLE_TIMING_CACHE", "DISTRIBUTIVE_INDEPENDENCE",
]
#: Flags a strongly typed network refuses (the precision comes from the graph).
TYPING_FLAGS = {"FP16", "INT8", "BF16", "FP8", "INT4", "FP4"}
NETWORK_FLAGS_10_3 = ["EXPLICIT_BATCH", "STRONGLY_TYPED"]
NETWORK_FLAGS_11 = ["STRONGLY_TYPED", "PREFER_AOT_PYTHON_PLUGINS", "PREFER_JIT_PYTHON_PLUGINS"]
_NETWORK_FLAG_VALUES = {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1, "PREFER_AOT_PYTHON_PLUGINS": 2,
                        "PREFER_JIT_PYTHON_PLUGINS": 3}
MEMORY_POOLS = ["WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM", "DLA_GLOBAL_DRAM", "TACTIC_DRAM",
                "TACTIC_SHARED_MEMORY"]
DATA_TYPES = ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8", "FP8", "BF16", "INT64", "INT4"]
# ONNX TensorProto elem type -> TensorRT DataType name
_ONNX_TYPES = {1: "FLOAT", 10: "HALF", 6: "INT32", 7: "INT64", 9: "BOOL", 3: "INT8", 2: "UINT8"}
_NP_TYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_,
             "INT8": np.int8, "UINT8": np.uint8}
MAGIC = "fake-tensorrt-engine"


class FakeGPU:
    """The one GPU the fakes pretend to have (``None``: no device)."""

    def __init__(self, name: str = "Orin", major: int = 8, minor: int = 7) -> None:
        self.name, self.major, self.minor = name, major, minor


# --------------------------------------------------------------------------- cudart
def make_cudart(gpu: FakeGPU | None, *, fail_properties: bool = False) -> types.ModuleType:
    """A ``cuda.bindings.runtime`` stand-in. ``fail_properties``: cudaGetDeviceProperties errors."""
    m = types.ModuleType("cuda.bindings.runtime")
    m.cudaError_t = _enum("cudaError_t", ["cudaSuccess", "cudaErrorInvalidValue", "cudaErrorNoDevice",
                                          "cudaErrorInsufficientDriver"])
    m.cudaMemcpyKind = _enum("cudaMemcpyKind", ["cudaMemcpyHostToHost", "cudaMemcpyHostToDevice",
                                                "cudaMemcpyDeviceToHost"])
    ok = m.cudaError_t.cudaSuccess
    memory: dict[int, ctypes.Array] = {}  # device pointer -> buffer
    m.memory = memory

    class cudaDeviceProp:  # noqa: N801 - the binding's name
        def __init__(self, g: FakeGPU) -> None:
            self.name = g.name.encode() + b"\0" * (256 - len(g.name))
            self.major, self.minor = g.major, g.minor

    def device_range(ptr: int, n: int) -> None:
        for base, buf in memory.items():
            if base <= ptr and ptr + n <= base + ctypes.sizeof(buf):
                return
        raise AssertionError(f"copy of {n} bytes at {ptr:#x} is outside any cudaMalloc'ed buffer")

    def copy(dst: int, src: int, n: int, kind: Any, stream: int) -> tuple:
        assert isinstance(dst, int) and isinstance(src, int) and stream in m.streams, (dst, src, stream)
        device = dst if kind is m.cudaMemcpyKind.cudaMemcpyHostToDevice else src
        device_range(device, n)
        ctypes.memmove(dst, src, n)
        return (ok,)

    def malloc(n: int) -> tuple:
        buf = (ctypes.c_char * n)()
        memory[ctypes.addressof(buf)] = buf
        return ok, ctypes.addressof(buf)

    def free(ptr: int) -> tuple:
        return (ok,) if memory.pop(ptr, None) is not None else (m.cudaError_t.cudaErrorInvalidValue,)

    m.streams = set()

    def stream_create() -> tuple:
        handle = 0x5000 + len(m.streams) + 1
        m.streams.add(handle)
        return ok, handle

    def device_count() -> tuple:
        if gpu is None:
            return m.cudaError_t.cudaErrorNoDevice, 0
        return ok, 1

    def properties(index: int) -> tuple:
        if gpu is None or index != 0:
            return m.cudaError_t.cudaErrorInvalidValue, None
        if fail_properties:
            return m.cudaError_t.cudaErrorInsufficientDriver, None
        return ok, cudaDeviceProp(gpu)

    m.cudaGetDeviceCount = device_count
    m.cudaGetDeviceProperties = properties
    m.cudaSetDevice = lambda i: (ok,) if gpu is not None and i == 0 else (m.cudaError_t.cudaErrorInvalidValue,)
    m.cudaStreamCreate = stream_create
    m.cudaStreamSynchronize = lambda s: (ok,)
    m.cudaStreamDestroy = lambda s: (m.streams.discard(s), (ok,))[1]
    m.cudaMalloc = malloc
    m.cudaFree = free
    m.cudaMemcpyAsync = copy
    return m


# --------------------------------------------------------------------------- tensorrt
def make_tensorrt(version: str, gpu: FakeGPU | None) -> types.ModuleType:
    """A ``tensorrt`` module with the surface of TensorRT ``version`` ('10.3.0' or '11.1.0')."""
    major = int(version.split(".")[0])
    guard = _Guard(version)
    trt = _CheckedModule("tensorrt")
    trt.__version__ = version
    trt.BuilderFlag = _enum("BuilderFlag", BUILDER_FLAGS_10_3 if major == 10 else BUILDER_FLAGS_11, guard=guard)
    names = NETWORK_FLAGS_10_3 if major == 10 else NETWORK_FLAGS_11
    trt.NetworkDefinitionCreationFlag = _enum("NetworkDefinitionCreationFlag", names, _NETWORK_FLAG_VALUES, guard)
    trt.MemoryPoolType = _enum("MemoryPoolType", MEMORY_POOLS, guard=guard)
    trt.DataType = _enum("DataType", DATA_TYPES, guard=guard)
    trt.TensorIOMode = _enum("TensorIOMode", ["NONE", "INPUT", "OUTPUT"], guard=guard)

    class _Base(_Checked):
        _guard = guard

    trt.log: list[str] = []  # what the fake "logger" printed
    header = {"tensorrt": version, "gpu": gpu.name if gpu else None}

    class Logger(_Base):
        Severity = _enum("Severity", ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"], guard=guard)
        WARNING = Severity.WARNING
        ERROR = Severity.ERROR

        def __init__(self, min_severity: Any = None) -> None:
            self.min_severity = min_severity

    class ITensor(_Base):
        def __init__(self, name: str, shape: tuple[int, ...], dtype: Any) -> None:
            self.name, self.shape, self.dtype = name, tuple(shape), dtype

    class ILayer(_Base):
        def __init__(self, outputs: list[ITensor]) -> None:
            self._outputs = outputs
            self.num_outputs = len(outputs)

        def get_output(self, i: int) -> ITensor:
            return self._outputs[i]

    class INetworkDefinition(_Base):
        def __init__(self, flags: int) -> None:
            strongly = int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
            self.strongly_typed = major >= 11 or bool(flags & (1 << strongly))
            self.inputs: list[ITensor] = []
            self.outputs: list[ITensor] = []
            self.layers: list[ILayer] = []
            self.onnx_path: str | None = None

        num_inputs = property(lambda self: len(self.inputs))
        num_outputs = property(lambda self: len(self.outputs))
        num_layers = property(lambda self: len(self.layers))
        get_input = lambda self, i: self.inputs[i]  # noqa: E731
        get_output = lambda self, i: self.outputs[i]  # noqa: E731
        get_layer = lambda self, i: self.layers[i]  # noqa: E731

    def _dims(value_info: Any) -> tuple[int, ...]:
        return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in value_info.type.tensor_type.shape.dim)

    def _dtype(elem_type: int) -> Any:
        return getattr(trt.DataType, _ONNX_TYPES.get(elem_type, "FLOAT"))

    class OnnxParser(_Base):
        def __init__(self, network: INetworkDefinition, logger: Logger) -> None:
            self.network, self.errors = network, []

        num_errors = property(lambda self: len(self.errors))
        get_error = lambda self, i: self.errors[i]  # noqa: E731

        def parse_from_file(self, path: str) -> bool:
            import onnx

            try:
                proto = onnx.load(path)
            except Exception as err:  # noqa: BLE001 - the parser reports, it does not raise
                self.errors.append(f"cannot read {path}: {err}")
                return False
            opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
            if opset > (20 if version.startswith("10.3") else 25):
                self.errors.append(f"opset {opset} is newer than this parser supports")
                return False
            net = self.network
            net.onnx_path = path
            net.inputs = [ITensor(v.name, _dims(v), _dtype(v.type.tensor_type.elem_type)) for v in proto.graph.input]
            net.outputs = [ITensor(v.name, _dims(v), _dtype(v.type.tensor_type.elem_type)) for v in proto.graph.output]
            types_ = {v.name: v.type.tensor_type.elem_type for v in proto.graph.value_info}
            net.layers = [ILayer([ITensor(t.name, tuple(t.dims), _dtype(t.data_type))]) for t in proto.graph.initializer]
            net.layers += [
                ILayer([ITensor(o, (), _dtype(types_.get(o, 1))) for o in node.output]) for node in proto.graph.node
            ]
            return True

    class IOptimizationProfile(_Base):
        def __init__(self) -> None:
            self.shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

        def set_shape(self, name: str, min: Any, opt: Any, max: Any) -> None:  # noqa: A002 - real names
            lo, mid, hi = (tuple(int(d) for d in s) for s in (min, opt, max))
            if not (len(lo) == len(mid) == len(hi) and all(a <= b <= c for a, b, c in zip(lo, mid, hi))):
                raise RuntimeError("Shape provided for min is inconsistent with other shapes.")
            self.shapes[name] = (lo, mid, hi)

        def get_shape(self, name: str) -> list[tuple[int, ...]]:
            return list(self.shapes.get(name, ()))

    class ITimingCache(_Base):
        def __init__(self, head: dict[str, Any], entries: int = 0) -> None:
            self.header, self.entries = head, entries

        def serialize(self) -> memoryview:
            return memoryview(json.dumps({"header": self.header, "entries": self.entries}).encode())

        def combine(self, other: ITimingCache, ignore_mismatch: bool) -> bool:
            if other.header != self.header and not ignore_mismatch:
                return False
            self.entries += other.entries
            return True

        def reset(self) -> bool:
            self.entries = 0
            return True

    class IBuilderConfig(_Base):
        def __init__(self) -> None:
            self.flags = {trt.BuilderFlag.TF32}
            self.pools: dict[Any, int] = {}
            self.profiles: list[IOptimizationProfile] = []
            self.network: INetworkDefinition | None = None
            self.timing_cache: ITimingCache | None = None

        def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
            self.pools[pool] = pool_size

        def set_flag(self, flag: Any) -> None:
            self.flags.add(flag)

        def clear_flag(self, flag: Any) -> None:
            self.flags.discard(flag)

        def get_flag(self, flag: Any) -> bool:
            return flag in self.flags

        def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
            net = self.network
            assert net is not None
            for tensor in net.inputs:
                shapes = profile.shapes.get(tensor.name)
                dynamic = any(d < 0 for d in tensor.shape)
                if shapes is None:
                    if dynamic:
                        trt.log.append(f"profile lacks dynamic input {tensor.name}")
                        return -1
                    continue
                fits = all(
                    len(s) == len(tensor.shape) and all(d < 0 or d == v for d, v in zip(tensor.shape, s))
                    for s in shapes
                )
                if not fits:
                    trt.log.append(f"profile shapes {shapes} do not fit {tensor.name} {tensor.shape}")
                    return -1
            if set(profile.shapes) - {t.name for t in net.inputs}:
                return -1
            self.profiles.append(profile)
            return len(self.profiles) - 1

        num_optimization_profiles = property(lambda self: len(self.profiles))

        def create_timing_cache(self, serialized_timing_cache: bytes) -> ITimingCache | None:
            blob = bytes(serialized_timing_cache)
            if not blob:
                return ITimingCache(dict(header))
            try:
                data = json.loads(blob)
                return ITimingCache(data["header"], data["entries"])
            except (ValueError, KeyError, TypeError):
                trt.log.append("corrupt timing cache")
                return None

        def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
            if cache.header != header and not ignore_mismatch:
                trt.log.append("timing cache from another TensorRT/GPU rejected")
                return False
            self.timing_cache = cache
            return True

        def get_timing_cache(self) -> ITimingCache | None:
            return self.timing_cache

    class Builder(_Base):
        def __init__(self, logger: Logger) -> None:
            self.logger = logger
            self._config: IBuilderConfig | None = None
            self._network: INetworkDefinition | None = None

        def create_network(self, flags: int = 0) -> INetworkDefinition:
            self._network = INetworkDefinition(flags)
            return self._network

        def create_builder_config(self) -> IBuilderConfig:
            self._config = IBuilderConfig()
            self._config.network = self._network
            return self._config

        def create_optimization_profile(self) -> IOptimizationProfile:
            return IOptimizationProfile()

        def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> memoryview | None:
            typing = {f.name for f in config.flags} & TYPING_FLAGS
            if network.strongly_typed and typing:
                trt.log.append(f"setting {sorted(typing)} is not allowed for a strongly typed network")
                return None
            if any(d < 0 for t in network.inputs for d in t.shape) and not config.profiles:
                trt.log.append("dynamic inputs need an optimisation profile")
                return None
            if config.timing_cache is not None:
                config.timing_cache.entries += 1
            profile = config.profiles[0].shapes if config.profiles else {}
            engine = {
                "magic": MAGIC,
                "header": header,
                "onnx": network.onnx_path,
                "strongly_typed": network.strongly_typed,
                "flags": sorted(f.name for f in config.flags),
                "io": [[t.name, "INPUT", list(t.shape), t.dtype.name] for t in network.inputs]
                + [[t.name, "OUTPUT", list(t.shape), t.dtype.name] for t in network.outputs],
                "profile": {k: [list(s) for s in v] for k, v in profile.items()},
            }
            return memoryview(json.dumps(engine).encode())

    class ICudaEngine(_Base):
        def __init__(self, data: dict[str, Any]) -> None:
            self.data = data
            self.io = {name: (getattr(trt.TensorIOMode, mode), tuple(shape), getattr(trt.DataType, dt))
                       for name, mode, shape, dt in data["io"]}
            self.names = [row[0] for row in data["io"]]

        num_io_tensors = property(lambda self: len(self.names))
        num_optimization_profiles = property(lambda self: 1 if self.data["profile"] else 0)
        get_tensor_name = lambda self, i: self.names[i]  # noqa: E731
        get_tensor_mode = lambda self, name: self.io[name][0] if name in self.io else trt.TensorIOMode.NONE  # noqa: E731
        get_tensor_shape = lambda self, name: self.io[name][1]  # noqa: E731
        get_tensor_dtype = lambda self, name: self.io[name][2]  # noqa: E731

        def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple[int, ...]]:
            if profile_index != 0 or name not in self.data["profile"]:
                raise RuntimeError(f"no profile {profile_index} for {name}")
            return [tuple(s) for s in self.data["profile"][name]]

        def create_execution_context(self) -> IExecutionContext:
            return IExecutionContext(self)

    class IExecutionContext(_Base):
        def __init__(self, engine: ICudaEngine) -> None:
            self.engine = engine
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.addresses: dict[str, int] = {}
            self.runs = 0

        def _inputs(self) -> list[str]:
            return [n for n in self.engine.names if self.engine.io[n][0] is trt.TensorIOMode.INPUT]

        def set_input_shape(self, name: str, shape: Any) -> bool:
            shape = tuple(int(d) for d in shape)
            if name not in self._inputs():
                return False
            lo, _, hi = self.engine.data["profile"][name]
            if len(shape) != len(lo) or not all(a <= s <= c for a, s, c in zip(lo, shape, hi)):
                trt.log.append(f"shape {shape} of {name} outside the profile")
                return False
            self.shapes[name] = shape
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            mode, dims, _ = self.engine.io[name]
            if mode is trt.TensorIOMode.INPUT:
                return self.shapes.get(name, dims)
            if set(self._inputs()) - set(self.shapes):
                return dims  # -1 until every input shape is known
            batch = self.shapes[self._inputs()[0]][0]
            return tuple(batch if d < 0 else d for d in dims)

        def set_tensor_address(self, name: str, memory: int) -> bool:
            if name not in self.engine.io or not isinstance(memory, int):
                return False
            self.addresses[name] = memory
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            import onnxruntime

            if set(self.engine.names) - set(self.addresses) or set(self._inputs()) - set(self.shapes):
                trt.log.append("execute_async_v3 before every address and input shape was set")
                return False
            feed = {}
            for name in self._inputs():
                dtype = np.dtype(_NP_TYPES[self.engine.io[name][2].name])
                n = int(np.prod(self.shapes[name])) * dtype.itemsize
                feed[name] = np.frombuffer(ctypes.string_at(self.addresses[name], n), dtype).reshape(self.shapes[name])
            session = onnxruntime.InferenceSession(self.engine.data["onnx"], providers=["CPUExecutionProvider"])
            outputs = [o.name for o in session.get_outputs()]
            for name, value in zip(outputs, session.run(outputs, feed)):
                value = np.ascontiguousarray(value, dtype=_NP_TYPES[self.engine.io[name][2].name])
                ctypes.memmove(self.addresses[name], value.ctypes.data, value.nbytes)
            self.runs += 1
            return True

    class Runtime(_Base):
        def __init__(self, logger: Logger) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, serialized_engine: bytes) -> ICudaEngine | None:
            try:
                data = json.loads(bytes(serialized_engine))
            except (ValueError, UnicodeDecodeError):
                trt.log.append("not an engine")
                return None
            if not isinstance(data, dict) or data.get("magic") != MAGIC or data.get("header") != header:
                trt.log.append("engine from another TensorRT version or GPU")
                return None
            return ICudaEngine(data)

    for cls in (Logger, Builder, OnnxParser, Runtime, ITensor, ILayer, INetworkDefinition, IBuilderConfig,
                IOptimizationProfile, ITimingCache, ICudaEngine, IExecutionContext):
        setattr(trt, cls.__name__, cls)
    trt.guard = guard  # guard.touched: the names milmer read
    return trt


def install(monkeypatch: Any, version: str = "10.3.0", *, gpu: FakeGPU | None = None,
            no_gpu: bool = False, fail_properties: bool = False) -> tuple[types.ModuleType, types.ModuleType]:
    """Put fake ``tensorrt`` and ``cuda.bindings.runtime`` into ``sys.modules``; returns both."""
    device = None if no_gpu else (gpu or FakeGPU())
    trt = make_tensorrt(version, device)
    cudart = make_cudart(device, fail_properties=fail_properties)
    cuda, bindings = types.ModuleType("cuda"), types.ModuleType("cuda.bindings")
    cuda.bindings, bindings.runtime = bindings, cudart
    cuda.__path__, bindings.__path__ = [], []  # packages, so `from cuda.bindings import runtime` works
    for name, module in (("tensorrt", trt), ("cuda", cuda), ("cuda.bindings", bindings),
                         ("cuda.bindings.runtime", cudart)):
        monkeypatch.setitem(sys.modules, name, module)
    return trt, cudart


def engine_file_graph(path: Path) -> str:
    """The ONNX file a fake engine was built from (to check which graph an engine holds)."""
    return json.loads(Path(path).read_bytes())["onnx"]
