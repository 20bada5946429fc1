"""Write the TensorRT Python API's names from a ``tensorrt-cu12-bindings`` wheel (a fixture).

The bindings wheels on PyPI are real (only ``tensorrt-cu12-libs`` is a stub), and their
``tensorrt_bindings/tensorrt.so`` cannot be imported without libnvinfer, but its read-only data
holds, as NUL-terminated strings, every name pybind11 registers (classes, methods, properties,
enum members) and every docstring. A name is kept when it is

- a whole string that reads as an API name: ``UPPER_CASE`` (enum members), ``snake_case``
  (methods, properties, arguments) or ``CamelCase`` (classes, enums), or
- cross-referenced in a docstring (``:attr:`num_errors```, ``:func:``, ``:class:``, ``:meth:``).

The names of all wheels given, and every name the stand-ins in ``../fake_tensorrt.py`` define,
are then looked up in each ``tensorrt.so`` as bytes followed by a NUL: the linker merges a string
into the tail of a longer one (``num_errors`` lives inside ``get_num_errors``, ``Logger`` inside
``ILogger``, ``INT8`` inside ``UINT8``), so some registered names are not whole strings. Each
fixture lists the names found that way (``# tail`` marks those found only inside a longer
string: weaker evidence of presence), so a name in one version's file and missing from another's
does not occur in the other's binary at all (``FP16`` in 10.3 and not in 11.4): it is gone.

ONNX Runtime's TensorRT and CUDA execution providers read their options by name, as strings in
``onnxruntime/capi/libonnxruntime_providers_{tensorrt,cuda}.so`` of the ``onnxruntime-gpu``
wheel: ``onnxruntime-gpu-<version>-<provider>.txt`` lists the whole strings that read as option
names (``trt_*`` for TensorRT; the CUDA provider's prefixes in :data:`_CUDA_OPTION`).

Usage (writes the files next to this one)::

    pip download --no-deps tensorrt-cu12-bindings==10.3.0 tensorrt-cu12-bindings==11.4.0.106 -d wheels
    pip download --no-deps onnxruntime-gpu==1.23.2 -d wheels
    python extract.py wheels/*.whl
"""

from __future__ import annotations

import hashlib
import re
import sys
import zipfile
from pathlib import Path

MEMBER = "tensorrt_bindings/tensorrt.so"
_WHOLE = re.compile(rb"(?<=\x00)([A-Z][A-Z0-9_]*|[a-z][a-z0-9_]*|[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*)(?=\x00)")
_XREF = re.compile(rb":(?:attr|func|class|meth):`~?(?:tensorrt\.)?(?:[A-Za-z_][A-Za-z0-9_]*\.)*([A-Za-z_][A-Za-z0-9_]*)`")


#: Short upper-case strings that are machine code read as text (``HJ``, ``P3J``), not names.
_NOISE = re.compile(r"[A-Z0-9_]{1,2}|[A-Z][A-Z0-9_]{1,2}J")


def api_names(so: bytes) -> set[str]:
    """The API names in the bytes of ``tensorrt.so`` (see the module docstring)."""
    names = {m.decode() for m in _WHOLE.findall(so)} | {m.decode() for m in _XREF.findall(so)}
    return {n for n in names if not _NOISE.fullmatch(n)}


def read_so(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as z:
        return z.read(MEMBER)


def stand_in_names() -> set[str]:
    """Every public name the stand-ins of ``../fake_tensorrt.py`` define (module, classes, enums)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fake_tensorrt", Path(__file__).parents[1] / "fake_tensorrt.py")
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)  # type: ignore[union-attr]
    names: set[str] = set()
    for version in ("10.3.0", "11.4.0"):
        trt = fake.make_tensorrt(version, fake.FakeGPU())
        for name, value in vars(trt).items():
            names.add(name)
            if isinstance(value, type):
                names |= {n for n in dir(value) if not n.startswith("_")}
    # instance attributes (ITensor.name, .shape, .dtype) are set in __init__
    names |= set(re.findall(r"self\.([a-z][a-z0-9_]*)", Path(spec.origin).read_text()))  # type: ignore[union-attr, arg-type]
    return {n for n in names if not n.startswith("_")}


def write_fixture(wheel: Path, candidates: set[str], out_dir: Path) -> Path:
    """Write the fixture of ``wheel``: the ``candidates`` whose bytes + NUL occur in its binary."""
    version = wheel.name.split("-")[1]
    so = read_so(wheel)
    whole = api_names(so)
    names = sorted(n if n in whole else f"{n}  # tail" for n in candidates if n.encode() + b"\0" in so)
    header = [
        f"# TensorRT {version} Python API names, read from {MEMBER} by extract.py",
        f"# wheel: {wheel.name}",
        f"# wheel sha256: {hashlib.sha256(wheel.read_bytes()).hexdigest()}",
        f"# {MEMBER} sha256: {hashlib.sha256(so).hexdigest()}",
        f"# names: {len(names)}",
    ]
    out = out_dir / f"tensorrt-{version}.txt"
    out.write_text("\n".join(header + names) + "\n")
    return out


_TRT_OPTION = re.compile(rb"(?<=\x00)(trt_[a-z0-9_]+)(?=\x00)")
_CUDA_OPTION = re.compile(
    rb"(?<=\x00)((?:arena|cudnn|device|do|enable|fuse|gpu|has|prefer|sdpa|tunable|use)_[a-z0-9_]+)(?=\x00)"
)


def write_ort_fixtures(wheel: Path, out_dir: Path) -> list[Path]:
    """Write ``onnxruntime-gpu-<version>-{tensorrt,cuda}.txt``: the providers' option names."""
    version = wheel.name.split("-")[1]
    written = []
    with zipfile.ZipFile(wheel) as z:
        for provider, pattern in (("tensorrt", _TRT_OPTION), ("cuda", _CUDA_OPTION)):
            member = f"onnxruntime/capi/libonnxruntime_providers_{provider}.so"
            so = z.read(member)
            names = sorted({m.decode() for m in pattern.findall(so)})
            header = [
                f"# ONNX Runtime {version} {provider} execution provider option names, read from {member} by extract.py",
                f"# wheel: {wheel.name}",
                f"# wheel sha256: {hashlib.sha256(wheel.read_bytes()).hexdigest()}",
                f"# {member} sha256: {hashlib.sha256(so).hexdigest()}",
                f"# names: {len(names)}",
            ]
            out = out_dir / f"onnxruntime-gpu-{version}-{provider}.txt"
            out.write_text("\n".join(header + names) + "\n")
            written.append(out)
    return written


if __name__ == "__main__":
    for wheel in [Path(a) for a in sys.argv[1:] if Path(a).name.startswith("onnxruntime_gpu-")]:
        print(*write_ort_fixtures(wheel, Path(__file__).parent), sep="\n")
    wheels = [Path(a) for a in sys.argv[1:] if Path(a).name.startswith("tensorrt_cu12_bindings-")]
    candidates = set().union(*(api_names(read_so(w)) for w in wheels)) | stand_in_names()
    for w in wheels:
        print(write_fixture(w, candidates, Path(__file__).parent))
