"""The inference-backend interface, after Polygraphy's ``BaseRunner``.

A :class:`Runner` wraps one graph (an ONNX file or a TensorRT engine). It is a context manager:
the session is created on :meth:`Runner.activate` (``with runner:``) and released on
:meth:`Runner.deactivate`. :meth:`Runner.infer` checks the feed against
:meth:`Runner.input_metadata` here, once for every backend, then calls the backend's
``infer_impl``. A backend subclasses :class:`Runner` and overrides the four ``*_impl`` methods.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Literal

import numpy as np

from .. import choices
from ..check import MilmerInputError, check_option, check_path_exists, check_suffix, check_type

__all__ = ["Device", "Precision", "PRECISIONS", "TensorMeta", "Runner"]

Device = Literal["cpu", "cuda", "tensorrt"]
Precision = Literal["fp32", "fp16", "int8"]
PRECISIONS: tuple[str, ...] = choices.PRECISIONS


@dataclass(frozen=True)
class TensorMeta:
    """What a graph input accepts.

    shape:  one entry per axis, ``None`` where the axis is dynamic
    labels: the dynamic axes' symbolic names (``'B'``, ``'N'``) for messages, ``None`` if unnamed
    """

    dtype: np.dtype
    shape: tuple[int | None, ...]
    labels: tuple[str | None, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        object.__setattr__(self, "shape", tuple(self.shape))
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(self.labels))
            assert len(self.labels) == len(self.shape), (self.labels, self.shape)

    def describe_shape(self) -> str:
        """``(B, 10, 49, 96)``: dynamic axes by their label, ``?`` when unnamed."""
        labels = self.labels or (None,) * len(self.shape)
        parts = [str(d) if d is not None else (label or "?") for d, label in zip(self.shape, labels)]
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


class Runner(ABC):
    """One graph on one backend. Use as ``with runner: outputs = runner.infer(feed)``.

    model_path: the graph file (``.onnx``; TensorRT also takes ``.engine``)
    device:     where it runs; each backend lists its own in ``DEVICES``
    precision:  the precision the graph file was exported in (and engines are built for)
    """

    #: Devices this backend can run on (checked in ``__init__``).
    DEVICES: ClassVar[tuple[str, ...]] = ()
    #: Devices ``--device auto`` may pick for this backend, best first (a subset of ``DEVICES``;
    #: devices that only make sense on request, like ONNX Runtime's TensorRT EP, are left out).
    AUTO_DEVICES: ClassVar[tuple[str, ...]] = ()
    #: Graph precisions ``--backend auto`` may pick this backend for (``None``: every one it runs);
    #: ``AUTO_PRECISION_SKIP`` is what the auto note says about the others.
    AUTO_PRECISIONS: ClassVar[tuple[str, ...] | None] = None
    AUTO_PRECISION_SKIP: ClassVar[str] = ""
    #: Model-file suffixes this backend loads.
    SUFFIXES: ClassVar[tuple[str, ...]] = (".onnx",)

    def __init__(self, model_path: str | os.PathLike[str], *, device: str, precision: Precision) -> None:
        # The device is this backend's own rule, checked here for a runner built directly; the
        # precision is checked where it enters (make_runner, load_model_dir, BagScorer) and trusted.
        check_option("--device", device, self.DEVICES)
        path = check_path_exists("model_path", model_path)
        check_suffix("model_path", path, self.SUFFIXES, hint=f"the files {type(self).__name__} loads")
        self.model_path = path
        self.device = device
        self.precision = precision
        self.is_active = False
        self._input_meta: dict[str, TensorMeta] | None = None

    # ------------------------------------------------------------------ backend selection
    @classmethod
    def unavailable_reason(
        cls, model_path: str | os.PathLike[str], *, device: str, precision: Precision, **options: object
    ) -> str | None:
        """Why this backend cannot run ``model_path`` on ``device`` here (``None``: it can).

        Cheap (loads no model) and never raises for a missing library, driver or device: 'auto'
        reads the reason and moves on to the next candidate."""
        return None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Runner:
        self.activate()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.deactivate()

    def activate(self) -> None:
        """Create the session (load the graph, allocate memory). A no-op if already active."""
        if self.is_active:
            return
        self.activate_impl()
        self.is_active = True

    def deactivate(self) -> None:
        """Release the session and its memory. A no-op if not active."""
        if not self.is_active:
            return
        self._input_meta = None
        self.deactivate_impl()
        self.is_active = False

    def _require_active(self, what: str) -> None:
        if not self.is_active:
            raise RuntimeError(
                f"{type(self).__name__}.{what}() needs an active runner: use `with runner:` or call "
                "runner.activate() first."
            )

    # ------------------------------------------------------------------ public API
    def input_metadata(self) -> dict[str, TensorMeta]:
        """Input name -> :class:`TensorMeta`, in the graph's input order."""
        self._require_active("input_metadata")
        if self._input_meta is None:
            self._input_meta = self.input_metadata_impl()
        return self._input_meta

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph on ``feed`` (input name -> array); returns output name -> array.

        Every input must be present with the graph's dtype, rank and static sizes; arrays are
        passed on C-contiguous (a copy only when the caller's array is not).
        """
        self._require_active("infer")
        meta = self.input_metadata()
        check_feed(feed, meta)
        return self.infer_impl({name: np.ascontiguousarray(feed[name]) for name in meta})

    # ------------------------------------------------------------------ backend hooks
    @abstractmethod
    def activate_impl(self) -> None:
        """Create the session; called once per activation."""

    @abstractmethod
    def deactivate_impl(self) -> None:
        """Free what :meth:`activate_impl` created."""

    @abstractmethod
    def input_metadata_impl(self) -> dict[str, TensorMeta]:
        """Read the inputs' dtypes and shapes from the active session."""

    @abstractmethod
    def infer_impl(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on a checked, contiguous feed (in input order); return every output by name."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.model_path)!r}, device={self.device!r}, "
            f"precision={self.precision!r})"
        )


def check_feed(feed: dict[str, np.ndarray], meta: dict[str, TensorMeta]) -> None:
    """Raise :class:`MilmerInputError` unless ``feed`` matches ``meta`` name by name.

    Checks, in order: missing and unexpected names, array type, dtype, rank, static axis sizes.
    """
    check_type("feed", feed, dict, "a dict of input name -> numpy array")
    expected = ", ".join(repr(n) for n in meta)
    missing = [n for n in meta if n not in feed]
    if missing:
        raise MilmerInputError(
            f"Invalid feed: missing input(s) {', '.join(repr(n) for n in missing)}; the graph takes {expected}."
        )
    unexpected = [n for n in feed if n not in meta]
    if unexpected:
        raise MilmerInputError(
            f"Invalid feed: unexpected input(s) {', '.join(repr(n) for n in unexpected)}; "
            f"the graph takes {expected}."
        )
    for name, m in meta.items():
        array = feed[name]
        if not isinstance(array, np.ndarray):
            raise MilmerInputError(
                f"Invalid input {name!r}: expected a numpy array, got {type(array).__name__}."
            )
        if array.dtype != m.dtype:
            raise MilmerInputError(
                f"Invalid input {name!r}: expected dtype {m.dtype}, got {array.dtype} "
                f"(convert with .astype(np.{m.dtype}))."
            )
        ok = array.ndim == len(m.shape) and all(
            want is None or want == got for want, got in zip(m.shape, array.shape)
        )
        if not ok:
            raise MilmerInputError(
                f"Invalid input {name!r}: expected shape {m.describe_shape()}, got {tuple(array.shape)}."
            )
