"""TensorRT engines for a model directory, and the equivalent ``trtexec`` command lines.

NEVER RUN WITH A REAL TensorRT OR GPU by this project (neither can be installed where it is
developed and tested). The code is written against the TensorRT 10.3 (JetPack 6) and 11.x Python
APIs and uses only what both have; the tests drive it through typed stand-ins of both surfaces
(``tests/runtime/backends/fake_tensorrt.py``: 11.x has no ``BuilderFlag.FP16``/``INT8``), and
``test_engines_build_and_match_onnx_runtime`` runs the real thing where TensorRT and a GPU exist.
``tensorrt`` is imported inside functions only.

**Precision comes from the graph, never from builder flags.** TensorRT 11 removed
``BuilderFlag.FP16``/``INT8`` and trtexec ``--fp16`` (weak typing, deprecated since 10.12). Every
network is therefore created strongly typed (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``,
trtexec ``--stronglyTyped``; available from 10.0, the only mode in 11): an engine of precision P
is built from P's graph file (``swin.onnx`` for fp32, ``swin.fp16.onnx`` for fp16, whose
LayerNormalization stays float32, see :mod:`.variants`), and the build refuses a graph whose
types do not match P. fp32 engines also clear TF32 so they match ONNX Runtime to fp32 accuracy.
int8 graphs are dynamically quantised for CPUs (MatMulInteger), which TensorRT cannot parse, so
there are no int8 engines. The runtime looks engines up by the hash of the graph file it loaded
for P (see :mod:`milmer.runtime.backends.trt_cache`).

The optimisation profile is given in bags ``(min, opt, max)``: the fusion graph's batch axis B
takes it as is, the backbone's frame axis N takes ``bags * frames_per_window`` (the runtime sends
all frames of a batch of bags in one call). Engines and timing caches are tied to the TensorRT
version and GPU they were built on: the timing cache file is named after both
(:func:`timing_cache_name`), and engines are built on the deployment machine (on a Jetson, with
the trtexec lines in ``trtexec.txt`` and :func:`register_engine`, which loads the engine and
checks its I/O and profile before filing it).

The graphs use opset 18 and IR version 10: TensorRT 10.3's ONNX parser reads opsets 9 to 20
(onnx-tensorrt ``docs/operators.md`` for 10.x before 10.6) and was built against ONNX 1.16 (IR
version 10); see :data:`TRT_MAX_OPSET` and :data:`TRT_MAX_IR_VERSION`.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..runtime.check import MilmerInputError, check_number, check_option, check_path_exists, requires_error
from ..runtime.hints import export_hint
from ..runtime.backends.base import Precision
from ..runtime.backends.trt_cache import (
    ENGINE_DIRNAME,
    BagProfile,
    bag_profiles,
    check_bag_profile,
    EngineMeta,
    EngineTarget,
    Profile,
    engine_paths,
    file_sha256,
    write_meta,
)
from ..runtime.model_dir import GRAPHS, SPEC_FILE, _expected_io, _io_diff, graph_filename
from ..runtime.spec import ModelSpec

__all__ = [
    "TRT_PRECISIONS",
    "TRT_MAX_OPSET",
    "TRT_MAX_IR_VERSION",
    "TRTEXEC_TIMING_CACHE",
    "TRTEXEC_FILE",
    "timing_cache_name",
    "network_flags",
    "BuiltEngine",
    "check_bag_profile",
    "check_workspace_gb",
    "graph_profiles",
    "trtexec_commands",
    "write_trtexec_file",
    "build_engine",
    "build_engines",
    "register_engine",
]

#: Precisions TensorRT engines are built for (int8 graphs are CPU-only, see module doc).
TRT_PRECISIONS: tuple[str, ...] = ("fp32", "fp16")
#: The newest opset TensorRT 10.3's ONNX parser implements (JetPack 6's TensorRT).
TRT_MAX_OPSET = 20
#: The IR version of ONNX 1.16, which TensorRT 10.3's parser was built against (newer: a warning).
TRT_MAX_IR_VERSION = 10
#: trtexec's timing cache, written on the machine that runs trtexec.txt (not portable either).
TRTEXEC_TIMING_CACHE = "timing.trtexec.cache"
TRTEXEC_FILE = "trtexec.txt"


def check_workspace_gb(workspace_gb: float, name: str = "workspace_gb") -> int:
    """The TensorRT workspace limit in bytes for ``workspace_gb`` GiB (a number in (0, 1024));
    ``name`` is what the error calls it (``'--workspace-gb'`` from the command line)."""
    check_number(name, workspace_gb, low=0, high=1024, low_open=True, high_open=True)
    return int(workspace_gb * (1 << 30))


def graph_profiles(spec: ModelSpec, bags: BagProfile) -> dict[str, Profile]:
    """Graph stem -> optimisation profile for ``bags`` (see :func:`~milmer.runtime.backends.trt_cache.bag_profiles`)."""
    return bag_profiles(spec, bags)


# ---------------------------------------------------------------------- trtexec
def _shape_arg(profile: Profile, which: int) -> str:
    # trtexec splits the list at ',' and a name from its dims at ':'; it takes odd names quoted.
    parts = []
    for name, shapes in profile.items():
        shown = name if name.replace("_", "").replace(".", "").isalnum() else f"'{name}'"
        parts.append(f"{shown}:{'x'.join(str(d) for d in shapes[which])}")
    return ",".join(parts)


def _engine_name(stem: str, precision: str) -> str:
    return f"{stem}.{precision}.trtexec.engine"


def trtexec_commands(
    model_dir: str | os.PathLike[str], profile: BagProfile, precision: Precision, *, workspace_gb: float = 4
) -> list[str]:
    """The ``trtexec`` lines (one per graph, run inside ``model_dir``) that build the same engines
    as :func:`build_engines`: same graph file, strong typing, shapes, workspace; valid for trtexec
    10.3 and 11 (``--stronglyTyped`` is required on 10.x and accepted on 11; no ``--fp16``, which
    11 removed: the fp16 graph file carries its types).

    trtexec writes no metadata: register each engine afterwards with :func:`register_engine`.
    """
    check_option("--precision", precision, TRT_PRECISIONS)
    workspace_mib = check_workspace_gb(workspace_gb) >> 20
    spec = ModelSpec.load(Path(model_dir) / SPEC_FILE)
    lines = []
    for stem, prof in graph_profiles(spec, profile).items():
        args = [
            "trtexec",
            f"--onnx={graph_filename(stem, precision)}",
            f"--saveEngine={ENGINE_DIRNAME}/{_engine_name(stem, precision)}",
            "--stronglyTyped",
            *(["--noTF32"] if precision == "fp32" else []),
            f"--minShapes={_shape_arg(prof, 0)}",
            f"--optShapes={_shape_arg(prof, 1)}",
            f"--maxShapes={_shape_arg(prof, 2)}",
            f"--memPoolSize=workspace:{workspace_mib}M",
            f"--timingCacheFile={ENGINE_DIRNAME}/{TRTEXEC_TIMING_CACHE}",
        ]
        lines.append(" ".join(shlex.quote(a) for a in args))
    return lines


def write_trtexec_file(
    model_dir: str | os.PathLike[str],
    profile: BagProfile,
    precisions: tuple[str, ...],
    *,
    workspace_gb: float = 4,
) -> Path:
    """Write ``trtexec.txt`` into ``model_dir``: the commands per precision and how to register."""
    model_dir = Path(model_dir)
    bags = check_bag_profile(profile)
    text = [
        "# TensorRT engines with trtexec (TensorRT 10.3 on JetPack 6, or 11.x), run inside this folder.",
        f"# Optimisation profile: {bags[0]}/{bags[1]}/{bags[2]} bags (min/opt/max) per call.",
        "# Strongly typed: the precision comes from the graph file (*.fp16.onnx), not from a builder flag.",
        "# Engines only run on the TensorRT version and GPU that built them; delete",
        f"# {ENGINE_DIRNAME}/{TRTEXEC_TIMING_CACHE} before building on another GPU or TensorRT version.",
        f"mkdir -p {ENGINE_DIRNAME}",
    ]
    for precision in precisions:
        text.append(f"\n# {precision}")
        text.extend(trtexec_commands(model_dir, bags, precision, workspace_gb=workspace_gb))  # type: ignore[arg-type]
    example = precisions[-1]
    text.append(
        "\n# Then register each engine: it is loaded, its inputs, outputs and profile are checked, and it is\n"
        "# filed as engines/<key>.engine + .json, which the runtime finds. E.g.:\n"
        "#   python -c \"from milmer.export.tensorrt_build import register_engine; "
        f"register_engine('.', '{ENGINE_DIRNAME}/{_engine_name('swin', example)}', graph='swin', "
        f"precision='{example}', profile={bags!r})\""
    )
    path = model_dir / TRTEXEC_FILE
    path.write_text("\n".join(text) + "\n")
    return path


# ---------------------------------------------------------------------- building
@dataclass(frozen=True)
class BuiltEngine:
    """One engine written into the cache: its file, metadata and build time."""

    graph: str
    precision: str
    engine_path: Path
    meta: EngineMeta
    seconds: float


def timing_cache_name(target: EngineTarget) -> str:
    """``timing-trt10.3.0-orin-sm87.cache``: a timing cache per TensorRT version and GPU.

    ``set_timing_cache(cache, ignore_mismatch=True)`` would *accept* another GPU's timings (it
    skips the check, it does not drop them), so caches are never shared between the two.
    """
    gpu = re.sub(r"[^a-z0-9]+", "-", target.gpu_name.lower()).strip("-") or "gpu"
    return f"timing-trt{target.tensorrt_version}-{gpu}-sm{target.compute_capability.replace('.', '')}.cache"


def network_flags(trt: Any) -> int:
    """``create_network`` flags for a strongly typed network on TensorRT 10.x and 11.x.

    10.x: ``1 << STRONGLY_TYPED`` (else weak typing, where types are hints). 11.x: every network
    is strongly typed and the flag is accepted; should a release drop the member, 0 means the same.
    """
    from ..runtime.backends.trt import tensorrt_major

    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if flag is None:
        if tensorrt_major(trt) < 11:
            raise MilmerInputError(
                f"TensorRT {trt.__version__} has no strongly typed networks (TensorRT >= 10.0 has); "
                "install TensorRT 10.x or 11.x."
            )
        return 0
    return 1 << int(flag)


def _meta_for(onnx_path: Path, precision: Precision, profile: Profile, extra: dict[str, Any]) -> EngineMeta:
    from ..runtime.backends.trt import local_target

    sha = file_sha256(onnx_path)
    target = local_target(precision, onnx_sha256=sha)
    return EngineMeta(
        onnx_name=onnx_path.name,
        onnx_sha256=sha,
        tensorrt_version=target.tensorrt_version,
        gpu_name=target.gpu_name,
        compute_capability=target.compute_capability,
        precision=precision,
        profile=profile,
        extra=extra,
    )


def _store(engine: bytes, meta: EngineMeta, cache_dir: Path) -> Path:
    """Write ``<key>.engine`` then its ``<key>.json`` (the mark of a finished engine)."""
    engine_path, _ = engine_paths(cache_dir, meta.key)
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = engine_path.with_name(engine_path.name + ".tmp")
    tmp.write_bytes(engine)
    os.replace(tmp, engine_path)
    write_meta(meta, cache_dir)
    return engine_path


def _check_network(trt: Any, network: Any, profile: Profile, precision: str, onnx_name: str) -> None:
    """The parsed network's inputs are the profile's, and its types are ``precision``'s.

    Under strong typing the engine is exactly as fp16 as its graph: building 'fp16' from the
    fp32 file would give an fp32 engine labelled fp16, so that is refused here.
    """
    inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    if sorted(inputs) != sorted(profile):
        raise MilmerInputError(
            f"Invalid optimisation profile for {onnx_name}: it names inputs {sorted(profile)}, the graph "
            f"has {sorted(inputs)}."
        )
    half = any(
        layer.get_output(j).dtype == trt.DataType.HALF
        for layer in (network.get_layer(i) for i in range(network.num_layers))
        for j in range(layer.num_outputs)
    )
    if half != (precision == "fp16"):
        found = "float16" if half else "no float16"
        raise requires_error(
            "--precision", precision, f"the {precision} graph file (strong typing takes precision from the graph)",
            f"{onnx_name}, which has {found} tensors", hint=f"pass the graph written by: {export_hint(precision)}",
        )


def _timing_cache(config: Any, cache_file: Path | None, log: Any) -> None:
    """Load ``cache_file`` (if any) into ``config``, verified (``ignore_mismatch=False``)."""
    blob = cache_file.read_bytes() if cache_file is not None and cache_file.is_file() else b""
    cache = config.create_timing_cache(blob)
    if cache is not None and config.set_timing_cache(cache, False):
        return
    if not blob:
        raise RuntimeError("TensorRT could not create an empty timing cache.")
    # Written by another TensorRT/GPU despite its name, or damaged: start from an empty one.
    if log is not None:
        log(f"TensorRT rejected the timing cache {cache_file}; starting an empty one")
    cache = config.create_timing_cache(b"")
    if cache is None or not config.set_timing_cache(cache, False):
        raise RuntimeError("TensorRT could not create an empty timing cache.")


def build_engine(
    onnx_path: str | os.PathLike[str],
    profile: Profile,
    precision: Precision,
    cache_dir: str | os.PathLike[str],
    *,
    workspace_bytes: int = 4 << 30,
    timing_cache: str | os.PathLike[str] | None = None,
    log: Any = None,
) -> tuple[Path, EngineMeta]:
    """Build a strongly typed TensorRT engine for ``onnx_path`` and store it in ``cache_dir``.

    profile:      input name -> (min, opt, max) shapes (one optimisation profile)
    precision:    'fp32' (TF32 off) or 'fp16'; must be the precision of ``onnx_path``'s types
    timing_cache: file to load tactic timings from and save them back to (speeds up rebuilds);
                  it must belong to this TensorRT version and GPU (see :func:`timing_cache_name`)
    log:          called with a line when a timing cache is rejected

    Raises :class:`MilmerInputError` for a graph or profile that does not fit, RuntimeError when
    TensorRT fails (its own log says why).
    """
    from ..runtime.backends.trt import import_tensorrt

    check_option("--precision", precision, TRT_PRECISIONS)
    trt = import_tensorrt()
    onnx_path = Path(onnx_path)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    _check_network(trt, network, profile, precision, onnx_path.name)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)  # TF32 exists in 10.x and 11.x; not a typing flag
    optimisation_profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile.items():
        optimisation_profile.set_shape(name, lo, opt, hi)  # raises on min > opt > max
    if config.add_optimization_profile(optimisation_profile) < 0:
        raise MilmerInputError(
            f"TensorRT rejected the optimisation profile {profile} for {onnx_path.name} (ranks or static "
            f"sizes differ from the graph's inputs); check --trt-profile."
        )
    cache_file = Path(timing_cache) if timing_cache is not None else None
    _timing_cache(config, cache_file, log)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine for {onnx_path.name}; see its log above.")
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(cache_file.name + ".tmp")
        tmp.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
        os.replace(tmp, cache_file)
    extra = {"builder": "milmer export", "workspace_bytes": workspace_bytes, "strongly_typed": True}
    meta = _meta_for(onnx_path, precision, profile, extra)
    return _store(bytes(memoryview(serialized)), meta, Path(cache_dir)), meta


def build_engines(
    model_dir: str | os.PathLike[str],
    precisions: tuple[str, ...],
    profile: BagProfile,
    *,
    workspace_gb: float = 4,
    log: Any = None,
) -> list[BuiltEngine]:
    """Build both graphs' engines for each precision into ``model_dir/engines`` (one timing
    cache per TensorRT version and GPU, shared by all builds). ``log``: called with a line per engine."""
    from ..runtime.backends.trt import local_target

    model_dir = Path(model_dir)
    workspace = check_workspace_gb(workspace_gb)
    spec = ModelSpec.load(model_dir / SPEC_FILE)
    profiles = graph_profiles(spec, profile)
    cache_dir = model_dir / ENGINE_DIRNAME
    timing = cache_dir / timing_cache_name(local_target("fp32"))
    built = []
    for precision in precisions:
        check_option("--precision", precision, TRT_PRECISIONS)
        for stem in GRAPHS:
            t0 = time.perf_counter()
            path, meta = build_engine(
                model_dir / graph_filename(stem, precision),  # type: ignore[arg-type]
                profiles[stem],
                precision,  # type: ignore[arg-type]
                cache_dir,
                workspace_bytes=workspace,
                timing_cache=timing,
                log=log,
            )
            built.append(BuiltEngine(stem, precision, path, meta, time.perf_counter() - t0))
            if log is not None:
                log(f"TensorRT {precision} engine for {stem}: {path.name} ({built[-1].seconds:.1f} s)")
    return built


def register_engine(
    model_dir: str | os.PathLike[str],
    engine: str | os.PathLike[str],
    *,
    graph: str,
    precision: Precision,
    profile: BagProfile,
) -> Path:
    """File an engine built by trtexec (from :func:`trtexec_commands`) into the cache with its
    metadata, labelled with THIS machine's TensorRT and GPU. Returns the cached engine's path.

    The engine is deserialised first (so it must come from this TensorRT version and GPU), and
    its input and output names, dtypes and static sizes must be the spec's for ``graph``, its
    optimisation profile the one ``profile`` (bags) gives. Otherwise :class:`MilmerInputError`
    says what differs and nothing is filed; the source file is removed only once filed.
    """
    from ..runtime.backends.trt import check_engine, import_tensorrt

    check_option("graph", graph, GRAPHS)
    check_option("--precision", precision, TRT_PRECISIONS)
    model_dir = Path(model_dir)
    engine = Path(model_dir, engine) if not Path(engine).is_absolute() else Path(engine)
    check_path_exists("engine", engine)
    spec = ModelSpec.load(model_dir / SPEC_FILE)
    onnx_path = model_dir / graph_filename(graph, precision)
    graph_profile = graph_profiles(spec, profile)[graph]
    data = engine.read_bytes()
    trt = import_tensorrt()
    hint = f"rebuild it with the {precision} lines of {TRTEXEC_FILE} (profile {check_bag_profile(profile)} bags)"
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    loaded = runtime.deserialize_cuda_engine(data)
    if loaded is None:
        raise MilmerInputError(
            f"Cannot load TensorRT engine {str(engine)!r}: corrupt, truncated, or built by another TensorRT "
            f"version or GPU than this machine's TensorRT {trt.__version__}; {hint}."
        )
    inputs, outputs = check_engine(trt, loaded, graph_profile, engine_name=repr(engine.name), hint=hint)
    want_in, want_out = _expected_io(spec)[graph]
    ordered = [(inputs, want_in, "input"), (outputs, want_out, "output")]
    diff = [
        d
        for got, want, kind in ordered
        for d in _io_diff(kind, {n: got[n] for n in want if n in got} if set(got) == set(want) else got, want)
    ]
    if diff:
        raise MilmerInputError(
            f"TensorRT engine {engine.name!r} is not the {graph} graph of {SPEC_FILE}: {'; '.join(diff)}; {hint}."
        )
    del loaded, runtime
    meta = _meta_for(onnx_path, precision, graph_profile, {"builder": "trtexec"})
    path = _store(data, meta, model_dir / ENGINE_DIRNAME)
    engine.unlink()
    return path
