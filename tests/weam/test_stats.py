"""Paired bootstrap and permutation statistics, checked against numbers computed here by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from weam.errors import WeamError
from weam.study.stats import compare, pair_by_rank, paired_bootstrap_ci, paired_permutation_p, significance_statement

# 2 seeds × 3 languages, flattened; treatment − control = 0.10, 0.05, 0.00, 0.15, 0.05, 0.05
TREATMENT = [0.60, 0.45, 0.30, 0.65, 0.50, 0.35]
CONTROL = [0.50, 0.40, 0.30, 0.50, 0.45, 0.30]


def test_point_estimate_is_the_mean_paired_difference():
    mean_diff, low, high = paired_bootstrap_ci(TREATMENT, CONTROL, n_resamples=2000, seed=3)
    assert math.isclose(mean_diff, 0.40 / 6)
    assert low <= mean_diff <= high


def test_percentile_interval_matches_plain_numpy_resampling():
    n_resamples, seed = 5000, 7
    _, low, high = paired_bootstrap_ci(TREATMENT, CONTROL, n_resamples, 0.95, seed, method="percentile")
    # Reference: draw the same resamples of unit indices with numpy's Generator and take percentiles.
    diffs = np.subtract(TREATMENT, CONTROL)
    rng = np.random.default_rng(seed)
    resampled = diffs[rng.integers(0, diffs.size, (n_resamples, diffs.size))].mean(axis=1)
    expected_low, expected_high = np.percentile(resampled, [2.5, 97.5])
    assert math.isclose(low, expected_low, abs_tol=1e-12) and math.isclose(high, expected_high, abs_tol=1e-12)
    # Only bootstrap means lying in [min diff, max diff] are possible.
    assert 0.0 <= low < high <= 0.15


def test_identical_conditions_give_a_zero_interval_and_p_one():
    assert paired_bootstrap_ci(TREATMENT, TREATMENT) == (0.0, 0.0, 0.0)
    assert paired_permutation_p(TREATMENT, TREATMENT) == 1.0
    assert "no significant difference" in compare(TREATMENT, TREATMENT).statement()


def test_same_distribution_contains_zero_and_clear_shift_does_not():
    rng = np.random.default_rng(0)
    control = rng.normal(0.5, 0.05, 30)
    noise = control + rng.normal(0.0, 0.02, 30)  # the same condition measured again
    noise -= (noise - control).mean()  # paired differences centred exactly on 0
    same = compare(noise, control, n_resamples=4000)
    assert same.low < 0 < same.high and not same.significant
    better = compare(control + 0.05 + rng.normal(0, 0.01, 30), control, n_resamples=4000)
    assert better.low > 0 and better.significant and better.p_value < 0.001
    assert better.statement().startswith("treatment better than control")
    worse = compare(control - 0.05, control, n_resamples=4000)
    assert worse.high < 0 and worse.statement().startswith("treatment worse than control")


def test_exact_permutation_p_counts_sign_patterns():
    # 6 units → 2**6 sign patterns. |sum| reaches the observed 0.40 only when the 5 non-zero
    # differences share one sign (2 ways) whatever the zero unit's sign (2 ways): p = 4 / 64.
    assert math.isclose(paired_permutation_p(TREATMENT, CONTROL), 4 / 64)
    # Observed mean 0: every pattern is at least as extreme, p = 1.
    assert math.isclose(paired_permutation_p([0.1, 0.05, -0.15], [0, 0, 0]), 1.0)


def test_statement_wording_and_bad_input():
    assert significance_statement(0.02, 0.01, 0.03).endswith("excludes 0")
    assert "contains 0" in significance_statement(0.01, -0.01, 0.03)
    with pytest.raises(WeamError, match="differ in size"):
        paired_bootstrap_ci([1, 2, 3], [1, 2])
    with pytest.raises(WeamError, match="NaN"):
        paired_bootstrap_ci([1, float("nan")], [1, 2])


def test_seeds_pair_by_numeric_rank():
    assert pair_by_rank(["10", "2", "1"], ["5", "3", "4"]) == [("1", "3"), ("2", "4"), ("10", "5")]
    assert pair_by_rank(["0", "1", "2"], ["7", "9"]) == [("0", "7"), ("1", "9")]
