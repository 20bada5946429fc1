"""``milmer export CKPT --out MODEL_DIR``: a training checkpoint -> a checked model directory.

Steps, all inside a temporary folder that becomes ``MODEL_DIR`` only when every step passed
(:func:`milmer.runtime.files.atomic_dir`): export ``swin.onnx`` and ``fusion.onnx``; verify them
against PyTorch (:mod:`.verify`; over tolerance -> error, no folder); write ``spec.json`` and
check the folder opens with the runtime's :func:`~milmer.runtime.model_dir.load_model_dir`;
optionally write fp16/int8 variants and measure their agreement with fp32; optionally build
TensorRT engines; check every graph is valid ONNX (:mod:`.graph_check`); always write
``trtexec.txt`` and ``export_report.json``.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..runtime.check import MilmerInputError, check_bool, check_option, check_path_exists, check_requires, read_error
from ..runtime.files import atomic_dir, write_json_atomic
from ..runtime.backends.trt_cache import file_sha256
from ..runtime.model_dir import GRAPHS, SPEC_FILE, graph_filename, load_model_dir
from ..runtime.spec import ModelSpec
from .graph_check import check_graphs
from .inputs import demo_inputs, random_inputs
from .onnx_graphs import EXPORTER, export_backbone, export_fusion, export_spec
from .tensorrt_build import (
    TRT_PRECISIONS,
    TRTEXEC_FILE,
    build_engines,
    check_bag_profile,
    check_workspace_gb,
    write_trtexec_file,
)
from .int8 import GELU_OPSET, INT8_METHODS, make_int8_static
from .variants import VARIANTS, Agreement, agreement, make_variant
from .verify import DEFAULT_ATOL, DEFAULT_RTOL, ExportParityError, ParityCheck, format_checks, verify_export

if TYPE_CHECKING:
    from ..training.model import MilmerModel

__all__ = ["REPORT_FILE", "PARITY_BAGS", "AGREEMENT_BAGS", "CLI_NAMES", "load_for_export", "export_command"]

REPORT_FILE = "export_report.json"
#: Bags (random, demo) the fp32 graphs are verified on. The graphs are traced at batch 2 (see
#: onnx_graphs.TRACE_BATCH); 3 bags (30 frames) and 20 frames differ from it, so a batch size
#: baked into a graph shows.
PARITY_BAGS = (3, 2)
#: Bags (random, demo) the fp16/int8 variants are compared with fp32 on.
AGREEMENT_BAGS = (8, 8)
#: ``milmer export``'s names for :func:`export_command`'s arguments, used in its error messages.
CLI_NAMES = {
    "ckpt": "CKPT", "out": "--out", "int8": "--int8", "workspace_gb": "--workspace-gb",
    "demo_windows": "--demo-windows", "fp16": "--fp16", "trt": "--trt", "overwrite": "--overwrite",
}  # fmt: skip


def _checkpoint_dir(ckpt: str | os.PathLike[str], name: str) -> Path:
    hint = "expected a checkpoint folder written by milmer train, with model.safetensors, config.json, spec.json"
    return check_path_exists(name, ckpt, "dir", hint=hint)


def load_for_export(ckpt: str | os.PathLike[str], *, name: str = "ckpt") -> tuple[MilmerModel, ModelSpec]:
    """The checkpoint's model (eval mode) and spec; unreadable checkpoints are input errors that
    call ``ckpt`` ``name`` (``'CKPT'`` from the command line)."""
    from safetensors import SafetensorError

    from ..training.checkpoint import load_checkpoint

    path = _checkpoint_dir(ckpt, name)
    try:
        model, _, spec, _ = load_checkpoint(path, name=name)
    except (SafetensorError, OSError) as err:
        raise read_error(name, path, err, what="checkpoint", hint="corrupt or truncated weights?") from None
    return model, spec


def _files(model_dir: Path) -> dict[str, dict[str, Any]]:
    """Relative path -> size in bytes (and sha256 for graphs) of every file written so far."""
    result = {}
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        entry: dict[str, Any] = {"bytes": path.stat().st_size}
        if path.suffix in (".onnx", ".engine"):
            entry["sha256"] = file_sha256(path)
        result[path.relative_to(model_dir).as_posix()] = entry
    return result


def _summary(out: Path, checks: list[ParityCheck], agreements: list[Agreement], files: dict[str, Any]) -> str:
    worst: dict[str, float] = {}
    for c in checks:
        for o in c.outputs:
            if o.name != "selected":
                key = f"{c.graph}/{o.name}"
                worst[key] = max(worst.get(key, 0.0), o.max_abs)
    lines = [f"Exported {out}", "  fp32 ONNX Runtime vs PyTorch, max abs error (random + demo bags):"]
    lines += [f"    {k:<28} {v:.2e}" for k, v in worst.items()]
    for a in agreements:
        lines.append(
            f"  {a.precision} vs fp32 on {a.n_bags} {a.inputs} bags: top-1 agreement {a.top1_agreement:.0%}, "
            f"selected {a.selected_agreement:.0%}, max |dp| {a.max_abs_probabilities:.2e}"
        )
    graphs = [n for n in files if n.endswith(".onnx")]
    lines.append("  files: " + ", ".join(f"{n} ({files[n]['bytes'] / 1e6:.1f} MB)" for n in graphs))
    lines.append(f"  TensorRT engines with trtexec (e.g. on a Jetson): see {out / TRTEXEC_FILE}")
    return "\n".join(lines)


def export_command(
    ckpt: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    fp16: bool = False,
    int8: bool | str | None = None,
    trt: bool = False,
    trt_profile: tuple[int, int, int] = (1, 8, 32),
    workspace_gb: float = 4,
    overwrite: bool = False,
    progress: bool = True,
    demo_windows: str | os.PathLike[str] | None = None,
    names: Mapping[str, str] | None = None,
) -> Path:
    """Export checkpoint ``ckpt`` to model directory ``out``; returns ``out``.

    fp16:         also write ``swin.fp16.onnx``/``fusion.fp16.onnx`` (GPU), with their agreement
                  with fp32 in the report
    int8:         also write the int8 graphs (CPU): 'static' (QDQ, calibrated on real face crops;
                  ONNX Runtime and OpenVINO) or 'dynamic' (ONNX Runtime's MatMulInteger);
                  ``None``/False: none; True means 'dynamic' (its meaning before 'static' existed)
    trt:          build TensorRT engines here (fp32, and fp16 with ``fp16``); needs TensorRT
                  and a GPU, and they only run on this TensorRT version and GPU model
    trt_profile:  (min, opt, max) bags per call for the engines and ``trtexec.txt``
    workspace_gb: TensorRT builder workspace limit
    overwrite:    replace an existing, non-empty ``out``
    progress:     print each step to stderr
    demo_windows: a ``milmer preprocess`` output (``windows.npz``) to verify on real windows;
                  without it, synthetic face crops and EEG are used
    names:        what errors call the arguments (:data:`CLI_NAMES` from ``milmer export``);
                  default: the parameter names

    Raises :class:`MilmerInputError` for a bad checkpoint or option, and
    :class:`~.verify.ExportParityError` when a graph disagrees with PyTorch (no ``out`` then).
    """
    started = time.perf_counter()
    names = names or {}

    def called(param: str) -> str:
        return names.get(param, param)

    bags = check_bag_profile(trt_profile)
    check_workspace_gb(workspace_gb, called("workspace_gb"))
    for name, value in (("fp16", fp16), ("trt", trt), ("overwrite", overwrite)):
        check_bool(called(name), value)
    int8_method = _check_int8(int8, called("int8"))
    if trt:
        _check_trt_available()

    def log(message: str) -> None:
        if progress:
            print(f"[export] {message}", file=sys.stderr, flush=True)

    out = Path(out)
    _checkpoint_dir(ckpt, called("ckpt"))  # a mistyped path fails before any work

    with atomic_dir(out, overwrite=overwrite, name=called("out")) as tmp:
        log(f"loading {ckpt}")
        model, spec = load_for_export(ckpt, name=called("ckpt"))
        spec = export_spec(model, spec)
        # Built before the slow export, so a bad demo_windows file fails fast.
        parity_sets = [
            random_inputs(spec, PARITY_BAGS[0], seed=0),
            demo_inputs(spec, PARITY_BAGS[1], windows=demo_windows, seed=1, name=called("demo_windows")),
        ]
        timings: dict[str, float] = {}
        for stem, export in (("swin", export_backbone), ("fusion", export_fusion)):
            log(f"exporting {graph_filename(stem, 'fp32')} with {EXPORTER}")
            t0 = time.perf_counter()
            export(model, tmp / graph_filename(stem, "fp32"), spec)
            timings[f"export_{stem}_s"] = time.perf_counter() - t0
        paths = [tmp / graph_filename(g, "fp32") for g in GRAPHS]

        log("verifying ONNX Runtime against PyTorch")
        t0 = time.perf_counter()
        checks = verify_export(model, spec, paths[0], paths[1], parity_sets)
        timings["verify_s"] = time.perf_counter() - t0
        spec.save(tmp / SPEC_FILE)
        load_model_dir(tmp)  # what the runtime will check on load, checked now

        agreements: list[Agreement] = []
        variants = [p for p, wanted in zip(VARIANTS, (fp16, int8_method is not None)) if wanted]
        int8_facts: dict[str, Any] | None = None
        if variants:
            t0 = time.perf_counter()
            for precision in variants:
                if precision == "int8" and int8_method == "static":
                    log("writing the static int8 graphs (calibrating on face crops)")
                    *_, int8_facts = make_int8_static(tmp, spec, windows=demo_windows)
                else:
                    log(f"writing the {precision} graphs" + (" (dynamic int8)" if precision == "int8" else ""))
                    make_variant(tmp, precision, spec)  # type: ignore[arg-type]
                    if precision == "int8":
                        int8_facts = {
                            "method": "dynamic",
                            "format": "MatMulInteger, int8 weights per output channel",
                            "opset": GELU_OPSET,  # the report's top-level 'opset' is the fp32/fp16 graphs'
                            "gelu": "ONNX Gelu node",
                        }
                load_model_dir(tmp, precision=precision)  # type: ignore[arg-type]
            log(f"comparing {' and '.join(variants)} with fp32")
            agreement_sets = [
                random_inputs(spec, AGREEMENT_BAGS[0], seed=2),
                demo_inputs(spec, AGREEMENT_BAGS[1], windows=demo_windows, seed=3),
            ]
            agreements = agreement(tmp, variants, spec, agreement_sets)  # type: ignore[arg-type]
            overflow = sorted({a.precision for a in agreements if not a.finite})
            if overflow:
                raise ExportParityError(
                    f"The {'/'.join(overflow)} graphs produce non-finite outputs (overflow); nothing exported."
                )
            timings["variants_s"] = time.perf_counter() - t0

        trt_precisions = tuple(p for p in TRT_PRECISIONS if p == "fp32" or (p == "fp16" and fp16))
        engines = []
        if trt:
            t0 = time.perf_counter()
            engines = build_engines(tmp, trt_precisions, bags, workspace_gb=workspace_gb, log=log)
            timings["tensorrt_s"] = time.perf_counter() - t0
        write_trtexec_file(tmp, bags, trt_precisions, workspace_gb=workspace_gb)

        log("checking every graph (ONNX full check, strict shape inference)")
        valid_graphs = check_graphs(tmp)
        timings["total_s"] = time.perf_counter() - started
        files = _files(tmp)
        report = {
            "checkpoint": str(ckpt),
            "exporter": EXPORTER,
            "opset": spec.graph.opset,
            "tolerance": {"atol": DEFAULT_ATOL, "rtol": DEFAULT_RTOL},
            "inputs": {
                "parity_bags": list(PARITY_BAGS),
                "agreement_bags": list(AGREEMENT_BAGS),
                "demo_source": str(demo_windows) if demo_windows else "synthetic",
            },
            "parity": [c.to_dict() for c in checks],
            "agreement": [asdict(a) for a in agreements],
            "int8": int8_facts,
            "tensorrt": {
                "profile_bags": list(bags),
                "workspace_gb": workspace_gb,
                "engines": [
                    {"graph": e.graph, "precision": e.precision, "file": e.engine_path.name, "seconds": e.seconds}
                    for e in engines
                ],
            },
            "onnx_full_check": valid_graphs,  # passed check_model(full_check=True) + strict inference
            "files": files,
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
            "versions": {**spec.versions, "python": platform.python_version()},
            "spec_fingerprint": spec.fingerprint(),
        }
        write_json_atomic(tmp / REPORT_FILE, report)
        log(format_checks(checks))
    print(_summary(out, checks, agreements, files))
    return out


def _check_int8(int8: bool | str | None, name: str = "int8") -> str | None:
    """The int8 method ('static', 'dynamic') or None; True is 'dynamic' (see export_command)."""
    if int8 is None or int8 is False:
        return None
    if int8 is True:
        return "dynamic"
    return str(check_option(name, int8, (*INT8_METHODS, None)))


def _check_trt_available() -> None:
    """Fail before the slow export when TensorRT engines cannot be built here."""
    from ..runtime.backends.trt import cuda_device_present, import_tensorrt

    import_tensorrt()
    check_requires(
        "--trt", "--trt", "a CUDA GPU to build TensorRT engines on", cuda_device_present(), "none here",
        hint="export without --trt and build the engines on the target with the lines in trtexec.txt",
    )
