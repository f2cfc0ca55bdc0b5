"""Comparison of two frameworks: the forward check, array differences and statistics over seeds.

Everything here is numpy/scipy only and returns plain Python numbers (None where a
statistic is undefined or not finite), so the results go straight into report.json.
The statistics over seeds (paired t, Welch, TOST equivalence, power, Holm) are explained
in docs/methodology.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import integrate, stats

from parity import formatting, jobs

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


def _forward_row(mode: str, pair: tuple[str, str], arrays_a: dict[str, np.ndarray],
                 arrays_b: dict[str, np.ndarray]) -> dict:
    """max abs diff over every compared array (inf if one side is not finite) against the tolerance of them all,
    which is scaled by the first framework's values (`forward_tolerance`)."""
    if set(arrays_a) != set(arrays_b):
        raise ValueError(f"forward check ({mode}): {pair[0]} saved {sorted(arrays_a)}, {pair[1]} {sorted(arrays_b)}; "
                         "the two models differ in their BatchNorm layers (or their keras_layers() names)")
    diffs = {key: max_abs_diff(arrays_a[key], arrays_b[key]) for key in arrays_a}
    diff = max((value if math.isfinite(value) else math.inf for value in diffs.values()), default=0.0)
    reference = np.concatenate([np.ravel(value).astype(np.float64) for value in arrays_a.values()])
    tolerance = forward_tolerance(reference)
    row = {"mode": mode, "max_abs_diff": diff, "tolerance": tolerance, "passed": diff <= tolerance,
           "output_shape": list(arrays_a["outputs"].shape)}
    statistics = [value for key, value in diffs.items() if key != "outputs"]
    if statistics:
        row["moving_statistics_max_abs_diff"] = max(statistics)
    return row


def forward_check_rows(workdir: Path, model_id: str, seed: int,
                       pair: tuple[str, str] = jobs.FRAMEWORKS) -> list[dict]:
    """The forward check of `model_id` between the two frameworks of `pair` (default keras and lightning), from
    the files their `forward` jobs wrote.

    One row `{model, mode, max_abs_diff, tolerance, passed, output_shape}` for mode `inference`;
    for a model with BatchNorm or dropout a second for mode `training` (dropout off, batch
    statistics), whose difference also covers the updated BatchNorm moving statistics. Every pair
    is held to the same rule (`forward_tolerance`): each framework computes the same float32 maths
    from the same weights and inputs, so any two differ by summation order only.
    """
    tag = jobs.run_tag(model_id, seed)
    first, second = ({"outputs": np.load(jobs.outputs_path(workdir, framework, tag))} for framework in pair)
    rows = [_forward_row("inference", pair, first, second)]
    paths = {framework: training_outputs_path(workdir, framework, tag) for framework in pair}
    present = [framework for framework, path in paths.items() if path.exists()]
    if len(present) == 1:
        raise ValueError(f"{model_id}: only {present[0]} ran the training-mode forward check; one model has "
                         "BatchNorm or dropout layers and the other does not")
    if present:
        first, second = ({"outputs": outputs, **statistics}
                         for outputs, statistics in (load_training_outputs(paths[framework]) for framework in pair))
        rows.append(_forward_row("training", pair, first, second))
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


# ---------------------------------------------------------------------------- seeds: paired, Welch, equivalence

ALPHA = 0.05  # every test here, one-sided (TOST) or two-sided (difference)
POWER = 0.80  # target power of the seeds-needed calculation
MAX_SEEDS = 10_000  # the seeds-needed search stops here (None: more would be needed)
# Final metrics are float32 values logged by the frameworks (relative rounding 6e-8): per-seed
# differences whose spread is below 1e-6 of the values' magnitude are equal, not a spread.
EQUAL_SPREAD_RELATIVE = 1e-6


@dataclass(frozen=True)
class Margin:
    """An equivalence margin: `value` in the metric's units, or (relative) a fraction of the keras mean."""

    value: float
    relative: bool = False

    def resolve(self, keras_mean: float | None) -> float | None:
        """The margin in the metric's units; None when it is relative and the keras mean is unknown."""
        if not self.relative:
            return self.value
        return None if keras_mean is None else self.value * abs(keras_mean)

    def describe(self, reference: str = "keras") -> str:
        """'0.01 absolute' or '5% of the keras mean' (`reference`: the framework whose mean scales the margin)."""
        return f"{self.value * 100:g}% of the {reference} mean" if self.relative else f"{self.value:g} absolute"


DEFAULT_MARGINS = {"accuracy": Margin(0.01), "mae": Margin(0.05, relative=True)}


def _magnitude(*samples: np.ndarray) -> float:
    return max(float(np.max(np.abs(x))) for x in samples)


def _spread_tolerance(*samples: np.ndarray) -> float:
    """The spread below which values count as equal: EQUAL_SPREAD_RELATIVE of the largest magnitude."""
    return EQUAL_SPREAD_RELATIVE * _magnitude(*samples)


def _interval(low: float, high: float) -> list[float | None]:
    return [_finite_or_none(low), _finite_or_none(high)]


def pair_by_seed(keras: Mapping[int, float], lightning: Mapping[int, float]) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The seeds both frameworks ran, sorted, and their (keras, lightning) values in that order."""
    seeds = sorted(set(keras) & set(lightning))
    return (seeds, np.asarray([keras[s] for s in seeds], dtype=np.float64),
            np.asarray([lightning[s] for s in seeds], dtype=np.float64))


def paired_comparison(keras: Mapping[int, float], lightning: Mapping[int, float]) -> dict:
    """Per-seed differences lightning - keras (matched by seed) with the paired t 95% interval and p-value.

    `status` is 'tested', or why no test is made: 'too few seeds' (under 2 pairs), 'degenerate'
    (the differences have no spread: all equal within EQUAL_SPREAD_RELATIVE, so the interval
    would collapse to [d, d]) or 'undefined' (a value is not finite); `note` says it in words.
    `correlation` is Pearson's r of the two frameworks' per-seed values (3+ pairs, both varying).
    """
    seeds, k, lt = pair_by_seed(keras, lightning)
    diffs = lt - k
    result = {"seeds": seeds, "diffs": diffs.tolist(), "n": len(seeds), "mean": None, "sd": None, "se": None,
              "ci95": [None, None], "p": None, "correlation": None, "status": "tested", "note": None}
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(lt))):
        result.update(status="undefined", note="a final value is not finite")
        return result
    if seeds:
        result["mean"] = float(np.mean(diffs))
    if len(seeds) < 2:
        result.update(status="too few seeds",
                      note=f"{len(seeds)} pair{'s' if len(seeds) != 1 else ''} matched by seed, a test needs 2")
        return result
    spread = float(np.ptp(diffs))
    if spread <= _spread_tolerance(k, lt):
        # A float64 subtraction's own rounding (~1e-16 relative) is no spread worth naming.
        rounding = f" within float32 rounding (spread {spread:.2g})" if spread > 1e-12 * _magnitude(k, lt) else ""
        result.update(sd=0.0, status="degenerate",
                      note=f"all {len(seeds)} differences equal {formatting.metric(result['mean'], '+')}{rounding}")
        return result
    test = stats.ttest_1samp(diffs, 0.0)
    result["sd"] = float(np.std(diffs, ddof=1))
    result["se"] = result["sd"] / math.sqrt(len(seeds))
    result["ci95"] = _interval(*test.confidence_interval(CONFIDENCE))
    result["p"] = _finite_or_none(test.pvalue)
    tolerance = _spread_tolerance(k, lt)
    if len(seeds) >= 3 and np.ptp(k) > tolerance and np.ptp(lt) > tolerance:
        result["correlation"] = _finite_or_none(stats.pearsonr(k, lt).statistic)
    return result


def welch_comparison(keras: Sequence[float], lightning: Sequence[float]) -> dict:
    """Welch's unpaired t 95% interval and p-value of mean(lightning) - mean(keras), every run counted.

    `status` and `note` as in `paired_comparison`. With no spread on either side the difference
    is exact: `ci95` is [d, d] (kept for report.json compatibility), `p` None, status
    'degenerate'; it is no evidence of a difference.
    """
    k = np.asarray(keras, dtype=np.float64)
    lt = np.asarray(lightning, dtype=np.float64)
    result = {"mean": None, "se": None, "df": None, "ci95": [None, None], "p": None, "status": "tested", "note": None}
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(lt))):
        result.update(status="undefined", note="a final value is not finite")
        return result
    if k.size < 2 or lt.size < 2:
        if k.size and lt.size:
            result["mean"] = float(np.mean(lt) - np.mean(k))
        result.update(status="too few seeds", note="a test needs 2 per framework")
        return result
    diff = float(np.mean(lt) - np.mean(k))
    result["mean"] = diff
    if np.ptp(k) <= _spread_tolerance(k, lt) and np.ptp(lt) <= _spread_tolerance(k, lt):
        result.update(ci95=[diff, diff], status="degenerate",
                      note=f"no spread on either side, difference {formatting.metric(diff, '+')}")
        return result
    # Standard error of the difference and Welch-Satterthwaite degrees of freedom.
    var_k = np.var(k, ddof=1) / k.size
    var_l = np.var(lt, ddof=1) / lt.size
    se = math.sqrt(var_k + var_l)
    df = (var_k + var_l) ** 2 / (var_k**2 / (k.size - 1) + var_l**2 / (lt.size - 1))
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, df) * se
    result.update(se=_finite_or_none(se), df=_finite_or_none(df), ci95=_interval(diff - half, diff + half),
                  p=_finite_or_none(2 * stats.t.sf(abs(diff) / se, df)))
    return result


def tost(diffs: Sequence[float], margin: float) -> dict:
    """Two one-sided paired t tests of |mean difference| < margin: the p of H0 d <= -margin and of H0 d >= +margin.

    `p` is the larger of the two (TOST rejects both at ALPHA iff p < ALPHA, iff the 90% interval
    `ci90` lies inside (-margin, +margin)).
    """
    x = np.asarray(diffs, dtype=np.float64)
    p_lower = float(stats.ttest_1samp(x, -margin, alternative="greater").pvalue)
    p_upper = float(stats.ttest_1samp(x, margin, alternative="less").pvalue)
    ci90 = stats.ttest_1samp(x, 0.0).confidence_interval(1 - 2 * ALPHA)
    return {"p_lower": _finite_or_none(p_lower), "p_upper": _finite_or_none(p_upper),
            "p": _finite_or_none(max(p_lower, p_upper)), "ci90": _interval(*ci90)}


def decide(p_difference: float, p_equivalence: float, alpha: float = ALPHA) -> str:
    """equivalent (TOST rejects both one-sided nulls), else different (the paired test rejects 0), else inconclusive.

    Equivalence is checked first: a difference shown to lie inside the margin is negligible by
    the margin's definition, even where it is also shown to be nonzero.
    """
    if p_equivalence < alpha:
        return "equivalent"
    if p_difference < alpha:
        return "different"
    return "inconclusive"


def tost_power(true_diff: float, sd: float, margin: float, n: int, alpha: float = ALPHA) -> float:
    """Exact power of the paired TOST at level `alpha` with n pairs, differences ~ N(true_diff, sd^2).

    Both one-sided tests reject iff -margin + t*s/sqrt(n) < mean < margin - t*s/sqrt(n), with
    t = t_{1-alpha, n-1}. Given the sample sd s the mean is normal, so the power is that normal
    probability integrated over the distribution of s ((n-1) s^2 / sd^2 ~ chi2(n-1)); the
    integral runs over the chi2 quantile u in [0, F(q_max)] (q_max: where the band closes).
    """
    df = n - 1
    t_crit = stats.t.ppf(1 - alpha, df)
    se = sd / math.sqrt(n)
    u_max = stats.chi2.cdf(df * (margin / (t_crit * se)) ** 2, df)

    def band_probability(u: float) -> float:
        half = margin - t_crit * se * math.sqrt(stats.chi2.ppf(u, df) / df)
        return max(0.0, stats.norm.cdf((half - true_diff) / se) - stats.norm.cdf((-half - true_diff) / se))

    return float(integrate.quad(band_probability, 0.0, u_max, limit=200)[0]) if u_max > 0 else 0.0


def difference_power(true_diff: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """Exact power of the two-sided paired t test at level `alpha` with n pairs (noncentral t)."""
    df = n - 1
    t_crit = stats.t.ppf(1 - alpha / 2, df)
    noncentrality = true_diff * math.sqrt(n) / sd
    return float(stats.nct.sf(t_crit, df, noncentrality) + stats.nct.cdf(-t_crit, df, noncentrality))


def _fewest(power_at: Callable[[int], float], target: float) -> int | None:
    """The smallest n in [2, MAX_SEEDS] with power_at(n) >= target (power rising with n); None if none."""
    high = 2
    while power_at(high) < target:
        if high >= MAX_SEEDS:
            return None
        high = min(2 * high, MAX_SEEDS)
    low = max(2, high // 2)
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if power_at(middle) >= target else (middle + 1, high)
    return high


def seeds_needed(mean: float, sd: float, margin: float, alpha: float = ALPHA,
                 power: float = POWER) -> tuple[int | None, str | None]:
    """Seeds (pairs) with which one of the two tests reaches `power`, if the true difference and sd are as observed.

    Equivalence is reachable only when |mean| < margin, a difference only when mean != 0; the
    answer is the smaller n, with the test that reaches it ('equivalence' or 'difference').
    (None, None) when neither gets there within MAX_SEEDS.
    """
    candidates = []
    if abs(mean) < margin:
        candidates.append((_fewest(lambda n: tost_power(mean, sd, margin, n, alpha), power), "equivalence"))
    if mean != 0:
        candidates.append((_fewest(lambda n: difference_power(mean, sd, n, alpha), power), "difference"))
    reachable = [(n, test) for n, test in candidates if n is not None]
    return min(reachable) if reachable else (None, None)


def equivalence_verdict(paired: Mapping[str, Any], margin: float | None, alpha: float = ALPHA,
                        reference: str = "keras") -> dict:
    """The TOST block of one comparison: margin, one-sided p-values, verdict, and seeds needed when inconclusive.

    `paired` is what `paired_comparison` returned; `reference`: the framework whose mean a relative margin
    scales. No test is made (verdict 'too few seeds',
    'degenerate' or 'undefined', `detail` says why) when the pairs allow none.
    """
    result = {"margin": margin, "alpha": alpha, "p_lower": None, "p_upper": None, "p": None, "ci90": [None, None],
              "verdict": "undefined", "detail": None, "seeds_needed": None, "seeds_needed_test": None}
    if paired["status"] != "tested":
        result.update(verdict=paired["status"], detail=f"{paired['note']}: no significance verdict")
        return result
    if margin is None:
        result["detail"] = f"no margin: the {reference} mean is unknown"
        return result
    result.update(tost(paired["diffs"], margin))
    result["verdict"] = decide(paired["p"], result["p"], alpha)
    result["detail"] = _verdict_detail(result["verdict"], paired, margin, result["p"], paired["p"])
    if result["verdict"] == "inconclusive":
        result["seeds_needed"], result["seeds_needed_test"] = seeds_needed(paired["mean"], paired["sd"], margin, alpha)
        result["detail"] += f"; {_seeds_text(result['seeds_needed'], result['seeds_needed_test'])}"
    return result


def _verdict_detail(verdict: str, paired: Mapping[str, Any], margin: float, p_equivalence: float,
                   p_difference: float) -> str:
    """One sentence for a verdict: the difference, the margin and the deciding p-value."""
    within = f"within ±{formatting.metric(margin)}"
    if verdict == "equivalent":
        nonzero = f" (nonzero, p = {p_difference:.3g}, but negligible)" if p_difference < ALPHA else ""
        return f"{formatting.metric(paired['mean'], '+')} {within}, TOST p = {p_equivalence:.3g}{nonzero}"
    if verdict == "different":
        return f"{formatting.metric(paired['mean'], '+')}, paired p = {p_difference:.3g}"
    return (f"{formatting.metric(paired['mean'], '+')}, neither shown {within} (TOST p = {p_equivalence:.3g}) "
            f"nor nonzero (paired p = {p_difference:.3g})")


def _seeds_text(seeds: int | None, test: str | None) -> str:
    """'N seeds would settle it (80% power for the test ...)', or that more than MAX_SEEDS would be needed."""
    if seeds is None:
        return f"more than {MAX_SEEDS:,} seeds would be needed at the observed spread"
    return f"{seeds} seeds would settle it ({POWER:.0%} power for {test} at the observed mean and sd)"


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values (None entries are not tested and stay None); reject where adjusted < alpha."""
    ranked = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(ranked):
        running = max(running, min(1.0, (len(ranked) - rank) * p))
        adjusted[i] = running
    return adjusted


def final_val_comparison(keras: Mapping[int, float], lightning: Mapping[int, float], metric: str,
                         margin: Margin | None = None, names: tuple[str, str] = jobs.FRAMEWORKS) -> dict:
    """Final validation metric per seed (seed -> value) of two frameworks, compared (the second minus the first).

    `names`: the two frameworks (default keras and lightning; any pair `(a, b)` of parity.jobs.framework_pairs,
    whose values are given in that order), the keys of the per-framework summaries; a relative margin is a
    fraction of the first one's mean. `paired` (the primary statistic, pairs matched by seed), `welch`
    (secondary, unpaired), `equivalence` (TOST at `margin`, default DEFAULT_MARGINS[metric]);
    `diff_mean`, `diff_ci95` and `welch_p` repeat the Welch numbers for older readers.
    """
    margin = margin or DEFAULT_MARGINS[metric]
    k_values, l_values = list(keras.values()), list(lightning.values())
    summaries = {fw: {**summarize(values), "n": len(values)} for fw, values in zip(names, (k_values, l_values))}
    paired = paired_comparison(keras, lightning)
    welch = welch_comparison(k_values, l_values)
    resolved = margin.resolve(summaries[names[0]]["mean"])
    return {
        **summaries,
        "diff_mean": welch["mean"],
        "diff_ci95": welch["ci95"],
        "welch_p": welch["p"],
        "paired": paired,
        "welch": welch,
        "equivalence": {**equivalence_verdict(paired, resolved, reference=names[0]), "margin_rule": margin.describe(names[0])},
    }


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
