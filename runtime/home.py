"""Where milmer keeps per-user state: ``$MILMER_HOME``, else ``~/.cache/milmer``.

The demo model's record (:mod:`.demo_model`), the face detector's TensorRT engine cache
(:mod:`.face.detect`) and the training window cache live under it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["milmer_home"]


def milmer_home() -> Path:
    """``$MILMER_HOME``, else ``~/.cache/milmer``: where milmer keeps per-user state."""
    env = os.environ.get("MILMER_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "milmer"
