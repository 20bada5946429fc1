"""``--precision``: which graphs of a model folder load, and the precision their products run in.

=========  ===================================================================================
'fp32'     ``swin.onnx``/``fusion.onnx``, computed in float32
'fp16'     ``*.fp16.onnx`` (GPUs; OpenVINO and ONNX Runtime run them on a CPU too)
'int8'     ``*.int8.onnx``
'bf16'     the fp32 graphs on OpenVINO with ``INFERENCE_PRECISION_HINT=bf16``: matrix products
           in bfloat16 with float32 accumulation. Needs a CPU with native bfloat16
           (``avx512_bf16`` or ``amx_bf16`` in /proc/cpuinfo) and OpenVINO; ONNX Runtime's CPU
           provider and TensorRT have no bfloat16 path for these graphs, so it is refused there.
'auto'     ``milmer-infer``'s default: the fp32 graphs, in bfloat16 when all of these hold --
           the backend that ``auto`` picks is OpenVINO on the CPU, the CPU has native bfloat16,
           and bf16 agrees with fp32 on this model (:func:`bf16_agreement`); else what 'fp32'
           runs (today's choice), so GPUs and AVX2-only CPUs see no change.
=========  ===================================================================================

bf16 agreement is the benchmark's gate (:data:`AGREEMENT_GATE`: >= 98 % of top-1 classes and
>= 95 % of the MIL-selected frame sets equal to fp32's) on :data:`CHECK_BAGS` deterministic bags.
It is measured on first use and cached per model files, CPU and OpenVINO version under
``milmer_home()/bf16-checks`` (:func:`~.home.milmer_home`), so later runs pay nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import choices as _choices
from .backends.openvino import BF16_FLAGS, OpenVinoRunner, cpu_flags
from .check import MilmerInputError, requires_error
from .choices import Backend, Device, GraphPrecision, InferPrecision
from .home import milmer_home

__all__ = [
    "PRECISION_CHOICES",
    "AGREEMENT_GATE",
    "CHECK_BAGS",
    "Bf16Agreement",
    "PrecisionChoice",
    "graph_precision",
    "choose_precision",
    "bf16_agreement",
]

#: ``--precision`` values (numpy-free copy in :mod:`.choices`).
PRECISION_CHOICES: tuple[str, ...] = _choices.PRECISION_CHOICES
#: (top-1, selected frames) agreement with fp32 that bf16 needs for 'auto' (as ``milmer bench``'s gate).
AGREEMENT_GATE: tuple[float, float] = (0.98, 0.95)
#: Bags of the first-use bf16 check: with 8, one differing top-1 already fails the gate.
CHECK_BAGS = 8
CHECK_DIRNAME = "bf16-checks"


@dataclass(frozen=True)
class Bf16Agreement:
    """bf16 against fp32 on the check bags. Fractions in [0, 1]; ``max_abs_probabilities``: max |dp|."""

    n_bags: int
    top1: float
    selected: float
    max_abs_probabilities: float
    cached: bool = False

    @property
    def agrees(self) -> bool:
        return self.top1 >= AGREEMENT_GATE[0] and self.selected >= AGREEMENT_GATE[1]


@dataclass(frozen=True)
class PrecisionChoice:
    """What ``--precision`` resolved to.

    graphs:    which files load ('fp32', 'fp16', 'int8')
    compute:   what the products run in ('fp32', 'bf16', 'fp16', 'int8')
    note:      one line for the user when 'auto' decided something worth saying, else ``None``
    agreement: the bf16 check 'auto' used, if any
    """

    asked: str
    graphs: str
    compute: str
    note: str | None = None
    agreement: Bf16Agreement | None = None

    @property
    def backend_options(self) -> dict[str, dict[str, Any]]:
        """Runner options that make ``compute`` happen (bf16: OpenVINO's inference precision)."""
        return {"openvino": {"inference_precision": "bf16"}} if self.compute == "bf16" else {}

    @property
    def backend(self) -> str | None:
        """The backend ``compute`` needs (``None``: any)."""
        return "openvino" if self.compute == "bf16" else None


def graph_precision(precision: InferPrecision) -> GraphPrecision:
    """The graph files a (checked, :func:`~.choices.check_precision`) ``--precision`` loads: 'fp32'
    for 'auto' and 'bf16', else itself."""
    return "fp32" if precision in ("auto", "bf16") else precision  # type: ignore[return-value]


def _bf16_refusal(backend: str, device: str, flags: Callable[[], frozenset[str]] | None) -> MilmerInputError | None:
    """Why ``--precision bf16`` cannot run with this ``--backend``/``--device`` here (``None``: it can)."""
    if backend not in ("auto", "openvino"):
        return requires_error(
            "--precision", "bf16", "OpenVINO's bfloat16 hint on the fp32 graphs", f"--backend {backend} (no bfloat16 path)",
            hint="use --backend openvino (or auto), or --precision fp32",
        )
    if device not in ("auto", "cpu"):
        return requires_error(
            "--precision", "bf16", "the CPU (OpenVINO)", f"--device {device}",
            hint="use --device cpu (or auto), or --precision fp16 on a GPU",
        )
    reason = OpenVinoRunner.unavailable_reason(
        "swin.onnx", device="cpu", precision="fp32", inference_precision="bf16", cpu_flags=flags
    )
    if reason is None:
        return None
    if "bfloat16" in reason:
        return requires_error(
            "--precision", "bf16", "a CPU with native bfloat16 arithmetic",
            f"one without the CPU flags {' and '.join(sorted(BF16_FLAGS))} (/proc/cpuinfo)",
            hint="use --precision fp32 (or auto, which picks bf16 only where the CPU has it)",
        )
    return MilmerInputError(f"Invalid value for '--precision': 'bf16' needs OpenVINO: {reason}")


def choose_precision(
    model_dir: str | os.PathLike[str],
    precision: InferPrecision = "auto",
    *,
    backend: Backend = "auto",
    device: Device = "auto",
    cpu_flags_fn: Callable[[], frozenset[str]] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> PrecisionChoice:
    """Resolve ``--precision`` for ``model_dir`` and the asked ``--backend``/``--device`` (module doc).

    cpu_flags_fn: returns the CPU flags (default: /proc/cpuinfo); cache_dir: where bf16 checks are
    cached (default ``milmer_home()/bf16-checks``); log: called with a line before a first-use check.
    ``precision``, ``backend`` and ``device`` are trusted: checked where they entered (the request
    object of ``milmer-infer``, :class:`~.scoring.BagScorer`). Raises :class:`MilmerInputError`
    for a precision this machine or backend cannot run.
    """
    if precision not in ("auto", "bf16"):
        return PrecisionChoice(precision, precision, precision)
    if precision == "bf16":
        refusal = _bf16_refusal(backend, device, cpu_flags_fn)
        if refusal is not None:
            raise refusal
        return PrecisionChoice("bf16", "fp32", "bf16")
    fp32 = PrecisionChoice("auto", "fp32", "fp32")
    if _bf16_refusal(backend, device, cpu_flags_fn) is not None:
        return fp32
    if backend == "auto" and not _auto_picks_openvino_cpu(Path(model_dir), device):
        return fp32
    flags = (cpu_flags_fn or cpu_flags)()
    agreement = bf16_agreement(model_dir, flags=flags, cache_dir=cache_dir, log=log)
    have = "/".join(sorted(flags & BF16_FLAGS))
    counts = f"top-1 {agreement.top1:.0%}, selected frames {agreement.selected:.0%} on {agreement.n_bags} check bags"
    if agreement.agrees:
        note = f"Precision bf16 (auto: CPU has {have}; agrees with fp32: {counts}); --precision fp32 to turn off."
        return PrecisionChoice("auto", "fp32", "bf16", note, agreement)
    note = (
        f"Precision fp32 (auto: bf16 disagrees with fp32 on this model: {counts}, needs "
        f"{AGREEMENT_GATE[0]:.0%}/{AGREEMENT_GATE[1]:.0%}); --precision bf16 to force it."
    )
    return PrecisionChoice("auto", "fp32", "fp32", note, agreement)


def _auto_picks_openvino_cpu(model_dir: Path, device: Device) -> bool:
    """Whether ``--backend auto`` would run the fp32 graphs on OpenVINO on the CPU here (a GPU
    candidate first keeps its fp32/fp16 path: 'auto' changes nothing on GPUs)."""
    from .backends.registry import select_backend

    graphs = [model_dir / "swin.onnx", model_dir / "fusion.onnx"]
    try:
        choice = select_backend(graphs, "auto", device, "fp32")
    except MilmerInputError:
        return False
    return (choice.backend, choice.device) == ("openvino", "cpu")


# ---------------------------------------------------------------------- bf16 check
def _cache_key(model_dir: Path, flags: frozenset[str]) -> str:
    """Model files (spec bytes; graph sizes and mtimes), CPU model and flags, OpenVINO version."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    digest.update((model_dir / "spec.json").read_bytes())
    for name in ("swin.onnx", "fusion.onnx"):
        st = (model_dir / name).stat()
        digest.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    digest.update(_cpu_model().encode())
    digest.update(" ".join(sorted(flags)).encode())
    try:
        digest.update(version("openvino").encode())
    except PackageNotFoundError:
        pass
    return digest.hexdigest()[:24]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor()


def check_bags(spec: Any, n_bags: int = CHECK_BAGS, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic bags: eeg (B, C, T) float32 (Gaussian, 20 uV) and crops (B, F, S, S, 3) uint8
    (smooth random images: blobs at 1/32 of the frame size plus fine noise, not flat fields)."""
    import cv2

    rng = np.random.default_rng(seed)
    f, s = spec.face.frames_per_window, spec.face.frame_size
    coarse = rng.uniform(0, 255, (n_bags * f, max(2, s // 32), max(2, s // 32), 3)).astype(np.float32)
    crops = np.stack([cv2.resize(c, (s, s), interpolation=cv2.INTER_CUBIC) for c in coarse])
    crops = np.clip(crops + rng.normal(0, 8, crops.shape), 0, 255).astype(np.uint8).reshape(n_bags, f, s, s, 3)
    eeg = (20 * rng.standard_normal((n_bags, spec.eeg.n_channels, spec.eeg.window_samples))).astype(np.float32)
    return eeg, crops


def _score(model_dir: Path, inference_precision: str, eeg: np.ndarray, crops: np.ndarray) -> dict[str, np.ndarray]:
    """Both graphs on OpenVINO in ``inference_precision``, one bag per call (as the pipeline on a
    CPU); returns 'probabilities' (B, K) and 'selected' (B, top_k). Runners directly: the scorer
    imports this module."""
    from .backends.registry import build_runner
    from .face.crop import normalize
    from .spec import ModelSpec

    spec = ModelSpec.load(model_dir / "spec.json")
    g = spec.graph
    options = {"openvino": {"inference_precision": inference_precision}}
    swin = build_runner("openvino", model_dir / "swin.onnx", device="cpu", precision="fp32", options=options)
    fusion = build_runner("openvino", model_dir / "fusion.onnx", device="cpu", precision="fp32", options=options)
    probabilities, selected = [], []
    with swin, fusion:
        for b in range(len(eeg)):
            frames = normalize(crops[b], spec.face.mean, spec.face.std)  # (F, 3, S, S)
            tokens = swin.infer({g.backbone_input: frames})[g.backbone_output][None]  # (1, F, P, D)
            out = fusion.infer(dict(zip(g.fusion_inputs, (eeg[b : b + 1], tokens))))
            probabilities.append(out[g.fusion_outputs[1]])
            selected.append(out[g.fusion_outputs[3]])
    return {"probabilities": np.concatenate(probabilities), "selected": np.concatenate(selected)}


def measure_bf16_agreement(model_dir: str | os.PathLike[str], n_bags: int = CHECK_BAGS) -> Bf16Agreement:
    """Score :func:`check_bags` with OpenVINO in fp32 and in bf16 and compare (no cache)."""
    from .spec import ModelSpec

    model_dir = Path(model_dir)
    eeg, crops = check_bags(ModelSpec.load(model_dir / "spec.json"), n_bags)
    ref, got = (_score(model_dir, p, eeg, crops) for p in ("fp32", "bf16"))
    return Bf16Agreement(
        n_bags=n_bags,
        top1=float(np.mean(ref["probabilities"].argmax(1) == got["probabilities"].argmax(1))),
        selected=float(np.mean((np.sort(ref["selected"], 1) == np.sort(got["selected"], 1)).all(1))),
        max_abs_probabilities=float(np.abs(ref["probabilities"] - got["probabilities"]).max()),
    )


def bf16_agreement(
    model_dir: str | os.PathLike[str],
    *,
    flags: frozenset[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> Bf16Agreement:
    """bf16 vs fp32 on ``model_dir`` on this CPU: from the cache, else measured once and cached.

    A cache that cannot be written (read-only home) is skipped: the check then runs every time."""
    model_dir = Path(model_dir)
    folder = Path(cache_dir) if cache_dir is not None else milmer_home() / CHECK_DIRNAME
    path = folder / f"{_cache_key(model_dir, flags if flags is not None else cpu_flags())}.json"
    try:
        data = json.loads(path.read_text())
        return Bf16Agreement(**{**data, "cached": True})
    except (OSError, ValueError, TypeError):
        pass
    if log is not None:
        log(f"Checking bf16 against fp32 on {CHECK_BAGS} bags (once per model and CPU)...")
    result = measure_bf16_agreement(model_dir)
    try:
        from .files import write_json_atomic

        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {k: v for k, v in asdict(result).items() if k != "cached"})
    except OSError:
        pass
    return result
