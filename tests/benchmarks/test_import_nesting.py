"""The benchmark modules import no torch and no heavy library at import time."""

from __future__ import annotations

import subprocess
import sys

MODULES = (
    "command", "report", "stages", "throughput", "endtoend", "floor", "charts", "reference", "machine", "timing",
    "peers", "settings", "recordings", "publish", "formatting", "markdown", "summary", "variants", "default_settings",
)  # fmt: skip


def test_benchmark_modules_import_light():
    code = (
        "import sys\n"
        + "".join(f"import milmer.benchmarks.{m}\n" for m in MODULES)
        + "heavy = [m for m in ('torch', 'transformers', 'onnxruntime', 'cv2', 'mne', 'mediapipe', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
