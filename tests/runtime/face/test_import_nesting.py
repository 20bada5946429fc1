"""Importing the face path is cheap: OpenCV, mediapipe and friends load only when used."""

from __future__ import annotations

import subprocess
import sys


def test_face_modules_import_no_heavy_libraries() -> None:
    code = (
        "import sys\n"
        "import milmer.runtime.face.video, milmer.runtime.face.detect, milmer.runtime.face.crop\n"
        "import milmer.runtime.face.extract, milmer.runtime.face.plots\n"
        "heavy = ('cv2', 'mediapipe', 'torch', 'matplotlib', 'rich', 'skimage')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
