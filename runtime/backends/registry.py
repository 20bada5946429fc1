"""Backend table, 'auto' selection (:func:`choose`) and :func:`make_runner`.

Adding a backend adds a file with a :class:`~.base.Runner` subclass and one entry in
:data:`BACKENDS`; its place in :data:`AUTO_ORDER` and its ``AUTO_DEVICES`` decide whether and
when ``auto`` picks it. The CLI builds its ``--backend``/``--device`` choices from these tables.

``--backend auto --device auto`` takes the first candidate of :func:`auto_candidates` that can run
every graph here: TensorRT with a fitting engine on a CUDA GPU, then ONNX Runtime's CUDA EP, then
ONNX Runtime on the CPU. ONNX Runtime's TensorRT EP runs only on request (``--device tensorrt``):
it builds its engines on first use, which takes minutes.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import choices
from ..check import MilmerInputError, check_keys, check_option, check_subset, check_type
from ..choices import Backend, check_backend, check_device, check_graph_precision
from ..choices import Device as DeviceChoice
from .base import Precision, Runner
from .openvino import OpenVinoRunner
from .ort import OrtRunner
from .trt import TrtRunner

__all__ = [
    "Backend",
    "BACKENDS",
    "BACKEND_NAMES",
    "AUTO_ORDER",
    "DEVICES",
    "Choice",
    "auto_candidates",
    "backend_option_names",
    "check_backend_options",
    "choose",
    "select_backend",
    "resolve_backend",
    "make_runner",
    "build_runner",
]

log = logging.getLogger(__name__)

#: backend name -> runner class.
BACKENDS: dict[str, type[Runner]] = {"ort": OrtRunner, "trt": TrtRunner, "openvino": OpenVinoRunner}
#: What ``--help`` says each backend is (numpy-free copy in :mod:`milmer.runtime.choices`).
BACKEND_NAMES: dict[str, str] = dict(choices.BACKEND_NAMES)
#: The order in which ``auto`` tries backends, each on its ``AUTO_DEVICES``; every GPU candidate goes
#: before every CPU one (ONNX Runtime's CUDA provider before OpenVINO; OpenVINO before ONNX Runtime
#: on an x86 CPU, where it is faster at the same fp32 results).
AUTO_ORDER: tuple[str, ...] = ("trt", "openvino", "ort")
#: Every device some backend runs on, plus 'auto'.
DEVICES: tuple[str, ...] = ("auto", *dict.fromkeys(d for cls in BACKENDS.values() for d in cls.DEVICES))


#: Runner parameters that are not backend options (the registry sets them).
_NOT_OPTIONS = frozenset({"self", "model_path", "device", "precision"})


def backend_option_names(backend: str) -> tuple[str, ...]:
    """The keyword options the runner of ``backend`` takes (its ``__init__`` less model path,
    device and precision), e.g. ``'openvino'`` -> ``('inference_precision', 'num_threads',
    'num_streams', 'cpu_flags')``."""
    check_option("backend", backend, tuple(BACKENDS))
    return _option_names(backend)


def _option_names(backend: str) -> tuple[str, ...]:
    """:func:`backend_option_names` for a backend already checked (the layers below the boundary)."""
    params = inspect.signature(BACKENDS[backend].__init__).parameters
    return tuple(n for n, p in params.items() if n not in _NOT_OPTIONS and p.kind is p.KEYWORD_ONLY)


def check_backend_options(options: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Validate per-backend runner options once, at the boundary: a mapping of backend name ->
    mapping of that runner's keyword options (:func:`backend_option_names`), e.g.
    ``{'openvino': {'inference_precision': 'bf16', 'num_streams': 1}, 'ort': {'intra_op_num_threads': 2}}``.

    Every backend's keys are checked, not only the one ``auto`` picks, so a misspelt option is
    refused on every machine. The values are checked by the runner that receives them. Returns
    a plain copy; raises :class:`MilmerInputError` naming the backend, the allowed keys and the key.
    """
    if options is None:
        return {}
    check_type("options", options, Mapping, "a mapping of backend name -> options")
    check_keys("backend options", options, tuple(BACKENDS), required=())
    checked: dict[str, dict[str, Any]] = {}
    for backend, opts in options.items():
        check_type(f"options[{backend!r}]", opts, Mapping, "a mapping of option -> value")
        check_keys(f"options for backend {backend!r}", opts, backend_option_names(backend), required=())
        checked[backend] = dict(opts)
    return checked



def auto_candidates(backend: str = "auto", device: str = "auto") -> list[tuple[str, str]]:
    """``(backend, device)`` pairs ``auto`` tries, best first, for the given ``--backend``/``--device``.

    An explicit device narrows the list to backends that run on it (for a backend that runs
    there, even when ``auto`` would not pick that device on its own, e.g. 'tensorrt').
    """
    check_backend(backend, "--backend")
    check_device(device, "--device")
    return _candidates(backend, device)


def _candidates(backend: str, device: str) -> list[tuple[str, str]]:
    """:func:`auto_candidates` for checked ``backend`` and ``device``."""
    names = AUTO_ORDER if backend == "auto" else (backend,)
    pairs = []
    for name in names:
        cls = BACKENDS[name]
        if device == "auto":
            pairs += [(name, d) for d in cls.AUTO_DEVICES]
        elif device in cls.DEVICES:
            pairs.append((name, device))
    pairs.sort(key=lambda pair: pair[1] == "cpu")  # stable: GPU candidates first, then AUTO_ORDER
    return pairs


@dataclass(frozen=True)
class Choice:
    """What ``auto`` picked, and why it skipped the better candidates.

    skipped: ``((backend, device), reason)`` for each candidate tried before the chosen one
    """

    backend: str
    device: str
    skipped: tuple[tuple[tuple[str, str], str], ...] = ()
    asked: tuple[str, str] = ("auto", "auto")

    def note(self) -> str:
        """One line: ``Using ONNX Runtime on cpu (--backend auto --device auto); skipped trt on cuda:
        REASON | skipped ort on cuda: REASON.`` Each reason is its first clause (what is missing), without
        the install advice that follows it; the full reasons are in :attr:`skipped` and the log."""
        line = (
            f"Using {BACKEND_NAMES.get(self.backend, self.backend)} on {self.device} "
            f"(--backend {self.asked[0]} --device {self.asked[1]})"
        )
        skipped = [f"skipped {b} on {d}: {_first_clause(reason)}" for (b, d), reason in self.skipped]
        return "; ".join([line, " | ".join(skipped)] if skipped else [line]) + "."


def _first_clause(reason: str) -> str:
    """``reason`` up to its first ';' (the advice after it is for errors, not for a note), without
    a leading "Invalid value for '--device': " (nothing was invalid: auto tried and moved on)."""
    text = reason.split(";")[0].rstrip(". ")
    prefix = "Invalid value for '--device': "
    return text[len(prefix):] if text.startswith(prefix) else text


def choose(
    model_paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    backend: str = "auto",
    device: str = "auto",
    precision: Precision = "fp32",
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Choice:
    """The first of :func:`auto_candidates` that can run every graph of ``model_paths`` here.

    With an explicit backend and device nothing is probed (the runner's own checks then speak).
    Raises :class:`MilmerInputError` listing every candidate's reason when none can run.
    """
    _check_choice(backend, device, precision)
    return select_backend(model_paths, backend, device, precision, check_backend_options(options))


def _check_choice(backend: str, device: str, precision: str) -> None:
    check_backend(backend, "--backend")
    check_device(device, "--device")
    check_graph_precision(precision, "--precision")


def select_backend(
    model_paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    backend: Backend,
    device: DeviceChoice,
    precision: Precision,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Choice:
    """:func:`choose` for arguments the caller's boundary checked (a request object,
    :class:`~..scoring.BagScorer`): backend, device and precision among the allowed values, options
    from :func:`check_backend_options`. Only what needs this machine is looked at here."""
    options = {k: dict(v) for k, v in (options or {}).items()}
    paths = [model_paths] if isinstance(model_paths, (str, os.PathLike)) else list(model_paths)
    candidates = _candidates(backend, device)
    if backend != "auto" and device != "auto":
        if not candidates:
            check_option("--device", device, ("auto", *BACKENDS[backend].DEVICES), hint=f"where backend {backend!r} runs")
        return Choice(backend, device, asked=(backend, device))
    skipped: list[tuple[tuple[str, str], str]] = []
    for name, dev in candidates:
        cls = BACKENDS[name]
        if backend == "auto" and cls.AUTO_PRECISIONS is not None and precision not in cls.AUTO_PRECISIONS:
            skipped.append(((name, dev), cls.AUTO_PRECISION_SKIP or f"auto does not pick it for {precision} graphs"))
            continue
        reason = next(
            (
                r
                for r in (
                    cls.unavailable_reason(p, device=dev, precision=precision, **options.get(name, {}))
                    for p in paths
                )
                if r is not None
            ),
            None,
        )
        if reason is None:
            return Choice(name, dev, tuple(skipped), asked=(backend, device))
        log.info("auto skips %s on %s: %s", name, dev, reason)
        skipped.append(((name, dev), reason))
    where = ", ".join(os.fspath(p) for p in paths)
    tried = " | ".join(f"{b} on {d}: {r}" for (b, d), r in skipped) or "no backend runs on that device"
    raise MilmerInputError(
        f"No backend can run {where} with --backend {backend} --device {device} --precision {precision}: {tried}"
    )


def resolve_backend(
    model_path: str | os.PathLike[str],
    *,
    device: str = "auto",
    precision: Precision = "fp32",
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The backend ``--backend auto`` picks for ``model_path`` on ``device`` (see :func:`choose`)."""
    return choose(model_path, device=device, precision=precision, options=options).backend


def make_runner(
    backend: Backend,
    model_path: str | os.PathLike[str],
    *,
    device: str = "auto",
    precision: Precision = "fp32",
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Runner:
    """A (not yet active) runner for ``model_path``; use it as ``with make_runner(...) as r:``.

    backend:   'ort', 'trt', or 'auto' (see :func:`choose`)
    device:    'auto' (the best this machine offers), 'cpu', 'cuda' or 'tensorrt' (ONNX Runtime's
               TensorRT EP, only on request)
    precision: the graph's precision ('fp32', 'fp16', 'int8')
    options:   per-backend keyword arguments, e.g. ``{'ort': {'intra_op_num_threads': 2},
               'trt': {'engine_dir': 'engines'}, 'openvino': {'inference_precision': 'bf16'}}``;
               only the chosen backend's are used
    """
    _check_choice(backend, device, precision)
    return build_runner(backend, model_path, device=device, precision=precision, options=check_backend_options(options))


def build_runner(
    backend: str,
    model_path: str | os.PathLike[str],
    *,
    device: str,
    precision: Precision,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Runner:
    """:func:`make_runner` for arguments a caller's boundary already checked (backend, device and
    precision among the allowed values, options keyed by backend names), so they are not
    checked again here; the runner still checks what only it knows (the file, its options)."""
    choice = select_backend(model_path, backend, device, precision, options)  # type: ignore[arg-type]
    options = {k: dict(v) for k, v in (options or {}).items()}
    cls = BACKENDS[choice.backend]
    kwargs = options.get(choice.backend, {})
    check_subset(
        f"options[{choice.backend!r}]", kwargs, _option_names(choice.backend),
        among=f"the {choice.backend} runner's options", what="options",
    )
    return cls(model_path, device=choice.device, precision=precision, **kwargs)
