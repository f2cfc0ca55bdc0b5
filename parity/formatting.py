"""Numbers as text in reports and summaries; a missing value (None, NaN, infinity) reads 'n/a'."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MISSING = "n/a"


def _missing(value: float | None) -> bool:
    return value is None or not math.isfinite(value)


def significant(value: float | None, digits: int = 4) -> str:
    """`value` to `digits` significant digits."""
    return MISSING if _missing(value) else f"{value:.{digits}g}"


def metric(value: float | None, sign: str = "") -> str:
    """A metric or loss with 4 decimals (scientific when tiny or huge); `sign` '+' shows the sign of a difference."""
    if _missing(value):
        return MISSING
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:{sign}.4f}"
    return f"{value:{sign}.3e}"


def rate(value: float | None) -> str:
    """A throughput or duration to 3 significant digits, without scientific notation (12,300; 45.6; 0.123)."""
    if _missing(value):
        return MISSING
    rounded = float(f"{value:.3g}")
    return f"{round(rounded):,}" if abs(rounded) >= 100 else f"{rounded:g}"


def mean_std(summary: Mapping[str, Any]) -> str:
    """'mean ± std' of a summary dict (just the mean when std is undefined)."""
    if summary.get("std") is None:
        return metric(summary.get("mean"))
    return f"{metric(summary['mean'])} ± {metric(summary['std'])}"
