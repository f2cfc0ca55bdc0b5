"""Comparison of the two frameworks: array differences and statistics over seeds.

Everything here is numpy/scipy only and returns plain Python numbers (None where a
statistic is undefined or not finite), so the results go straight into report.json.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def _finite_or_none(value: float) -> float | None:
    """`value` as a Python float, or None when it is NaN or infinite."""
    value = float(value)
    return value if math.isfinite(value) else None


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """The largest absolute elementwise difference of two equally shaped arrays, in float64."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if a64.shape != b64.shape:
        raise ValueError(f"cannot compare arrays of shapes {a64.shape} and {b64.shape}")
    if a64.size == 0:
        return 0.0
    return float(np.max(np.abs(a64 - b64)))


FORWARD_TOLERANCE = 1e-5


def forward_tolerance(reference: np.ndarray) -> float:
    """Forward-parity tolerance: 1e-5 for outputs of magnitude <= 1, scaled by the output magnitude above that.

    Two correct float32 implementations sum in different orders, so they differ by a few
    units in the last place of the values involved: ~1e-7 relative. Probabilities (<= 1)
    therefore agree to 1e-5 absolute with a wide margin, but a regression output of 57
    has an ulp of 3.8e-6, and four ulps already exceed 1e-5 absolute; 1e-5 relative is
    the same bound, stated in units the value can resolve.
    """
    scale = float(np.max(np.abs(reference))) if np.size(reference) else 0.0
    return FORWARD_TOLERANCE * max(1.0, scale)


def summarize(values: Sequence[float]) -> dict:
    """Mean and sample standard deviation (ddof=1; None for fewer than two values)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return {"mean": None, "std": None}
    std = _finite_or_none(np.std(x, ddof=1)) if x.size > 1 else None
    return {"mean": _finite_or_none(np.mean(x)), "std": std}


def final_val_comparison(keras: Sequence[float], lightning: Sequence[float]) -> dict:
    """Per-framework summaries and the Welch 95% interval and p-value of lightning - keras."""
    k = np.asarray(keras, dtype=np.float64)
    lt = np.asarray(lightning, dtype=np.float64)
    result = {
        "keras": {**summarize(k), "n": int(k.size)},
        "lightning": {**summarize(lt), "n": int(lt.size)},
        "diff_mean": None,
        "diff_ci95": [None, None],
        "welch_p": None,
    }
    if k.size == 0 or lt.size == 0 or not (np.all(np.isfinite(k)) and np.all(np.isfinite(lt))):
        return result
    diff = float(np.mean(lt) - np.mean(k))
    result["diff_mean"] = diff
    if k.size < 2 or lt.size < 2:
        return result
    if np.ptp(k) == 0 and np.ptp(lt) == 0:
        # No spread on either side: the difference is exact and a t-test is undefined.
        result["diff_ci95"] = [diff, diff]
        return result
    # Welch: standard error of the difference and Welch-Satterthwaite degrees of freedom.
    var_k = np.var(k, ddof=1) / k.size
    var_l = np.var(lt, ddof=1) / lt.size
    se = math.sqrt(var_k + var_l)
    df = (var_k + var_l) ** 2 / (var_k**2 / (k.size - 1) + var_l**2 / (lt.size - 1))
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, df) * se
    result["diff_ci95"] = [_finite_or_none(diff - half), _finite_or_none(diff + half)]
    result["welch_p"] = _finite_or_none(2 * stats.t.sf(abs(diff) / se, df))
    return result


def throughput_ratio(
    keras_samples_per_s: Sequence[float], lightning_samples_per_s: Sequence[float]
) -> float | None:
    """Median lightning samples/s over median keras samples/s; None when either is missing or zero."""
    medians = []
    for rates in (keras_samples_per_s, lightning_samples_per_s):
        x = np.asarray([r for r in rates if r is not None], dtype=np.float64)
        x = x[np.isfinite(x)]
        if x.size == 0 or np.median(x) <= 0:
            return None
        medians.append(float(np.median(x)))
    return medians[1] / medians[0]
