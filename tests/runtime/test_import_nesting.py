"""milmer.runtime must never import torch, and must import its heavy libraries lazily."""

import subprocess
import sys
import textwrap

import pytest

RUNTIME_MODULES = [
    "milmer.runtime",
    "milmer.runtime.spec",
    "milmer.runtime.cli",
    "milmer.runtime.preprocess_command",
    "milmer.runtime.backends",
    "milmer.runtime.backends.trt",
    "milmer.runtime.model_dir",
    "milmer.runtime.pipeline",
    "milmer.runtime.results",
    "milmer.runtime.scoring",
    "milmer.runtime.streaming",
    "milmer.runtime.prefetch",
    "milmer.runtime.infer_command",
    "milmer.runtime.report",
]


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
        from milmer.runtime.cli import infer_main
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


def test_runtime_never_imports_the_layers_above_it():
    """runtime is the leaf: no module in it imports training, export, benchmarks or the app, not even
    inside a function (the dependency arrows point training -> runtime <- export)."""
    import pathlib
    import re

    import milmer.runtime

    root = pathlib.Path(milmer.runtime.__file__).parent
    pattern = re.compile(r"^\s*(from|import)\s+milmer\.(training|export|benchmarks|app)\b", re.M)
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
