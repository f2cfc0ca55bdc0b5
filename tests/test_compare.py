"""Statistics over seeds and array differences in parity.compare, checked against hand computations."""

import math

import numpy as np
import pytest
from scipy import stats

from parity.compare import final_val_comparison, max_abs_diff, summarize, throughput_ratio


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


def test_welch_interval_matches_hand_computation():
    result = final_val_comparison([0.86, 0.87, 0.88], [0.87, 0.88, 0.89])
    # Equal variances 1e-4 and n = 3 on both sides: se = sqrt(2 * 1e-4 / 3) = 0.008165,
    # Welch df = (2v)^2 / (2 v^2 / 2) = 4, t_{0.975, 4} = 2.776445.
    se = math.sqrt(0.0001 / 3 * 2)
    assert se == pytest.approx(0.008165, abs=1e-6)
    half = 2.776445 * se
    assert result["diff_mean"] == pytest.approx(0.01)
    assert result["diff_ci95"][0] == pytest.approx(0.01 - half, abs=1e-6)
    assert result["diff_ci95"][1] == pytest.approx(0.01 + half, abs=1e-6)
    assert result["diff_ci95"] == pytest.approx([-0.012670, 0.032670], abs=1e-6)
    assert result["keras"] == {"mean": pytest.approx(0.87), "std": pytest.approx(0.01), "n": 3}
    assert result["lightning"]["mean"] == pytest.approx(0.88)
    expected_p = stats.ttest_ind([0.87, 0.88, 0.89], [0.86, 0.87, 0.88], equal_var=False).pvalue
    assert result["welch_p"] == pytest.approx(expected_p)
    assert result["welch_p"] == pytest.approx(0.2879, abs=1e-4)


def test_welch_unequal_sizes_and_variances_match_scipy():
    keras, lightning = [0.80, 0.84, 0.85, 0.83], [0.86, 0.91]
    result = final_val_comparison(keras, lightning)
    test = stats.ttest_ind(lightning, keras, equal_var=False)
    ci = test.confidence_interval(0.95)
    assert result["diff_ci95"] == pytest.approx([ci.low, ci.high])
    assert result["welch_p"] == pytest.approx(test.pvalue)


def test_single_seed_has_no_interval():
    result = final_val_comparison([0.87], [0.88])
    assert result["diff_mean"] == pytest.approx(0.01)
    assert result["diff_ci95"] == [None, None]
    assert result["welch_p"] is None
    assert result["keras"]["std"] is None


def test_identical_values_give_exact_difference_without_nan():
    result = final_val_comparison([0.87, 0.87, 0.87], [0.9, 0.9, 0.9])
    assert result["diff_mean"] == pytest.approx(0.03)
    assert result["diff_ci95"] == [result["diff_mean"], result["diff_mean"]]
    assert result["welch_p"] is None
    assert result["keras"]["std"] == 0.0
    same = final_val_comparison([0.5, 0.5], [0.5, 0.5])
    assert same["diff_ci95"] == [0.0, 0.0]


def test_zero_variance_on_one_side_still_has_an_interval():
    result = final_val_comparison([0.87, 0.87, 0.87], [0.86, 0.88, 0.90])
    # Only lightning varies: se = 0.02 / sqrt(3), df = 2, t_{0.975, 2} = 4.302653.
    half = 4.302653 * 0.02 / math.sqrt(3)
    assert result["diff_ci95"] == pytest.approx([0.01 - half, 0.01 + half], abs=1e-6)


def test_nan_final_value_gives_none_not_nan():
    result = final_val_comparison([0.8, float("nan")], [0.8, 0.9])
    assert result["keras"]["mean"] is None
    assert result["diff_mean"] is None
    assert result["diff_ci95"] == [None, None]


def test_throughput_ratio_is_ratio_of_medians():
    assert throughput_ratio([100.0, 300.0, 200.0], [150.0, 50.0, 100.0]) == pytest.approx(0.5)
    assert throughput_ratio([1000.0], [1250.0]) == pytest.approx(1.25)


def test_throughput_ratio_missing_or_zero_is_none():
    assert throughput_ratio([], [100.0]) is None
    assert throughput_ratio([100.0], []) is None
    assert throughput_ratio([0.0, 0.0], [100.0]) is None
    assert throughput_ratio([100.0], [0.0]) is None
