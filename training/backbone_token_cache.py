"""Frozen-backbone tokens stored beside the window cache, shared by every run that can reuse them.

:func:`~milmer.training.backbone_tokens.backbone_tokens` runs a frozen Swin once over every window of a
run; without a store, every run (each protocol, each ablation, each seed) pays that again,
although the tokens depend only on the frames, the backbone's weights and how it is run. Here
they are kept as ``<window cache>/tokens/<key>.npy`` (N, F, P, H) float32, where ``key`` hashes

- the window cache's index (which windows, in which order, from which sources),
- the face input rules of the spec (crop, size, normalisation: ``spec.face``),
- every backbone tensor (name, shape, dtype, bytes),
- the device type and autocast dtype the tokens were computed with, and the torch version,

so a changed backbone, spec or cache never reads stale tokens. Files are written atomically
(``runtime.files.atomic_file``); a file whose shape does not match is recomputed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..runtime.files import atomic_file

__all__ = ["TOKENS_FOLDER", "token_key", "stored_tokens"]

#: Sub-folder of a window cache that holds stored tokens.
TOKENS_FOLDER = "tokens"


def token_key(index_path: Path, face_spec: dict[str, Any], backbone: torch.nn.Module, device: torch.device,
              dtype: torch.dtype | None) -> str:  # fmt: skip
    """sha256 (hex, first 24 characters) naming the tokens of these windows, rules and weights."""
    h = hashlib.sha256()
    h.update(Path(index_path).read_bytes())
    h.update(json.dumps(face_spec, sort_keys=True, default=str).encode())
    h.update(f"{device.type}|{dtype}|{torch.__version__}".encode())
    for name, t in sorted(backbone.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:24]


def stored_tokens(folder: Path, key: str, shape: tuple[int, ...], compute: Callable[[], Tensor]) -> tuple[Tensor, bool]:
    """Tokens from ``folder/tokens/<key>.npy`` if they are there with ``shape``, else ``compute()``
    (then stored). Returns ``(tokens (N, F, P, H) float32, reused)``."""
    path = Path(folder) / TOKENS_FOLDER / f"{key}.npy"
    if path.is_file():
        try:
            arr = np.load(path)
        except (OSError, ValueError):
            arr = None
        if arr is not None and arr.shape == tuple(shape) and arr.dtype == np.float32:
            return torch.from_numpy(arr), True
    tokens = compute()
    with atomic_file(path) as tmp, open(tmp, "wb") as f:  # a file object: np.save adds no '.npy'
        np.save(f, tokens.numpy().astype(np.float32, copy=False))
    return tokens, False
