"""milmer.runtime is the leaf: it never imports torch or a layer above it, imports its heavy
libraries lazily and holds no command-line code (the commands live in milmer.app)."""

import ast
import pathlib
import subprocess
import sys
import textwrap

import pytest

RUNTIME_MODULES = [
    "milmer.runtime",
    "milmer.runtime.spec",
    "milmer.runtime.preprocess",
    "milmer.runtime.backends",
    "milmer.runtime.backends.trt",
    "milmer.runtime.model_dir",
    "milmer.runtime.pipeline",
    "milmer.runtime.results",
    "milmer.runtime.scoring",
    "milmer.runtime.streaming",
    "milmer.runtime.prefetch",
    "milmer.runtime.home",
    "milmer.runtime.report",
    "milmer.runtime.demo_model",
]

#: The layers above the runtime (and the demo extra's package beside it).
ABOVE_RUNTIME = ("training", "export", "benchmarks", "app", "synthetic")
#: Command-line libraries: a module importing one is a command, which belongs in milmer.app.
CLI_LIBRARIES = ("typer", "click", "argparse")


def _loaded_after(code: str) -> set[str]:
    script = textwrap.dedent(code) + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    import json

    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", RUNTIME_MODULES)
def test_runtime_module_imports_without_heavy_libraries(module):
    loaded = _loaded_after(f"import {module}")
    heavy = {"torch", "transformers", "mne", "cv2", "mediapipe", "onnxruntime", "matplotlib", "sklearn", "onnx"}
    assert not (heavy & {m.split(".")[0] for m in loaded}), sorted(heavy & {m.split(".")[0] for m in loaded})


def test_cli_help_runs_without_torch():
    script = textwrap.dedent(
        """
        import sys
        from milmer.app.cli import main
        from milmer.app.infer import main as infer_main
        for argv, fn in ((["--help"], main), (["--help"], infer_main), (["train", "--help"], main)):
            try:
                fn(argv)
            except SystemExit:
                pass
        assert "torch" not in sys.modules, "torch imported"
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_every_runtime_file_is_torch_free():
    """A static check too: no runtime source file mentions importing torch."""
    import pathlib
    import re

    import milmer.runtime

    root = pathlib.Path(milmer.runtime.__file__).parent
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if re.search(r"^\s*(import torch|from torch)", p.read_text(), re.M)
    ]
    assert offenders == []


def _runtime_root() -> pathlib.Path:
    import milmer.runtime

    return pathlib.Path(milmer.runtime.__file__).parent


def imported_modules(path: pathlib.Path, package: str) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in the file at ``path`` (module ``package``
    is the package it belongs to): at the top, inside functions and ``if`` blocks alike; relative
    imports resolved (``from ..training import x`` in ``milmer.runtime`` -> ``milmer.training``);
    ``importlib.import_module("...")`` and ``__import__("...")`` with a literal name counted too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # `from .. import training`: the names may be modules themselves.
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def _runtime_files():
    root = _runtime_root()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        parts = ("milmer", "runtime", *rel.parent.parts)
        package = ".".join(parts)  # the package a module in this folder belongs to
        yield rel, path, package


def _offenders(forbidden) -> list[str]:
    return [
        f"{rel}:{line} imports {name}"
        for rel, path, package in _runtime_files()
        for line, name in imported_modules(path, package)
        if forbidden(name)
    ]


def _is_above_runtime(name: str) -> bool:
    return any(name == f"milmer.{layer}" or name.startswith(f"milmer.{layer}.") for layer in ABOVE_RUNTIME)


def test_runtime_never_imports_the_layers_above_it():
    """runtime is the leaf: no module in it imports training, export, benchmarks, the app or the
    synthetic demo data, absolutely or relatively, not even inside a function (the dependency
    arrows point training -> runtime <- export, app -> everything)."""
    assert _offenders(_is_above_runtime) == []


def test_no_command_line_module_under_runtime():
    """The commands (Typer/Click/argparse) are in milmer.app; the runtime is the engine."""
    assert _offenders(lambda name: name.split(".")[0] in CLI_LIBRARIES) == []


@pytest.mark.parametrize(
    "source, package, expected",
    [
        ("from ..training import train", "milmer.runtime", "milmer.training"),
        ("from ...export.command import x", "milmer.runtime.eeg", "milmer.export.command"),
        ("from .. import benchmarks", "milmer.runtime", "milmer.benchmarks"),
        ("def f():\n    import milmer.app.cli", "milmer.runtime", "milmer.app.cli"),
        ("import importlib\nimportlib.import_module('milmer.training.model')", "milmer.runtime", "milmer.training.model"),
    ],
)
def test_the_import_scan_sees_relative_absolute_and_lazy_imports(tmp_path, source, package, expected):
    """The guard above can fail: each way of importing a layer above is found (and judged so)."""
    path = tmp_path / "mod.py"
    path.write_text(source + "\n")
    names = [name for _, name in imported_modules(path, package)]
    assert expected in names and any(_is_above_runtime(n) for n in names)


def _runtime_import_graph() -> dict[str, set[str]]:
    """runtime module -> the runtime modules it imports (at the top or lazily)."""
    modules = {}
    for rel, path, package in _runtime_files():
        name = package if rel.name == "__init__.py" else f"{package}.{rel.stem}"
        modules[name] = {n for _, n in imported_modules(path, package)}
    return {a: {b for b in deps if b in modules and b != a} for a, deps in modules.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan): each is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_runtime_modules_import_each_other_without_cycles():
    """No two runtime modules import each other, even lazily (model_dir and backends.ort did: the
    graph reading they share is graph_info.py now)."""
    assert import_cycles(_runtime_import_graph()) == []
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
