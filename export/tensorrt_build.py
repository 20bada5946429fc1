"""TensorRT engines for a model directory, and the equivalent ``trtexec`` command lines.

UNTESTED WITHOUT A GPU: this project's CI has neither TensorRT nor a GPU, so only the pure-Python
parts (profiles, trtexec command lines) are tested there; :func:`build_engine` follows the
TensorRT 10 Python API (``create_network(0)``: explicit batch is the only mode;
``set_memory_pool_limit``; ``build_serialized_network``; timing caches) and its test runs where
``tensorrt`` is installed. ``tensorrt`` is imported inside functions only.

An engine of precision P is built from P's graph file (``swin.onnx`` for fp32, ``swin.fp16.onnx``
for fp16): the runtime looks engines up by the hash of the graph file it loaded for P (see
:mod:`milmer.runtime.backends.trt_cache`). fp32 engines clear TensorRT's TF32 flag so they match
ONNX Runtime to fp32 accuracy; fp16 engines set the FP16 flag. int8 graphs are dynamically
quantised for CPUs (MatMulInteger), which TensorRT cannot parse, so there are no int8 engines.

The optimisation profile is given in bags ``(min, opt, max)``: the fusion graph's batch axis B
takes it as is, the backbone's frame axis N takes ``bags * frames_per_window`` (the runtime sends
all frames of a batch of bags in one call). Engines are tied to the TensorRT version and GPU
they were built on: build them on the deployment machine (on a Jetson, with the trtexec lines in
``trtexec.txt`` and :func:`register_engine`).
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..runtime._check import MilmerInputError, check_option
from ..runtime.backends.base import Precision
from ..runtime.backends.trt_cache import (
    ENGINE_DIRNAME,
    EngineMeta,
    Profile,
    engine_paths,
    file_sha256,
    write_meta,
)
from ..runtime.model_dir import GRAPHS, SPEC_FILE, graph_filename
from ..runtime.spec import ModelSpec

__all__ = [
    "TRT_PRECISIONS",
    "TIMING_CACHE_FILE",
    "TRTEXEC_FILE",
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
TIMING_CACHE_FILE = "timing.cache"
TRTEXEC_FILE = "trtexec.txt"
BagProfile = tuple[int, int, int]


def check_bag_profile(bags: Any) -> BagProfile:
    """``(min, opt, max)`` bags per call, integers with ``1 <= min <= opt <= max``."""
    ok = (
        isinstance(bags, (tuple, list))
        and len(bags) == 3
        and all(isinstance(b, int) and not isinstance(b, bool) for b in bags)
        and 1 <= bags[0] <= bags[1] <= bags[2]
    )
    if not ok:
        raise MilmerInputError(
            f"Invalid value for 'trt_profile': expected (min, opt, max) bags with 1 <= min <= opt <= max, got {bags!r}."
        )
    return (int(bags[0]), int(bags[1]), int(bags[2]))


def check_workspace_gb(workspace_gb: float) -> int:
    """The TensorRT workspace limit in bytes for ``workspace_gb`` GiB (a number in (0, 1024))."""
    ok = isinstance(workspace_gb, (int, float)) and not isinstance(workspace_gb, bool) and 0 < workspace_gb < 1024
    if not ok:
        raise MilmerInputError(
            f"Invalid value for 'workspace_gb': expected a number in (0, 1024), got {workspace_gb!r}."
        )
    return int(workspace_gb * (1 << 30))


def graph_profiles(spec: ModelSpec, bags: BagProfile) -> dict[str, Profile]:
    """Graph stem -> optimisation profile (input name -> (min, opt, max) shapes) for ``bags``."""
    bags = check_bag_profile(bags)
    g, f, s = spec.graph, spec.face.frames_per_window, spec.face.frame_size
    eeg, tokens = g.fusion_inputs

    def triple(shape: tuple[int, ...], scale: int = 1) -> tuple[tuple[int, ...], ...]:
        return tuple((b * scale, *shape) for b in bags)

    return {
        "swin": {g.backbone_input: triple((3, s, s), f)},  # type: ignore[dict-item]
        "fusion": {
            eeg: triple((spec.eeg.n_channels, spec.eeg.window_samples)),  # type: ignore[dict-item]
            tokens: triple((f, g.tokens_per_frame, g.token_dim)),  # type: ignore[dict-item]
        },
    }


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
    as :func:`build_engines`: same graph file, precision flags, shapes, workspace and timing cache.

    trtexec writes no metadata: register each engine afterwards with :func:`register_engine`.
    """
    check_option("precision", precision, TRT_PRECISIONS)
    workspace_mib = check_workspace_gb(workspace_gb) >> 20
    spec = ModelSpec.load(Path(model_dir) / SPEC_FILE)
    lines = []
    for stem, prof in graph_profiles(spec, profile).items():
        args = [
            "trtexec",
            f"--onnx={graph_filename(stem, precision)}",
            f"--saveEngine={ENGINE_DIRNAME}/{_engine_name(stem, precision)}",
            "--fp16" if precision == "fp16" else "--noTF32",
            f"--minShapes={_shape_arg(prof, 0)}",
            f"--optShapes={_shape_arg(prof, 1)}",
            f"--maxShapes={_shape_arg(prof, 2)}",
            f"--memPoolSize=workspace:{workspace_mib}M",
            f"--timingCacheFile={ENGINE_DIRNAME}/{TIMING_CACHE_FILE}",
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
        "# TensorRT engines with trtexec (e.g. on a Jetson), run inside this folder.",
        f"# Optimisation profile: {bags[0]}/{bags[1]}/{bags[2]} bags (min/opt/max) per call.",
        "# Engines only run on the TensorRT version and GPU that built them.",
        f"mkdir -p {ENGINE_DIRNAME}",
    ]
    for precision in precisions:
        text.append(f"\n# {precision}")
        text.extend(trtexec_commands(model_dir, bags, precision, workspace_gb=workspace_gb))  # type: ignore[arg-type]
    example = precisions[-1]
    text.append(
        "\n# Then register each engine (writes engines/<key>.engine + .json, which the runtime finds), e.g.:\n"
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


def build_engine(
    onnx_path: str | os.PathLike[str],
    profile: Profile,
    precision: Precision,
    cache_dir: str | os.PathLike[str],
    *,
    workspace_bytes: int = 4 << 30,
    timing_cache: str | os.PathLike[str] | None = None,
) -> tuple[Path, EngineMeta]:
    """Build a TensorRT engine for ``onnx_path`` and store it in ``cache_dir`` under its key.

    profile:      input name -> (min, opt, max) shapes (one optimisation profile)
    precision:    'fp32' (TF32 off) or 'fp16' (FP16 flag)
    timing_cache: file to load tactic timings from and save them back to (speeds up rebuilds)
    """
    from ..runtime.backends.trt import import_tensorrt

    check_option("precision", precision, TRT_PRECISIONS)
    trt = import_tensorrt()
    onnx_path = Path(onnx_path)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    else:
        config.clear_flag(trt.BuilderFlag.TF32)
    optimisation_profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile.items():
        optimisation_profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(optimisation_profile)
    cache_file = Path(timing_cache) if timing_cache is not None else None
    blob = cache_file.read_bytes() if cache_file is not None and cache_file.is_file() else b""
    cache = config.create_timing_cache(blob)
    config.set_timing_cache(cache, True)  # True: a cache from another GPU is ignored, not fatal
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine for {onnx_path.name}; see its log above.")
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
    extra = {"builder": "milmer export", "workspace_bytes": workspace_bytes}
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
    cache shared by all builds). ``log``: called with a line per engine."""
    model_dir = Path(model_dir)
    workspace = check_workspace_gb(workspace_gb)
    spec = ModelSpec.load(model_dir / SPEC_FILE)
    profiles = graph_profiles(spec, profile)
    cache_dir = model_dir / ENGINE_DIRNAME
    built = []
    for precision in precisions:
        check_option("precision", precision, TRT_PRECISIONS)
        for stem in GRAPHS:
            t0 = time.perf_counter()
            path, meta = build_engine(
                model_dir / graph_filename(stem, precision),  # type: ignore[arg-type]
                profiles[stem],
                precision,  # type: ignore[arg-type]
                cache_dir,
                workspace_bytes=workspace,
                timing_cache=cache_dir / TIMING_CACHE_FILE,
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
    """Move an engine built by trtexec (from :func:`trtexec_commands`) into the cache with its
    metadata, labelled with THIS machine's TensorRT and GPU. Returns the cached engine's path.

    Run it on the machine that built the engine; ``profile`` must be the one trtexec used.
    """
    check_option("graph", graph, GRAPHS)
    check_option("precision", precision, TRT_PRECISIONS)
    model_dir = Path(model_dir)
    engine = Path(model_dir, engine) if not Path(engine).is_absolute() else Path(engine)
    if not engine.is_file():
        raise MilmerInputError(f"Invalid value for 'engine': file not found: {str(engine)!r}.")
    spec = ModelSpec.load(model_dir / SPEC_FILE)
    onnx_path = model_dir / graph_filename(graph, precision)
    meta = _meta_for(onnx_path, precision, graph_profiles(spec, profile)[graph], {"builder": "trtexec"})
    path = _store(engine.read_bytes(), meta, model_dir / ENGINE_DIRNAME)
    engine.unlink()
    return path
