"""Bags in, scores out: the backbone and fusion graphs loaded once, and the batch policy.

:class:`Scorer` is the small interface a :class:`~.pipeline.Pipeline` holds: the spec, the batch,
where the model is, what runs where, ``score_bags`` and ``close``. :class:`BagScorer` is the local
one; :class:`~.serve.client.RemoteScorer` scores on a Triton server.

:class:`BagScorer` holds both runners and scores ``B`` bags per call (:meth:`BagScorer.score_bags`):
the frames of all bags go through the backbone in one call, then the fusion graph scores the
bags with their EEG windows. How many bags make a call when none is asked for is
:func:`default_batch`'s. Streaming a recording through it is :mod:`.streaming`'s job.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from .backends.base import Precision, Runner
from .backends.registry import BACKENDS, Backend, build_runner, check_backend_options
from .check import check_array, check_equal, check_int, check_nonempty
from .choices import check_backend, check_device, check_precision
from .model_dir import ModelBundle, open_model_dir
from .precision import choose_precision
from .spec import ModelSpec

__all__ = ["BAG_OUTPUTS", "BagScorer", "DEFAULT_BATCH", "DEFAULT_BATCH_GPU", "Scorer", "default_batch"]

#: Keys of :meth:`BagScorer.score_bags`' result, in the order of ``spec.graph.fusion_outputs``.
BAG_OUTPUTS: tuple[str, ...] = ("logits", "probabilities", "mil_weights", "selected")

#: Bags per backbone call when none is given, by the device the backbone runs on.
DEFAULT_BATCH = {"cpu": 1}
DEFAULT_BATCH_GPU = 16

_S = TypeVar("_S", bound="BagScorer")


def default_batch(device: str) -> int:
    """1 bag (10 frames) per call on a CPU, 16 on a GPU (see :class:`BagScorer`)."""
    return DEFAULT_BATCH.get(device, DEFAULT_BATCH_GPU)


@runtime_checkable
class Scorer(Protocol):
    """What a :class:`~.pipeline.Pipeline` holds: scores bags, local (:class:`BagScorer`) or remote.

    spec:     the model's :class:`~.spec.ModelSpec` (preprocessing and graph I/O)
    batch:    bags per :meth:`score_bags` call the pipeline gathers
    location: where the model is (its folder, or the server's URL), written with the predictions
    settings: what runs where (backends, devices, precision, batch; or the server), for the output
    """

    spec: ModelSpec
    batch: int

    @property
    def location(self) -> str | os.PathLike[str]: ...

    @property
    def settings(self) -> dict[str, Any]: ...

    def score_bags(
        self, eeg: np.ndarray, crops: np.ndarray, *, timings: dict[str, float] | None = None
    ) -> dict[str, np.ndarray]:
        """eeg (B, C, T) float32, crops (B, F, S, S, 3) uint8 -> logits, probabilities (B, K)
        float32, mil_weights (B, F) float32, selected (B, top_k) int64 (:data:`BAG_OUTPUTS`)."""
        ...

    def close(self) -> None: ...


def _backend_name(runner: Runner) -> str:
    return next(name for name, cls in BACKENDS.items() if isinstance(runner, cls))


class BagScorer:
    """An exported model's two graphs, loaded once, scoring bags.

    model:            a model directory or a :class:`~.model_dir.ModelBundle` from
                      :func:`~.model_dir.load_model_dir`
    backend:          'auto' (TensorRT when it can run here, else ONNX Runtime), 'ort', 'trt' or
                      'openvino'
    device:           'auto', 'cpu', 'cuda' or 'tensorrt' (ONNX Runtime's TensorRT provider)
    precision:        which graphs of the directory to load ('fp32', 'fp16', 'int8'); ``None``:
                      the bundle's, or 'fp32' for a directory. A bundle loaded at another
                      precision is an error. 'bf16' and 'auto' load the fp32 graphs and compute
                      them in bfloat16 on OpenVINO (always / where the CPU has it and it agrees
                      with fp32; :func:`~.precision.choose_precision`)
    batch:            windows (bags) scored per backbone call: ``batch * frames_per_window`` frames;
                      ``None``: 1 on a CPU (larger batches are no faster there and cost
                      memory: on a 2-core AVX2 CPU, fp32 Swin-T scored 0.74 bags/s at 1 and 0.66
                      at 2, and a 60 s recording peaked at 1.25 GB at 1, 2.0 GB at 2), 16 on a GPU
    intra_op_threads: ONNX Runtime CPU threads per operator (``None``: the cores available)
    backend_options:  runner options per backend, passed through to the backends (validated by
                      :func:`~.backends.registry.check_backend_options`), e.g.
                      ``{'openvino': {'inference_precision': 'bf16', 'num_threads': 4}}``

    Use as a context manager (or call :meth:`close`) to free the sessions.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelBundle,
        *,
        backend: Backend = "auto",
        device: str = "auto",
        precision: Precision | None = None,
        batch: int | None = None,
        intra_op_threads: int | None = None,
        backend_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        # Checked here, once, before anything loads (the public entry point): the layers below
        # (precision plan, model folder, backend choice, runners) trust these values.
        backend = check_backend(backend)
        device = check_device(device)
        if precision is not None:
            precision = check_precision(precision)  # type: ignore[assignment]
        if batch is not None:
            batch = check_int("batch", batch, low=1)
        check_int("intra_op_threads", intra_op_threads, low=1, allow_none=True)
        options = check_backend_options(backend_options)
        if intra_op_threads is not None:
            given = options.get("ort", {}).get("intra_op_num_threads", intra_op_threads)
            check_equal("intra_op_threads", intra_op_threads, given,
                        why="backend_options['ort']['intra_op_num_threads']", hint="give one of them")
            options["ort"] = {**options.get("ort", {}), "intra_op_num_threads": intra_op_threads}
        plan = None
        if precision in ("auto", "bf16"):
            plan = choose_precision(model.dir if isinstance(model, ModelBundle) else model, precision, backend=backend, device=device)
            precision, backend = plan.graphs, plan.backend or backend  # type: ignore[assignment]
            asked = options.get("openvino", {}).get("inference_precision", plan.compute)
            if plan.compute == "bf16":
                check_equal("backend_options['openvino']['inference_precision']", asked, "bf16",
                            why=f"precision {plan.asked!r} computes in bf16", hint="give one of them")
            for name, opts in plan.backend_options.items():
                options[name] = {**options.get(name, {}), **opts}
        self.precision_choice = plan
        if isinstance(model, ModelBundle):
            if precision is not None:
                check_equal("precision", precision, model.precision, why="the precision the model bundle was loaded at",
                            hint=f"load it with load_model_dir(..., precision={precision!r})")
            bundle = model
        else:
            bundle = open_model_dir(model, precision=precision or "fp32")
        self.bundle = bundle
        self.spec = bundle.spec
        t0 = time.perf_counter()
        self.swin = build_runner(
            backend, bundle.swin_path, device=device, precision=bundle.precision, options=options
        )
        self.fusion = build_runner(
            backend, bundle.fusion_path, device=device, precision=bundle.precision, options=options
        )
        self.swin.activate()
        try:
            self.fusion.activate()
        except BaseException:
            self.swin.deactivate()
            raise
        self.load_s = time.perf_counter() - t0
        self.batch: int = batch if batch is not None else default_batch(self.swin.device)

    @property
    def location(self) -> os.PathLike[str]:
        """The model folder."""
        return self.bundle.dir

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release both sessions (idempotent)."""
        self.swin.deactivate()
        self.fusion.deactivate()

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def settings(self) -> dict[str, Any]:
        """What runs where: backends and devices per graph, precision, batch, load time."""
        return {
            "backend": {"swin": _backend_name(self.swin), "fusion": _backend_name(self.fusion)},
            "device": {"swin": self.swin.device, "fusion": self.fusion.device},
            "precision": self.bundle.precision,
            # What the products run in, from the runner itself (bf16 however it was asked for).
            "compute_precision": "bf16" if getattr(self.swin, "inference_precision", None) == "bf16" else self.bundle.precision,
            "batch": self.batch,
            "model_load_s": round(self.load_s, 4),
        }

    # ------------------------------------------------------------------ scoring
    def score_bags(
        self, eeg: np.ndarray, crops: np.ndarray, *, timings: dict[str, float] | None = None
    ) -> dict[str, np.ndarray]:
        """Score ``B`` bags: one backbone call on all their frames, one fusion call.

        eeg:   (B, C, T) float32 EEG windows (spec channels, microvolts)
        crops: (B, F, S, S, 3) uint8 RGB face crops
        timings: if given, seconds are added under 'normalise', 'backbone' and 'fusion'

        Returns logits (B, n_classes) float32, probabilities (B, n_classes) float32,
        mil_weights (B, F) float32, selected (B, top_k) int64.
        """
        spec = self.spec
        f, s = spec.face.frames_per_window, spec.face.frame_size
        c, t = spec.eeg.n_channels, spec.eeg.window_samples
        check_array("crops", crops, shape=("B", f, s, s, 3), dtype=np.uint8)
        n = crops.shape[0]
        check_array("eeg", eeg, shape=(n, c, t), dtype=np.float32)
        check_nonempty("crops", crops, "bag")
        from .face.crop import normalize

        g = spec.graph
        clock = time.perf_counter()
        frames = normalize(crops, spec.face.mean, spec.face.std).reshape(n * f, 3, s, s)  # (B*F, 3, S, S)
        tick = time.perf_counter()
        tokens = self.swin.infer({g.backbone_input: frames})[g.backbone_output]  # (B*F, P, D)
        del frames
        tock = time.perf_counter()
        tokens = tokens.reshape(n, f, g.tokens_per_frame, g.token_dim)  # (B, F, P, D)
        out = self.fusion.infer(dict(zip(g.fusion_inputs, (eeg, tokens))))
        end = time.perf_counter()
        if timings is not None:
            timings["normalise"] = timings.get("normalise", 0.0) + tick - clock
            timings["backbone"] = timings.get("backbone", 0.0) + tock - tick
            timings["fusion"] = timings.get("fusion", 0.0) + end - tock
        return {key: out[name] for key, name in zip(BAG_OUTPUTS, g.fusion_outputs)}
