"""Publish a finished benchmark beside the others: ``<name>.json``, ``<name>.md`` and its charts."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..runtime.check import MilmerInputError

__all__ = ["publish_results"]


def publish_results(bench_json: Path, results_dir: Path, name: str | None = None) -> list[Path]:
    """Copy a finished benchmark into ``results_dir`` as ``<name>.json`` with its charts
    (``<name>-stages.png`` ...) and markdown summary (``<name>.md``); returns the files.

    name: file stem; ``None``: ``<kind>-<machine>`` (kind: 'cpu' or the GPU device used, machine:
    the CPU's short name). Give one where two hosts share a CPU name (e.g. 'cpu-amd-epyc-avx2').
    """
    from ..runtime.files import write_json_atomic
    from . import charts
    from .markdown import markdown

    result = json.loads(Path(bench_json).read_text())
    kind = "cpu" if result["settings"]["device"] == "cpu" else result["settings"]["device"]
    if name is None:
        name = f"{kind}-{result['machine']['cpu_short_name']}"
    elif not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise MilmerInputError(
            f"Invalid value for 'name': expected a file stem that starts with a letter or digit, then letters, "
            f"digits, '.', '_' or '-', got {name!r}."
        )
    results_dir.mkdir(parents=True, exist_ok=True)
    result["charts"] = charts.draw_charts(result, results_dir, prefix=f"{name}-")
    paths = [write_json_atomic(results_dir / f"{name}.json", result), results_dir / f"{name}.md"]
    paths[1].write_text(markdown(result) + "\n")
    return paths + [results_dir / c for c in result["charts"].values()]
