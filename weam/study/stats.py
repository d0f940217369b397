"""Paired comparison of two conditions: bootstrap confidence interval and permutation test.

A *unit* is one (seed, language) cell. The two conditions are paired unit by unit: the same
held-out language and the same seed *rank* (the k-th smallest seed of one condition with the
k-th smallest of the other), because seed values need not match across conditions. Both tests
come from scipy: :func:`scipy.stats.bootstrap` (paired resampling of units) and
:func:`scipy.stats.permutation_test` (sign flips within pairs; exact when the number of units
is small).

Units that share a seed (or a language) are not independent, so the unit-level interval is
narrower than a seed-level one would be; the report says so next to the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from weam.errors import WeamError


@dataclass(frozen=True)
class Comparison:
    """Treatment − control over paired units."""

    n_units: int
    mean_diff: float
    low: float
    high: float
    p_value: float | None
    confidence: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0

    def statement(self) -> str:
        return significance_statement(self.mean_diff, self.low, self.high, self.confidence)


def _paired_arrays(treatment, control) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(treatment, dtype=float).ravel()
    c = np.asarray(control, dtype=float).ravel()
    if t.shape != c.shape:
        raise WeamError(f"paired samples differ in size: {t.size} treatment units, {c.size} control units")
    if t.size == 0:
        raise WeamError("no paired units to compare")
    if not (np.isfinite(t).all() and np.isfinite(c).all()):
        raise WeamError("paired samples hold NaN or infinite scores")
    return t, c


def _mean_diff(t, c, axis=-1):
    return np.mean(t - c, axis=axis)


def paired_bootstrap_ci(
    treatment,
    control,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "BCa",
) -> tuple[float, float, float]:
    """Mean of treatment − control and its bootstrap CI, resampling paired units.

    ``method``: ``BCa`` (default; bias-corrected, better coverage on few units) or ``percentile``.
    When every paired difference is the same the bootstrap distribution is a single point and
    the interval is that point (scipy would return NaN for BCa).
    """
    t, c = _paired_arrays(treatment, control)
    mean_diff = float(np.mean(t - c))
    diffs = t - c
    if t.size == 1 or np.all(diffs == diffs[0]):
        return mean_diff, mean_diff, mean_diff
    result = stats.bootstrap(
        (t, c),
        _mean_diff,
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method=method,
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return mean_diff, float(low), float(high)


def paired_permutation_p(treatment, control, n_resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of "no difference" by flipping the sign of paired differences.

    Exact (all 2**n sign patterns) when that is at most ``n_resamples``, else Monte Carlo.
    """
    t, c = _paired_arrays(treatment, control)
    if np.all(t == c):
        return 1.0
    result = stats.permutation_test(
        (t, c),
        _mean_diff,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)


def compare(treatment, control, n_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0) -> Comparison:
    """Bootstrap CI and permutation p-value for paired treatment/control units."""
    mean_diff, low, high = paired_bootstrap_ci(treatment, control, n_resamples, confidence, seed)
    p_value = paired_permutation_p(treatment, control, n_resamples, seed) if np.size(treatment) > 1 else None
    return Comparison(np.size(treatment), mean_diff, low, high, p_value, confidence)


def significance_statement(mean_diff: float, low: float, high: float, confidence: float = 0.95) -> str:
    """One sentence: does the CI exclude zero, and in which direction."""
    level = f"{confidence * 100:g} %"
    interval = f"{level} CI [{low:+.4f}, {high:+.4f}]"
    if low > 0:
        return f"treatment better than control (+{mean_diff:.4f}); significant at {level}, {interval} excludes 0"
    if high < 0:
        return f"treatment worse than control ({mean_diff:+.4f}); significant at {level}, {interval} excludes 0"
    return f"no significant difference at {level} ({mean_diff:+.4f}; {interval} contains 0)"


def pair_by_rank(treatment_seeds: list[str], control_seeds: list[str]) -> list[tuple[str, str]]:
    """Match seeds by rank (numeric order where they are numbers); extra seeds are dropped."""

    def order(seeds: list[str]) -> list[str]:
        return sorted(seeds, key=lambda s: (0, int(s), s) if str(s).lstrip("-").isdigit() else (1, 0, str(s)))

    return list(zip(order(treatment_seeds), order(control_seeds)))
