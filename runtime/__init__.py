"""milmer.runtime: preprocessing, the input spec and inference. Never imports torch.

Heavy libraries (MNE, OpenCV, mediapipe, ONNX Runtime) are imported inside the functions that
need them, so ``import milmer.runtime`` stays cheap (tests/runtime/test_import_nesting.py).
"""

from .check import MilmerInputError
from .spec import ModelSpec

__all__ = ["MilmerInputError", "ModelSpec"]
