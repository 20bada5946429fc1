"""Importing the EEG modules must not import MNE, matplotlib, scikit-learn or torch."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("mne", "matplotlib", "sklearn", "torch")


def test_eeg_modules_import_no_heavy_library():
    code = (
        "import sys, json\n"
        "import milmer.runtime.eeg.io, milmer.runtime.eeg.channels\n"
        "import milmer.runtime.eeg.preprocess, milmer.runtime.eeg.plots\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
