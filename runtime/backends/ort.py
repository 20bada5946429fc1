"""ONNX Runtime backend: CPU, CUDA or ONNX Runtime's TensorRT execution provider.

``onnxruntime`` is imported when the runner is created, never at module import. A requested
provider that this onnxruntime build lacks is an error, not a silent fall-back to CPU, and so is
a session that loaded but dropped the provider (ORT does that when CUDA libraries are missing).

The TensorRT EP gets the graph's optimisation profile (``trt_profile_min/opt/max_shapes``: 1 to
32 bags by default, as ``milmer export --trt``), so a batch of another size (the last, shorter
batch of a recording) runs on the same engine instead of rebuilding it mid-recording; engines
and timing caches are cached on disk. It gets no ``trt_fp16_enable``: the fp16 graph carries its
types (LayerNormalization in float32), which the EP keeps by building a strongly typed network
when no precision flag is set, and TensorRT 11 has no FP16 builder flag at all. The int8 graphs
are dynamically quantised for CPUs, which TensorRT cannot run, so int8 with the TensorRT EP is
refused. Never run here: no GPU, and this onnxruntime has only the CPU provider.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..check import MilmerInputError, check_int, requires_error
from ..graph_info import ORT_DTYPES, SPEC_METADATA_KEY, read_graph_info
from .base import Device, Precision, Runner, TensorMeta
from .trt_cache import DEFAULT_BAG_PROFILE, Profile, bag_profiles, profile_option

__all__ = [
    "OrtRunner",
    "PROVIDERS",
    "ORT_DTYPES",
    "SESSION_CONFIG",
    "available_providers",
    "default_threads",
    "graph_trt_profile",
]

#: device -> execution providers in priority order (later ones take the nodes earlier ones cannot).
PROVIDERS: dict[str, tuple[str, ...]] = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}

#: Session config entries every milmer session gets (ONNX Runtime's
#: ``onnxruntime_session_options_config_keys.h``). ``allow_spinning`` 0: a pool's threads sleep
#: when their operator is done instead of busy-waiting for the next one. milmer runs three
#: sessions in turn (face detector, backbone, fusion) next to a decoding thread, and one session's
#: spinning workers took the cores from the next: on a 2-core CPU the fusion graph took 47 ms per
#: window after the backbone with spinning, 23 ms without, and the backbone 916 -> 836 ms while
#: faces were decoded beside it (``Pipeline.predict``, 60 s demo recording, int8 graphs).
SESSION_CONFIG: dict[str, str] = {"session.intra_op.allow_spinning": "0"}

_GPU_HINT = (
    "install the GPU build (`pip uninstall onnxruntime && pip install onnxruntime-gpu`, or "
    "`pip install \"milmer[gpu]\"`; on Jetson NVIDIA's onnxruntime-gpu wheel for JetPack) with matching "
    "CUDA/cuDNN (and TensorRT for --device tensorrt)"
)
_INT8_ON_TENSORRT = (
    "Invalid combination of '--precision' 'int8' and '--device' 'tensorrt': milmer's int8 graphs are "
    "dynamically quantised for CPUs (DynamicQuantizeLinear, MatMulInteger), which TensorRT cannot run, "
    "so the TensorRT EP would hand them to CUDA or the CPU and gain nothing; use --precision fp16 or "
    "fp32 with --device tensorrt, or --precision int8 with --device cpu"
)


def graph_trt_profile(model_path: str | os.PathLike[str], bags: tuple[int, int, int] = DEFAULT_BAG_PROFILE) -> Profile:
    """The optimisation profile of a milmer graph file for ``bags`` (min, opt, max) per call,
    from the spec embedded in the graph; the same shapes ``milmer export --trt`` builds with."""
    from ..spec import ModelSpec

    info = read_graph_info(model_path)
    text = info.metadata.get(SPEC_METADATA_KEY)
    if text is None:
        raise MilmerInputError(
            f"{Path(model_path).name} carries no {SPEC_METADATA_KEY!r} metadata, so its TensorRT optimisation "
            "profile is unknown; pass trt_profile= (input name -> (min, opt, max) shapes)."
        )
    for profile in bag_profiles(ModelSpec.from_json(text), bags).values():
        if sorted(profile) == sorted(info.inputs):
            return profile
    raise MilmerInputError(
        f"{Path(model_path).name} has inputs {sorted(info.inputs)}, neither milmer graph's; pass trt_profile=."
    )


def available_providers() -> list[str]:
    """The execution providers this onnxruntime build offers."""
    import onnxruntime

    return list(onnxruntime.get_available_providers())


def default_threads() -> int:
    """CPU cores this process may use (affinity-aware, so containers are not oversubscribed)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class OrtRunner(Runner):
    """Runs an ``.onnx`` graph with ONNX Runtime.

    device:               'cpu', 'cuda' (CUDA EP, CPU for unsupported nodes) or 'tensorrt'
                          (ORT's TensorRT EP, then CUDA, then CPU)
    precision:            the graph file's precision; with 'tensorrt', 'fp16' lets TensorRT build
                          fp16 kernels (``trt_fp16_enable``) and 'int8' enables int8 for QDQ graphs
    intra_op_num_threads: CPU threads per operator; ``None``: the cores this process may use
    trt_cache_dir:        where the TensorRT EP keeps engines and timing caches (``None``: an
                          ``engines/ort-trt`` folder beside the graph)
    trt_workspace_bytes:  TensorRT builder workspace limit
    trt_profile:          the TensorRT EP's optimisation profile, input name -> (min, opt, max)
                          shapes (``None``: :func:`graph_trt_profile` of the graph, 1 to 32 bags)
    """

    DEVICES: ClassVar[tuple[str, ...]] = tuple(PROVIDERS)
    #: ORT's TensorRT EP builds its engines on first use (minutes for Swin-T): only on request.
    AUTO_DEVICES: ClassVar[tuple[str, ...]] = ("cuda", "cpu")

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        device: Device = "cpu",
        precision: Precision = "fp32",
        intra_op_num_threads: int | None = None,
        trt_cache_dir: str | os.PathLike[str] | None = None,
        trt_workspace_bytes: int = 4 << 30,
        trt_profile: Profile | None = None,
    ) -> None:
        super().__init__(model_path, device=device, precision=precision)
        check_int("intra_op_num_threads", intra_op_num_threads, low=1, allow_none=True)
        check_int("trt_workspace_bytes", trt_workspace_bytes, low=1)
        self.intra_op_num_threads = intra_op_num_threads or default_threads()
        self.trt_cache_dir = (
            Path(trt_cache_dir)
            if trt_cache_dir is not None
            else self.model_path.parent / "engines" / "ort-trt"
        )
        self.trt_workspace_bytes = trt_workspace_bytes
        self.trt_profile = trt_profile
        # Fail at construction, before any model is loaded, when the provider cannot exist here.
        reason = self.unavailable_reason(self.model_path, device=device, precision=precision)
        if reason is not None:
            raise MilmerInputError(reason)
        self._session: Any = None
        self._output_names: list[str] = []

    @classmethod
    def unavailable_reason(
        cls, model_path: str | os.PathLike[str], *, device: str, precision: Precision, **options: object
    ) -> str | None:
        if device == "tensorrt" and precision == "int8":
            return _INT8_ON_TENSORRT + "."
        requested = PROVIDERS[device][0]
        try:
            available = available_providers()
        except ImportError as err:
            return f"onnxruntime is not installed ({err}); install `milmer[cpu]` or `milmer[gpu]`"
        if requested not in available:
            return str(requires_error(
                "--device", device, f"onnxruntime's {requested}", f"an onnxruntime that offers only {', '.join(available)}",
                hint=f"{_GPU_HINT}, or use --device cpu",
            ))
        return None

    def provider_options(self) -> list[tuple[str, dict[str, Any]]]:
        """``(provider, options)`` pairs handed to ``InferenceSession(providers=...)``."""
        result: list[tuple[str, dict[str, Any]]] = []
        for provider in PROVIDERS[self.device]:
            options: dict[str, Any] = {}
            if provider == "TensorrtExecutionProvider":
                profile = self.trt_profile if self.trt_profile is not None else graph_trt_profile(self.model_path)
                options = {
                    "trt_profile_min_shapes": profile_option(profile, 0),
                    "trt_profile_opt_shapes": profile_option(profile, 1),
                    "trt_profile_max_shapes": profile_option(profile, 2),
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": str(self.trt_cache_dir),
                    "trt_timing_cache_enable": True,
                    "trt_timing_cache_path": str(self.trt_cache_dir),
                    "trt_max_workspace_size": self.trt_workspace_bytes,
                }
            result.append((provider, options))
        return result

    def activate_impl(self) -> None:
        import onnxruntime
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.intra_op_num_threads
        options.log_severity_level = 3  # errors only: fp16 graphs warn harmlessly about constant folding
        for key, value in SESSION_CONFIG.items():
            options.add_session_config_entry(key, value)
        if self.device == "tensorrt":
            self.trt_cache_dir.mkdir(parents=True, exist_ok=True)
        pairs = self.provider_options()
        load_errors = (
            ort_errors.InvalidProtobuf,
            ort_errors.InvalidGraph,
            ort_errors.NoSuchFile,
            ort_errors.NotImplemented,
            ort_errors.InvalidArgument,
            ort_errors.Fail,
        )
        try:
            session = onnxruntime.InferenceSession(
                str(self.model_path),
                sess_options=options,
                providers=[p for p, _ in pairs],
                provider_options=[o for _, o in pairs],
            )
        except load_errors as err:
            raise MilmerInputError(
                f"Cannot load ONNX model {str(self.model_path)!r} (corrupt, truncated or not an ONNX "
                f"file? re-export it): {err}"
            ) from None
        requested = PROVIDERS[self.device][0]
        if requested not in session.get_providers():
            raise requires_error(
                "--device", self.device, f"onnxruntime's {requested} started for {self.model_path.name!r}",
                f"a session with only {', '.join(session.get_providers())} (it could not start {requested})",
                hint=f"check the CUDA/cuDNN/TensorRT libraries: {_GPU_HINT}",
            )
        self._session = session
        self._output_names = [o.name for o in session.get_outputs()]

    def deactivate_impl(self) -> None:
        self._session = None
        self._output_names = []

    def input_metadata_impl(self) -> dict[str, TensorMeta]:
        meta: dict[str, TensorMeta] = {}
        for arg in self._session.get_inputs():
            if arg.type not in ORT_DTYPES:
                raise MilmerInputError(
                    f"Unsupported input {arg.name!r} of type {arg.type} in {self.model_path.name!r}."
                )
            # ORT reports a dynamic axis as its dim_param (str) or None; fixed axes as int.
            shape = tuple(d if isinstance(d, int) else None for d in arg.shape)
            labels = tuple(d if isinstance(d, str) else None for d in arg.shape)
            meta[arg.name] = TensorMeta(ORT_DTYPES[arg.type], shape, labels)
        return meta

    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._session.run(self._output_names, feed)
        return dict(zip(self._output_names, outputs))
