"""Comparison of the two frameworks: the forward check, array differences and statistics over seeds.

Everything here is numpy/scipy only and returns plain Python numbers (None where a
statistic is undefined or not finite), so the results go straight into report.json.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import stats

from parity import jobs

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
    """Forward-parity tolerance: 1e-5 for values of magnitude <= 1, scaled by the largest magnitude above that.

    Both sides compute in float32 from identical weights and inputs, but TensorFlow's and
    ATen's kernels sum in different orders, so results differ by a few units in the last place
    of the values involved (~1e-7 relative per operation; a few dozen chained layers stay far
    below 1e-5). Probabilities (<= 1) therefore agree to 1e-5 absolute with a wide margin, but a
    regression output of 57 has an ulp of 3.8e-6 and four ulps already exceed 1e-5 absolute:
    1e-5 relative is the same bound, in units the value can resolve. The weights of the check
    are random (tf_models.weights.randomize_variables), so a mapping error moves the outputs by
    O(0.01-1), orders of magnitude above this bound (tests/test_forward_mutations.py).
    """
    scale = float(np.max(np.abs(reference))) if np.size(reference) else 0.0
    return FORWARD_TOLERANCE * max(1.0, scale)


def training_outputs_path(workdir: Path, framework: str, tag: str) -> Path:
    """Training-mode outputs (dropout off) and BatchNorm moving statistics of the forward check of run `tag`."""
    return Path(workdir) / f"{framework}-training-outputs-{tag}.npz"


def save_training_outputs(path: Path, outputs: np.ndarray, statistics: dict[str, np.ndarray]) -> None:
    """Write training-mode outputs and the moving statistics keyed `<Keras layer name>/moving_mean|moving_variance`."""
    np.savez(path, outputs=outputs, **{f"statistics/{key}": value for key, value in statistics.items()})


def load_training_outputs(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Read what `save_training_outputs` wrote."""
    with np.load(path) as data:
        statistics = {key[len("statistics/"):]: data[key] for key in data.files if key.startswith("statistics/")}
        return data["outputs"], statistics


def _forward_row(mode: str, keras_arrays: dict[str, np.ndarray], torch_arrays: dict[str, np.ndarray]) -> dict:
    """max abs diff over every compared array (inf if one side is not finite) against the tolerance of them all."""
    if set(keras_arrays) != set(torch_arrays):
        raise ValueError(f"forward check ({mode}): Keras saved {sorted(keras_arrays)}, torch {sorted(torch_arrays)}; "
                         "the two models differ in their BatchNorm layers (or their keras_layers() names)")
    diffs = {key: max_abs_diff(keras_arrays[key], torch_arrays[key]) for key in keras_arrays}
    diff = max((value if math.isfinite(value) else math.inf for value in diffs.values()), default=0.0)
    reference = np.concatenate([np.ravel(value).astype(np.float64) for value in keras_arrays.values()])
    tolerance = forward_tolerance(reference)
    row = {"mode": mode, "max_abs_diff": diff, "tolerance": tolerance, "passed": diff <= tolerance,
           "output_shape": list(keras_arrays["outputs"].shape)}
    statistics = [value for key, value in diffs.items() if key != "outputs"]
    if statistics:
        row["moving_statistics_max_abs_diff"] = max(statistics)
    return row


def forward_check_rows(workdir: Path, model_id: str, seed: int) -> list[dict]:
    """The forward check of `model_id` from the files both workers' `forward` jobs wrote.

    One row `{model, mode, max_abs_diff, tolerance, passed, output_shape}` for mode `inference`;
    for a model with BatchNorm or dropout a second for mode `training` (dropout off, batch
    statistics), whose difference also covers the updated BatchNorm moving statistics.
    """
    tag = jobs.run_tag(model_id, seed)
    rows = [_forward_row("inference", {"outputs": np.load(jobs.outputs_path(workdir, "keras", tag))},
                         {"outputs": np.load(jobs.outputs_path(workdir, "lightning", tag))})]
    paths = {framework: training_outputs_path(workdir, framework, tag) for framework in jobs.FRAMEWORKS}
    present = [framework for framework, path in paths.items() if path.exists()]
    if len(present) == 1:
        raise ValueError(f"{model_id}: only {present[0]} ran the training-mode forward check; one model has "
                         "BatchNorm or dropout layers and the other does not")
    if present:
        (keras_outputs, keras_statistics), (torch_outputs, torch_statistics) = (
            load_training_outputs(paths[framework]) for framework in jobs.FRAMEWORKS)
        rows.append(_forward_row("training", {"outputs": keras_outputs, **keras_statistics},
                                 {"outputs": torch_outputs, **torch_statistics}))
    return [{"model": model_id, **row} for row in rows]


def roundtrip_row(params: int, loaded_params: int, before: np.ndarray, after: np.ndarray, path: Path) -> dict:
    """One model's save/load round trip: parameter counts, largest prediction change, the file and its size."""
    return {
        "params": int(params),
        "loaded_params": int(loaded_params),
        "max_abs_diff": max_abs_diff(before, after),
        "bytes": Path(path).stat().st_size,
        "file": Path(path).name,
    }


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
