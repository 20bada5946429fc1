"""milmer.synthetic: synthetic DEAP-format data for demos and tests (DEAP needs a licence).

``make_demo_data(out)`` writes the dataset; see :mod:`.make` for the layout.
"""

from .make import DemoConfig, DemoManifest, DemoSegment, DemoTrial, make_demo_data

__all__ = ["DemoConfig", "DemoManifest", "DemoSegment", "DemoTrial", "make_demo_data"]
