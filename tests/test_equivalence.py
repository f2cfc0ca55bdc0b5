"""Paired statistics, TOST equivalence, power and Holm on planted data with a known true difference.

Per-seed values are drawn from a fixed numpy Generator (seeded), so every number here is the
same on every machine. Monte Carlo checks use 20,000 replicates: the standard error of an
estimated probability p is sqrt(p (1 - p) / 20000) <= 0.0036, and the tolerances are 3 to 4 of
those (0.012-0.015), so a correct formula passes and an error of a few points fails.
"""

import math

import numpy as np
import pytest
from scipy import stats

from parity.compare import (
    ALPHA,
    difference_power,
    final_val_comparison,
    paired_comparison,
    seeds_needed,
    tost_power,
)
from parity.summary import apply_holm

REPLICATES = 20_000


def _planted(true_diff, seeds, *, seed_sd=0.01, noise_sd=0.002, base=0.88, rng_seed=0):
    """Per-seed final accuracies: a seed effect shared by both frameworks (same batches and initial weights), the
    known true difference, and independent noise on each side (sd of a difference: noise_sd * sqrt 2)."""
    rng = np.random.default_rng(rng_seed)
    shared = base + rng.normal(0.0, seed_sd, seeds)
    keras = shared + rng.normal(0.0, noise_sd, seeds)
    lightning = shared + true_diff + rng.normal(0.0, noise_sd, seeds)
    return dict(enumerate(keras)), dict(enumerate(lightning))


def _simulated_rejections(true_diff, sd, n, margin, alpha=ALPHA):
    """Share of REPLICATES paired samples of n differences ~ N(true_diff, sd^2) where TOST / the two-sided test reject."""
    x = np.random.default_rng(12345).normal(true_diff, sd, size=(REPLICATES, n))
    mean, se = x.mean(axis=1), x.std(axis=1, ddof=1) / math.sqrt(n)
    one_sided, two_sided = stats.t.ppf(1 - alpha, n - 1), stats.t.ppf(1 - alpha / 2, n - 1)
    tost = (mean - one_sided * se > -margin) & (mean + one_sided * se < margin)
    difference = np.abs(mean) / se > two_sided
    return tost.mean(), difference.mean()


def test_paired_interval_covers_the_true_difference_and_keeps_its_level():
    keras, lightning = _planted(0.004, 10)
    lo, hi = final_val_comparison(keras, lightning, "accuracy")["paired"]["ci95"]
    assert lo < 0.004 < hi
    # coverage over 20,000 planted data sets of 5 seeds: 95% within 3 standard errors (0.0046)
    rng = np.random.default_rng(7)
    diffs = 0.004 + rng.normal(0.0, 0.003, size=(REPLICATES, 5))
    half = stats.t.ppf(0.975, 4) * diffs.std(axis=1, ddof=1) / math.sqrt(5)
    covered = np.abs(diffs.mean(axis=1) - 0.004) < half
    assert covered.mean() == pytest.approx(0.95, abs=3 * math.sqrt(0.95 * 0.05 / REPLICATES))


def test_tiny_true_difference_with_enough_seeds_is_equivalent():
    keras, lightning = _planted(0.001, 20)
    equivalence = final_val_comparison(keras, lightning, "accuracy")["equivalence"]
    assert equivalence["verdict"] == "equivalent"
    assert equivalence["p"] < 1e-6  # 90% interval far inside +-0.01
    lo, hi = equivalence["ci90"]
    assert -0.01 < lo < 0.001 < hi < 0.01


def test_large_true_difference_is_different():
    keras, lightning = _planted(0.03, 5)
    result = final_val_comparison(keras, lightning, "accuracy")
    assert result["equivalence"]["verdict"] == "different"
    assert result["paired"]["p"] < 1e-4 and result["equivalence"]["p_upper"] > 0.5
    assert result["paired"]["ci95"][0] > 0.02


def test_middling_difference_with_few_seeds_is_inconclusive_and_names_the_seeds_needed():
    keras, lightning = _planted(0.005, 3, noise_sd=0.004)
    result = final_val_comparison(keras, lightning, "accuracy")
    equivalence, paired = result["equivalence"], result["paired"]
    assert equivalence["verdict"] == "inconclusive"
    needed, test = equivalence["seeds_needed"], equivalence["seeds_needed_test"]
    assert needed == seeds_needed(paired["mean"], paired["sd"], 0.01)[0] and needed > 3
    # At the observed mean and sd the chosen test reaches 80% power with `needed` seeds and not with one fewer.
    column = 0 if test == "equivalence" else 1
    at_needed = _simulated_rejections(paired["mean"], paired["sd"], needed, 0.01)[column]
    below = _simulated_rejections(paired["mean"], paired["sd"], needed - 1, 0.01)[column]
    assert at_needed >= 0.80 - 0.012 and below < 0.80 + 0.012


@pytest.mark.parametrize("true_diff, sd, n", [(0.0, 0.005, 5), (0.002, 0.004, 5), (0.004, 0.006, 12),
                                              (0.008, 0.002, 4)])
def test_tost_power_is_exact_against_simulation(true_diff, sd, n):
    simulated, _ = _simulated_rejections(true_diff, sd, n, 0.01)
    assert tost_power(true_diff, sd, 0.01, n) == pytest.approx(simulated, abs=0.012)


@pytest.mark.parametrize("true_diff, sd, n", [(0.005, 0.005, 5), (0.002, 0.004, 20), (0.01, 0.02, 8)])
def test_difference_power_is_exact_against_simulation(true_diff, sd, n):
    _, simulated = _simulated_rejections(true_diff, sd, n, 0.01)
    assert difference_power(true_diff, sd, n) == pytest.approx(simulated, abs=0.012)


def test_difference_power_gives_the_textbook_sample_size():
    # paired t, effect size 0.5 sd, two-sided alpha 0.05, 80% power: 34 pairs (Cohen 1988; G*Power)
    assert difference_power(0.5, 1.0, 34) >= 0.80 > difference_power(0.5, 1.0, 33)
    assert seeds_needed(0.5, 1.0, 0.0) == (34, "difference")


def test_seeds_needed_picks_the_test_the_estimates_point_to():
    assert seeds_needed(0.0, 0.005, 0.01)[1] == "equivalence"  # a zero difference can only be shown equivalent
    assert seeds_needed(0.012, 0.005, 0.01)[1] == "difference"  # outside the margin: only a difference
    assert seeds_needed(0.0, 1.0, 1e-6) == (None, None)  # more than MAX_SEEDS


def _row(p_difference, p_equivalence, mean=0.002, sd=0.004, margin=0.01):
    """A summary row's statistics as summarize builds them before Holm, with given one-row p-values."""
    verdict = "equivalent" if p_equivalence < ALPHA else "different" if p_difference < ALPHA else "inconclusive"
    return {"paired": {"p": p_difference, "mean": mean, "sd": sd, "n": 5},
            "equivalence": {"p": p_equivalence, "margin": margin, "verdict": verdict}}


def test_holm_flips_a_marginal_row_when_many_rows_are_tested():
    alone = [_row(0.40, 0.03)]
    apply_holm(alone)
    assert alone[0]["verdict"] == "equivalent" and alone[0]["holm"]["p_equivalence"] == pytest.approx(0.03)
    # with nine more rows whose TOST p are larger, the marginal row ranks first: 10 x 0.03 = 0.3
    many = [_row(0.40, 0.03)] + [_row(0.40, 0.30 + 0.05 * i) for i in range(9)]
    apply_holm(many)
    assert many[0]["holm"]["p_equivalence"] == pytest.approx(0.3)
    assert many[0]["verdict"] == "inconclusive" and many[0]["holm"]["m"] == 10
    # and its seeds needed are at level 0.05 / 10, more than at 0.05
    assert many[0]["seeds_needed"] > seeds_needed(0.002, 0.004, 0.01)[0]
    # a strong row survives: 10 x 1e-5 is still below 0.05
    strong = [_row(1e-6, 0.5)] + [_row(0.40, 0.30) for _ in range(9)]
    apply_holm(strong)
    assert strong[0]["verdict"] == "different" and strong[0]["holm"]["p_difference"] == pytest.approx(1e-5)


def test_rows_without_a_test_stay_out_of_the_holm_family():
    degenerate = {"paired": {"p": None}, "equivalence": {"p": None, "verdict": "degenerate"}}
    not_measured = {"paired": None, "equivalence": None}
    rows = [degenerate, not_measured, _row(0.40, 0.03)]
    apply_holm(rows)
    assert [row["verdict"] for row in rows] == ["degenerate", "not measured", "equivalent"]
    assert rows[2]["holm"]["m"] == 1 and rows[0]["holm"] is None


def test_zero_spread_gives_no_significance_verdict_even_with_float32_rounding():
    keras = {seed: value for seed, value in enumerate([0.8512, 0.8630, 0.8577, 0.8491, 0.8604])}
    # the same +0.0100 on every seed, the values rounded to float32 as the frameworks log them:
    # the differences then spread by ~1e-8, far below EQUAL_SPREAD_RELATIVE (1e-6) of the values
    lightning = {seed: float(np.float32(value + 0.01)) for seed, value in keras.items()}
    keras = {seed: float(np.float32(value)) for seed, value in keras.items()}
    paired = paired_comparison(keras, lightning)
    assert 0 < np.ptp(paired["diffs"]) < 1e-7
    assert paired["status"] == "degenerate" and paired["p"] is None and paired["ci95"] == [None, None]
    result = final_val_comparison(keras, lightning, "accuracy")
    assert result["equivalence"]["verdict"] == "degenerate" and result["equivalence"]["p"] is None
    # a real spread of 1e-4 (one validation image in 10,000) is tested
    lightning[0] += 1e-4
    assert paired_comparison(keras, lightning)["status"] == "tested"


def test_pairing_narrows_the_interval_on_correlated_data():
    keras = [0.85, 0.87, 0.86, 0.88, 0.84]
    lightning = [0.852, 0.873, 0.861, 0.882, 0.842]  # seed effects of +-0.02 shared, differences within 0.001
    result = final_val_comparison(dict(enumerate(keras)), dict(enumerate(lightning)), "accuracy")
    paired, welch = result["paired"]["ci95"], result["welch"]["ci95"]
    # paired half-width 8.78e-4 (test_compare); Welch: s^2 = 1e-3 / 4 = 2.5e-4 and 1.022e-3 / 4 = 2.555e-4,
    # se = sqrt(5.055e-4 / 5) = 0.0100548, df = 7.999, half = t(0.975, 8) 2.3060 x 0.0100548 = 0.023187
    assert paired[1] - paired[0] == pytest.approx(2 * 8.7798e-4, abs=1e-7)
    assert welch[1] - welch[0] == pytest.approx(2 * 0.023187, abs=2e-6)
    assert welch[0] < 0 < welch[1] and paired[0] > 0  # only the paired test sees the +0.002
    assert result["paired"]["correlation"] > 0.99
    # uncorrelated frameworks gain nothing from pairing: the paired interval is no narrower there
    shuffled = dict(enumerate([0.842, 0.882, 0.852, 0.861, 0.873]))
    uncorrelated = final_val_comparison(dict(enumerate(keras)), shuffled, "accuracy")
    width = uncorrelated["paired"]["ci95"][1] - uncorrelated["paired"]["ci95"][0]
    assert width > welch[1] - welch[0]
