"""Statistics over seeds and array differences in parity.compare, checked against hand computations."""

import math

import numpy as np
import pytest
from scipy import stats

from parity.compare import (
    Margin,
    decide,
    final_val_comparison,
    holm,
    max_abs_diff,
    summarize,
    throughput_ratio,
    tost,
)


def test_max_abs_diff_is_float64_and_exact():
    a = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    b = np.array([[1.0, 2.5], [2.0, 4.0]], dtype=np.float32)
    assert max_abs_diff(a, b) == 1.0
    assert isinstance(max_abs_diff(a, b), float)
    # float32 would round 1 + 1e-9 to 1; float64 keeps the difference.
    assert max_abs_diff(np.array([1.0 + 1e-9]), np.array([1.0])) == pytest.approx(1e-9, rel=1e-6)


def test_max_abs_diff_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        max_abs_diff(np.zeros((2, 3)), np.zeros((3, 2)))


def test_summarize_uses_sample_std():
    s = summarize([0.86, 0.87, 0.88])
    assert s["mean"] == pytest.approx(0.87)
    assert s["std"] == pytest.approx(0.01)  # ddof=1: sqrt((0.0001 + 0 + 0.0001) / 2)
    assert summarize([0.5]) == {"mean": 0.5, "std": None}


def _by_seed(values):
    return dict(enumerate(values))


def _compare(keras, lightning, metric="accuracy", margin=None):
    return final_val_comparison(_by_seed(keras), _by_seed(lightning), metric, margin)


def test_welch_interval_matches_hand_computation():
    result = _compare([0.86, 0.87, 0.88], [0.87, 0.88, 0.89])
    # Equal variances 1e-4 and n = 3 on both sides: se = sqrt(2 * 1e-4 / 3) = 0.008165,
    # Welch df = (2v)^2 / (2 v^2 / 2) = 4, t_{0.975, 4} = 2.776445.
    se = math.sqrt(0.0001 / 3 * 2)
    assert se == pytest.approx(0.008165, abs=1e-6)
    half = 2.776445 * se
    assert result["diff_mean"] == pytest.approx(0.01)
    assert result["diff_ci95"][0] == pytest.approx(0.01 - half, abs=1e-6)
    assert result["diff_ci95"][1] == pytest.approx(0.01 + half, abs=1e-6)
    assert result["diff_ci95"] == pytest.approx([-0.012670, 0.032670], abs=1e-6)
    assert result["welch"]["ci95"] == result["diff_ci95"] and result["welch"]["df"] == pytest.approx(4.0)
    assert result["keras"] == {"mean": pytest.approx(0.87), "std": pytest.approx(0.01), "n": 3}
    assert result["lightning"]["mean"] == pytest.approx(0.88)
    expected_p = stats.ttest_ind([0.87, 0.88, 0.89], [0.86, 0.87, 0.88], equal_var=False).pvalue
    assert result["welch_p"] == pytest.approx(expected_p)
    assert result["welch_p"] == pytest.approx(0.2879, abs=1e-4)


def test_welch_unequal_sizes_and_variances_match_scipy():
    keras, lightning = [0.80, 0.84, 0.85, 0.83], [0.86, 0.91]
    result = _compare(keras, lightning)
    test = stats.ttest_ind(lightning, keras, equal_var=False)
    ci = test.confidence_interval(0.95)
    assert result["diff_ci95"] == pytest.approx([ci.low, ci.high])
    assert result["welch_p"] == pytest.approx(test.pvalue)
    # seeds 0 and 1 pair; seeds 2 and 3 ran on keras only
    assert result["paired"]["seeds"] == [0, 1] and result["paired"]["diffs"] == pytest.approx([0.06, 0.07])


def test_paired_interval_matches_hand_computation():
    keras = [0.85, 0.87, 0.86, 0.88, 0.84]
    lightning = [0.852, 0.873, 0.861, 0.882, 0.842]  # d = .002, .003, .001, .002, .002
    result = _compare(keras, lightning)
    paired = result["paired"]
    # mean 0.002, sd sqrt((0 + 1e-6 + 1e-6 + 0 + 0) / 4) = 7.0711e-4, se = sd / sqrt 5 = 3.1623e-4,
    # half = t(0.975, 4) 2.776445 * se = 8.7798e-4; t = 0.002 / se = 6.3246 on 4 df
    assert paired["n"] == 5 and paired["status"] == "tested"
    assert paired["mean"] == pytest.approx(0.002, abs=1e-12)
    assert paired["sd"] == pytest.approx(7.0711e-4, abs=1e-8)
    assert paired["ci95"] == pytest.approx([0.002 - 8.7798e-4, 0.002 + 8.7798e-4], abs=1e-8)
    assert paired["p"] == pytest.approx(2 * stats.t.sf(6.3246, 4), rel=1e-4)
    assert paired["p"] == pytest.approx(0.003198, abs=2e-6)
    assert paired["p"] == pytest.approx(stats.ttest_rel(lightning, keras).pvalue, rel=1e-9)
    # correlation: keras deviations -1, 1, 0, 2, -2 (x0.01); lightning +0.002 with deviations of 1e-3: r near 1
    assert paired["correlation"] == pytest.approx(stats.pearsonr(keras, lightning).statistic, rel=1e-12)
    assert paired["correlation"] > 0.99


def test_pairs_are_matched_by_seed_not_by_position():
    keras = {0: 0.80, 1: 0.90, 2: 0.85}
    lightning = {2: 0.86, 0: 0.81, 1: 0.905}  # another order: pairing by seed gives +.01, +.005, +.01
    paired = final_val_comparison(keras, lightning, "accuracy")["paired"]
    assert paired["seeds"] == [0, 1, 2]
    assert paired["diffs"] == pytest.approx([0.01, 0.005, 0.01])


def test_single_seed_has_no_interval():
    result = _compare([0.87], [0.88])
    assert result["diff_mean"] == pytest.approx(0.01)
    assert result["diff_ci95"] == [None, None]
    assert result["welch_p"] is None
    assert result["keras"]["std"] is None
    assert result["paired"]["status"] == "too few seeds" and result["paired"]["mean"] == pytest.approx(0.01)
    assert result["equivalence"]["verdict"] == "too few seeds" and result["equivalence"]["p"] is None


def test_differences_within_float32_rounding_are_degenerate_and_say_so():
    # c4w3_ts_bilstm on the lab series, 3 seeds, aligned: both frameworks agree to float32 rounding.
    keras = [5.955, 5.647, 5.733]
    lightning = [5.955 - 1.9e-6, 5.647 + 4.8e-7, 5.733]
    paired = _compare(keras, lightning)["paired"]
    assert paired["status"] == "degenerate" and paired["p"] is None
    assert paired["note"] == "all 3 differences equal -4.733e-07 within float32 rounding (spread 2.4e-06)"
    # A spread ten times the float32 level of these values is tested.
    tested = _compare(keras, [5.955 - 6e-5, 5.647 + 6e-5, 5.733])["paired"]
    assert tested["status"] == "tested" and tested["p"] is not None


def test_identical_values_give_exact_difference_and_no_verdict():
    result = _compare([0.87, 0.87, 0.87], [0.9, 0.9, 0.9])
    assert result["diff_mean"] == pytest.approx(0.03)
    # Welch's [d, d] stays for older readers, marked degenerate; nothing is tested
    assert result["diff_ci95"] == [result["diff_mean"], result["diff_mean"]]
    assert result["welch"]["status"] == "degenerate"
    assert result["welch_p"] is None
    assert result["keras"]["std"] == 0.0
    assert result["paired"]["ci95"] == [None, None] and result["paired"]["p"] is None
    assert result["equivalence"]["verdict"] == "degenerate"
    assert result["equivalence"]["detail"] == "all 3 differences equal +0.0300: no significance verdict"
    same = _compare([0.5, 0.5], [0.5, 0.5])
    assert same["diff_ci95"] == [0.0, 0.0] and same["equivalence"]["verdict"] == "degenerate"


def test_zero_variance_on_one_side_still_has_a_welch_interval():
    result = _compare([0.87, 0.87, 0.87], [0.86, 0.88, 0.90])
    # Only lightning varies: se = 0.02 / sqrt(3), df = 2, t_{0.975, 2} = 4.302653.
    half = 4.302653 * 0.02 / math.sqrt(3)
    assert result["diff_ci95"] == pytest.approx([0.01 - half, 0.01 + half], abs=1e-6)
    # the paired differences -.01, .01, .03 vary too: same interval here (keras constant)
    assert result["paired"]["ci95"] == pytest.approx([0.01 - half, 0.01 + half], abs=1e-6)


def test_nan_final_value_gives_none_not_nan():
    result = _compare([0.8, float("nan")], [0.8, 0.9])
    assert result["keras"]["mean"] is None
    assert result["diff_mean"] is None
    assert result["diff_ci95"] == [None, None]
    assert result["paired"]["status"] == "undefined" and result["equivalence"]["verdict"] == "undefined"


def test_holm_matches_hand_computation():
    # sorted 0.01, 0.03, 0.04: 3 x 0.01 = 0.03; 2 x 0.03 = 0.06; 1 x 0.04 = 0.04 -> max(0.06, 0.04) = 0.06
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == [0.02] and holm([]) == []


def test_tost_matches_hand_computation():
    diffs = [0.001, -0.001, 0.002, 0.0, -0.002]  # mean 0, sd sqrt(1e-5 / 4) = 0.0015811, se 7.0711e-4
    result = tost(diffs, 0.01)
    t = 0.01 / 7.0711e-4  # 14.142 on 4 df, both one-sided tests alike by symmetry
    assert result["p_lower"] == pytest.approx(stats.t.sf(t, 4), rel=1e-4)
    assert result["p_upper"] == pytest.approx(result["p_lower"], rel=1e-9)
    assert result["p"] == pytest.approx(7.28e-5, rel=1e-2)
    # 90% interval: t(0.95, 4) = 2.131847 x 7.0711e-4 = 0.0015075
    assert result["ci90"] == pytest.approx([-0.0015075, 0.0015075], abs=1e-7)


@pytest.mark.parametrize("p_difference, p_equivalence, verdict", [
    (0.001, 0.001, "equivalent"),   # nonzero, but shown within the margin: negligible by definition
    (0.001, 0.30, "different"),
    (0.30, 0.01, "equivalent"),
    (0.30, 0.30, "inconclusive"),
    (0.05, 0.05, "inconclusive"),   # p must be below alpha
])
def test_decide(p_difference, p_equivalence, verdict):
    assert decide(p_difference, p_equivalence) == verdict


def test_default_margins_are_one_accuracy_point_and_five_percent_of_the_keras_mae():
    accuracy = _compare([0.85, 0.87, 0.86], [0.851, 0.872, 0.859])
    assert accuracy["equivalence"]["margin"] == 0.01 and accuracy["equivalence"]["margin_rule"] == "0.01 absolute"
    mae = _compare([2.0, 2.2, 1.8], [2.01, 2.18, 1.83], metric="mae")
    assert mae["equivalence"]["margin"] == pytest.approx(0.1)  # 5% of the keras mean 2.0
    assert mae["equivalence"]["margin_rule"] == "5% of the keras mean"
    wider = _compare([2.0, 2.2, 1.8], [2.01, 2.18, 1.83], metric="mae", margin=Margin(0.5))
    assert wider["equivalence"]["margin"] == 0.5


def test_any_pair_is_compared_under_its_own_names_with_a_relative_margin_of_its_first_frameworks_mean():
    lightning, keras_torch = {0: 4.0, 1: 4.4, 2: 3.6}, {0: 4.02, 1: 4.36, 2: 3.66}
    final = final_val_comparison(lightning, keras_torch, "mae", names=("lightning", "keras-torch"))
    assert final["lightning"]["mean"] == pytest.approx(4.0) and final["keras-torch"]["mean"] == pytest.approx(4.0133333)
    assert "keras" not in final and final["paired"]["diffs"] == pytest.approx([0.02, -0.04, 0.06])  # keras-torch - lightning
    assert final["equivalence"]["margin"] == pytest.approx(0.2)  # 5% of the lightning mean 4.0
    assert final["equivalence"]["margin_rule"] == "5% of the lightning mean"


def test_throughput_ratio_is_ratio_of_medians():
    assert throughput_ratio([100.0, 300.0, 200.0], [150.0, 50.0, 100.0]) == pytest.approx(0.5)
    assert throughput_ratio([1000.0], [1250.0]) == pytest.approx(1.25)


def test_throughput_ratio_missing_or_zero_is_none():
    assert throughput_ratio([], [100.0]) is None
    assert throughput_ratio([100.0], []) is None
    assert throughput_ratio([0.0, 0.0], [100.0]) is None
    assert throughput_ratio([100.0], [0.0]) is None
