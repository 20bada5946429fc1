"""TensorRT engine cache: keys, metadata beside each engine, and the check that an engine fits.

A TensorRT engine only runs on the TensorRT version and GPU model it was built with, at the
precision and input-shape range (optimisation profile) it was built for, and it only means
something for the ONNX graph it was built from. Each engine therefore lives in a cache folder as
``<key>.engine`` with ``<key>.json`` (:class:`EngineMeta`) beside it, where ``key`` is a sha256
over all of those facts. Export writes engines through :func:`write_meta`/:func:`engine_paths`;
the TensorRT backend finds them with :func:`find_engine`, which explains exactly which facts
differ when no engine fits. Pure Python: nothing here imports TensorRT or CUDA.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import choices
from ..jsonable import JsonDataclass
from ..check import MilmerInputError, check_option, check_type
from ..hints import export_hint
from .base import PRECISIONS, Precision

if TYPE_CHECKING:
    from ..spec import ModelSpec

__all__ = [
    "ENGINE_DIRNAME",
    "META_VERSION",
    "Shape",
    "Profile",
    "EngineTarget",
    "EngineMeta",
    "file_sha256",
    "engine_key",
    "engine_paths",
    "write_meta",
    "read_meta",
    "check_engine_meta",
    "matching_engines",
    "find_engine",
    "check_in_profile",
    "BagProfile",
    "DEFAULT_BAG_PROFILE",
    "check_bag_profile",
    "bag_profiles",
    "profile_option",
]

#: Default engine cache folder, inside a model directory.
ENGINE_DIRNAME = "engines"
META_VERSION = 1

Shape = tuple[int, ...]
#: input name -> (min, opt, max) shapes of the optimisation profile.
Profile = dict[str, tuple[Shape, Shape, Shape]]

#: The facts an engine must share with this machine and model, in the order messages list them.
_TARGET_FIELDS = ("onnx_sha256", "tensorrt_version", "gpu_name", "compute_capability", "precision")


def _rebuild_hint(precision: str | None = None) -> str:
    return f"rebuild with: {export_hint(precision, trt=True)}"


def _normalise_profile(profile: Any) -> Profile:
    """Validate ``profile`` (JSON lists or tuples) and return it with tuples, min <= opt <= max."""
    check_type("profile", profile, dict, "input name -> (min, opt, max) shapes", nonempty=True)
    result: Profile = {}
    for name, triple in profile.items():
        try:
            lo, opt, hi = (tuple(int(d) for d in s) for s in triple)
        except (TypeError, ValueError):
            raise MilmerInputError(
                f"Invalid value for 'profile[{name!r}]': expected (min, opt, max) shapes, got {triple!r}."
            ) from None
        ok = len(lo) == len(opt) == len(hi) and all(0 < a <= b <= c for a, b, c in zip(lo, opt, hi))
        if not ok:
            raise MilmerInputError(
                f"Invalid value for 'profile[{name!r}]': expected shapes of one rank with "
                f"0 < min <= opt <= max per axis, got min {lo}, opt {opt}, max {hi}."
            )
        result[str(name)] = (lo, opt, hi)
    return result


@dataclass(frozen=True)
class EngineTarget:
    """What an engine must match here: this machine's TensorRT and GPU, the wanted precision and
    (unless ``onnx_sha256`` is None, when an engine file is given directly) the ONNX graph.

    compute_capability: ``'8.9'`` (major.minor), shown as ``sm_89`` in messages
    """

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: Precision
    onnx_sha256: str | None = None

    def __post_init__(self) -> None:
        check_option("precision", self.precision, PRECISIONS)


@dataclass(frozen=True)
class EngineMeta(JsonDataclass):
    """Everything an engine was built for; saved as ``<key>.json`` beside ``<key>.engine``
    (:meth:`to_json`/:meth:`from_json` of :class:`~milmer.runtime.jsonable.JsonDataclass`)."""

    _json_what = "engine metadata"
    _json_required = ("onnx_name", "onnx_sha256", "tensorrt_version", "gpu_name", "compute_capability",
                      "precision", "profile")  # fmt: skip

    onnx_name: str
    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: Precision
    profile: Profile
    meta_version: int = META_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # free-form build notes, not in the key

    def __post_init__(self) -> None:
        check_option("precision", self.precision, PRECISIONS)
        object.__setattr__(self, "profile", _normalise_profile(self.profile))
        if self.meta_version != META_VERSION:
            raise MilmerInputError(
                f"Invalid engine metadata: meta_version {self.meta_version!r}, this milmer reads "
                f"{META_VERSION}; {_rebuild_hint(self.precision)}."
            )

    @property
    def key(self) -> str:
        return engine_key(
            onnx_sha256=self.onnx_sha256,
            tensorrt_version=self.tensorrt_version,
            gpu_name=self.gpu_name,
            compute_capability=self.compute_capability,
            precision=self.precision,
            profile=self.profile,
        )

    def matches(self, target: EngineTarget) -> list[str]:
        """The names of the fields in which this engine differs from ``target`` (empty: usable)."""
        return [
            name
            for name in _TARGET_FIELDS
            if getattr(target, name) is not None and getattr(self, name) != getattr(target, name)
        ]


def file_sha256(path: str | os.PathLike[str], *, chunk_bytes: int = 1 << 20) -> str:
    """sha256 of a file's bytes, read in chunks (graphs are ~100 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def engine_key(
    *,
    onnx_sha256: str,
    tensorrt_version: str,
    gpu_name: str,
    compute_capability: str,
    precision: Precision,
    profile: Profile,
) -> str:
    """sha256 (hex) over everything an engine depends on; the engine's file name in the cache."""
    check_option("precision", precision, PRECISIONS)
    canonical = {
        "onnx_sha256": onnx_sha256,
        "tensorrt_version": tensorrt_version,
        "gpu_name": gpu_name,
        "compute_capability": compute_capability,
        "precision": precision,
        "profile": {k: [list(s) for s in v] for k, v in sorted(_normalise_profile(profile).items())},
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def engine_paths(cache_dir: str | os.PathLike[str], key: str) -> tuple[Path, Path]:
    """``(cache_dir/<key>.engine, cache_dir/<key>.json)``."""
    cache_dir = Path(cache_dir)
    return cache_dir / f"{key}.engine", cache_dir / f"{key}.json"


def write_meta(meta: EngineMeta, cache_dir: str | os.PathLike[str]) -> Path:
    """Write ``<key>.json`` atomically into ``cache_dir`` (created if needed); returns its path.

    Write the engine first: a metadata file is the mark of a finished engine.
    """
    _, meta_path = engine_paths(cache_dir, meta.key)
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = meta_path.with_name(meta_path.name + ".tmp")
    tmp.write_text(meta.to_json() + "\n")
    os.replace(tmp, meta_path)
    return meta_path


def read_meta(path: str | os.PathLike[str]) -> EngineMeta:
    """Read an engine's ``.json``; ``path`` may also be the ``.engine`` it describes."""
    path = Path(path)
    if path.suffix == ".engine":
        path = path.with_suffix(".json")
    if not path.is_file():
        raise MilmerInputError(
            f"Invalid TensorRT engine: metadata file not found: {str(path)!r} (every engine needs its "
            f".json beside it); {_rebuild_hint()}."
        )
    try:
        return EngineMeta.from_json(path.read_text())
    except MilmerInputError as err:
        raise MilmerInputError(f"{err} (in {str(path)!r})") from None


def _describe(tensorrt_version: str, gpu_name: str, compute_capability: str) -> str:
    return f"TensorRT {tensorrt_version} on {gpu_name!r} (sm_{compute_capability.replace('.', '')})"


def check_engine_meta(meta: EngineMeta, expected: EngineTarget, *, engine: str = "engine") -> None:
    """Raise :class:`MilmerInputError` naming each field in which ``meta`` differs from ``expected``.

    ``engine`` names the engine in the message (a file name).
    """
    diff = meta.matches(expected)
    if not diff:
        return
    details = "; ".join(f"{name} {getattr(meta, name)!r} vs {getattr(expected, name)!r}" for name in diff)
    built = _describe(meta.tensorrt_version, meta.gpu_name, meta.compute_capability)
    here = _describe(expected.tensorrt_version, expected.gpu_name, expected.compute_capability)
    what = f"{meta.precision} from {meta.onnx_name} ({meta.onnx_sha256[:12]})"
    wanted = expected.precision + (
        f" from {meta.onnx_name} ({expected.onnx_sha256[:12]})" if expected.onnx_sha256 is not None else ""
    )
    raise MilmerInputError(
        f"TensorRT {engine} does not fit (differs in {', '.join(diff)}: {details}): "
        f"engine was built for {built}, {what}; this machine has {here} and wants {wanted}; "
        f"{_rebuild_hint(expected.precision)}."
    )


def matching_engines(
    cache_dir: str | os.PathLike[str], target: EngineTarget
) -> list[tuple[Path, EngineMeta]]:
    """``(engine path, meta)`` for every finished engine in ``cache_dir`` that fits ``target``.

    Sorted by largest maximum batch first (the profile's first axis), then by key.
    """
    cache_dir = Path(cache_dir)
    found: list[tuple[Path, EngineMeta]] = []
    if not cache_dir.is_dir():
        return found
    for meta_path in sorted(cache_dir.glob("*.json")):
        engine_path = meta_path.with_suffix(".engine")
        if not engine_path.is_file():
            continue
        meta = read_meta(meta_path)
        if not meta.matches(target):
            found.append((engine_path, meta))
    found.sort(key=lambda pm: (-min(hi[0] for _, _, hi in pm[1].profile.values()), pm[0].name))
    return found


def find_engine(cache_dir: str | os.PathLike[str], target: EngineTarget) -> tuple[Path, EngineMeta]:
    """The best engine in ``cache_dir`` for ``target`` (see :func:`matching_engines`).

    Raises :class:`MilmerInputError` when none fits: naming the differing fields of the closest
    engine built from the same graph (or of the closest engine at all), or saying the cache is empty.
    """
    found = matching_engines(cache_dir, target)
    if found:
        return found[0]
    cache_dir = Path(cache_dir)
    metas = (
        [
            (p.with_suffix(".engine"), read_meta(p))
            for p in sorted(cache_dir.glob("*.json"))
            if p.with_suffix(".engine").is_file()
        ]
        if cache_dir.is_dir()
        else []
    )
    if not metas:
        raise MilmerInputError(
            f"No TensorRT engine in {str(cache_dir)!r}; build one on this machine "
            f"({_describe(target.tensorrt_version, target.gpu_name, target.compute_capability)}) "
            f"with: {export_hint(target.precision, trt=True)}, or use backend='ort'."
        )
    path, closest = min(metas, key=lambda pm: (len(pm[1].matches(target)), pm[0].name))
    check_engine_meta(closest, target, engine=f"engine {path.name!r}")
    raise AssertionError("unreachable: the closest engine differs in at least one field")


def check_in_profile(name: str, shape: Shape, profile: Profile) -> None:
    """Raise :class:`MilmerInputError` unless ``shape`` of input ``name`` lies in the profile."""
    if name not in profile:
        raise MilmerInputError(
            f"Invalid input {name!r}: the engine's optimisation profile covers only "
            f"{', '.join(repr(n) for n in profile)}."
        )
    lo, _, hi = profile[name]
    inside = len(shape) == len(lo) and all(a <= s <= c for a, s, c in zip(lo, shape, hi))
    if not inside:
        raise MilmerInputError(
            f"Invalid input {name!r}: shape {tuple(shape)} is outside the engine's optimisation "
            f"profile (min {lo}, max {hi}); split the batch or rebuild the engine with a larger "
            f"profile (milmer export CKPT --out DIR --trt)."
        )


# ---------------------------------------------------------------------- optimisation profiles in bags
BagProfile = tuple[int, int, int]
#: ``milmer export --trt-profile`` default (see :mod:`milmer.runtime.choices`).
DEFAULT_BAG_PROFILE: BagProfile = choices.DEFAULT_BAG_PROFILE


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
            f"Invalid value for '--trt-profile': expected (min, opt, max) bags with 1 <= min <= opt <= max, "
            f"got {bags!r}."
        )
    return (int(bags[0]), int(bags[1]), int(bags[2]))


def bag_profiles(spec: ModelSpec, bags: BagProfile) -> dict[str, Profile]:
    """Graph stem -> optimisation profile (input name -> (min, opt, max) shapes) for ``bags``.

    The fusion graph's batch axis B takes the bags as they are; the backbone's frame axis N takes
    ``bags * frames_per_window`` (the runtime sends all frames of a batch of bags in one call).
    """
    bags = check_bag_profile(bags)
    g, f, s = spec.graph, spec.face.frames_per_window, spec.face.frame_size
    eeg, tokens = g.fusion_inputs

    def triple(shape: tuple[int, ...], scale: int = 1) -> tuple[Shape, Shape, Shape]:
        lo, opt, hi = ((b * scale, *shape) for b in bags)
        return lo, opt, hi

    return {
        "swin": {g.backbone_input: triple((3, s, s), f)},
        "fusion": {
            eeg: triple((spec.eeg.n_channels, spec.eeg.window_samples)),
            tokens: triple((f, g.tokens_per_frame, g.token_dim)),
        },
    }


def profile_option(profile: Profile, which: int) -> str:
    """``frames:10x3x224x224,...``: one of a profile's shapes (0 min, 1 opt, 2 max) in the syntax
    of trtexec ``--minShapes`` and ONNX Runtime's ``trt_profile_min_shapes``."""
    return ",".join(f"{name}:{'x'.join(str(d) for d in shapes[which])}" for name, shapes in profile.items())
