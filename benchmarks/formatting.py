"""How benchmark figures are written for people: values with units, '-' for none, verdicts,
side-by-side rows, lengths. Shared by bench.md (:mod:`.markdown`) and the summary screen (:mod:`.summary`)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["format_value", "fmt", "ratio", "rounded", "verdict", "side_by_side_cells", "length", "bags_per_call"]


def format_value(value: float | None, unit: str | None) -> str:
    """A target's value for people: a fraction as a percentage (1 -> '100.0 %'), a ratio as
    '2.31x', milliseconds and megabytes with their unit; '-' when there is none."""
    if value is None:
        return "-"
    if unit == "fraction":
        return f"{value * 100:.1f} %"
    if unit == "x":
        return f"{value:.2f}x"
    if unit in ("ms", "MB"):
        return f"{value:,.1f} {unit}"
    return format(value, ".3g")


def fmt(value: Any, spec: str = ".1f", suffix: str = "") -> str:
    """``value`` formatted with ``spec`` (and ``suffix``), or '-' when there is none (bench.md and the summary)."""
    return "-" if value is None else f"{value:{spec}}{suffix}"


def rounded(obj: Any, digits: int = 5) -> Any:
    """``obj`` with floats rounded to ``digits`` significant digits (smaller, readable JSON)."""
    if isinstance(obj, float):
        return obj if not math.isfinite(obj) or obj == 0 else float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v, digits) for v in obj]
    return obj


def verdict(target: dict[str, Any]) -> str:
    """'met', 'NOT met', 'not applicable' (a goal set for other machines: ``applies`` False), or
    'not measured' for a target row whose value is missing."""
    if target.get("applies") is False:
        return "not applicable"
    if target.get("value") is None:
        return "not measured"
    return "met" if target["met"] else "NOT met"


def side_by_side_cells(row: dict[str, Any]) -> list[str]:
    """One side-by-side row as text: variant, backbone ms, GFLOP/s, x own floor, fusion ms,
    speed-up over ONNX Runtime fp32, top-1 and selected-frame agreement (bench.md and the summary)."""
    return [
        row["name"], f"{row['backbone_s'] * 1e3:.1f}", fmt(row.get("gflops"), ".0f"), fmt(row.get("x_floor"), ".2f"),
        f"{row['fusion_s'] * 1e3:.1f}", f"{row['speedup_vs_ort_fp32']:.2f}x", f"{row['top1_agreement']:.1%}",
        f"{row['selected_agreement']:.1%}",
    ]  # fmt: skip


def length(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def bags_per_call(n: int) -> str:
    return f"{n} bag per call" if n == 1 else f"{n} bags per call"


def ratio(num: float | None, den: float | None) -> float | None:
    """``num / den``, or None when either is missing or NaN or ``den`` is 0."""
    if num is None or den is None or den == 0 or math.isnan(num) or math.isnan(den):
        return None
    return num / den
