"""Metrics and Δm over seeds: mean ± standard deviation of one configuration, and a paired
comparison of two configurations seed by seed.

A toy Δm moves by about ±0.5 point with the thread count alone, and a real run by more with the
seed; a difference between two methods means something only against that spread. Runs of two
methods with the same seed share the data order and every initialisation the two models have in
common, so they are compared as pairs: ``d_s = b_s − a_s`` for seed ``s``, and the paired
t-test asks whether the mean of ``d`` differs from 0:

    t = mean(d) / (std(d) / sqrt(n)),   n − 1 degrees of freedom, two-sided p-value;
    95 % interval: mean(d) ± t_{0.975, n−1} · std(d) / sqrt(n).

``std`` is the sample standard deviation (``ddof=1``). :func:`seeds_to_separate` answers "how many
seeds would it take": the smallest ``n`` at which a difference of the observed mean and spread
would reach ``p < alpha``.
"""
import math
from typing import NamedTuple, Optional, Sequence

from scipy import stats


class SeedSummary(NamedTuple):
    """Mean and sample standard deviation (NaN for one value) of ``n`` values."""
    mean: float
    std: float
    n: int


def summarise_seeds(values: Sequence[float], field: str = 'values') -> SeedSummary:
    """Mean ± sample std of the values of one configuration over seeds.

    Raises:
        ValueError: No value, or a value that is not a finite number (naming ``field``).
    """
    values = [_finite(v, field) for v in values]
    if not values:
        raise ValueError(f'{field}: no value to summarise')
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return SeedSummary(mean, std, n)


class PairedComparison(NamedTuple):
    """``b − a`` over paired seeds: mean and std of the differences, ``n`` pairs, the paired
    t statistic, its two-sided p-value, the 95 % interval of the mean difference and the seeds
    a difference of this mean and spread needs to reach ``p < 0.05`` (None: more than 1000, or
    no difference)."""
    mean_diff: float
    std_diff: float
    n: int
    t: float
    p: float
    ci95: tuple
    seeds_needed: Optional[int]


def paired_comparison(a: Sequence[float], b: Sequence[float],
                      field: str = 'values') -> PairedComparison:
    """Compare ``b`` against ``a``, the values of two configurations at the same seeds (in the
    same order).

    Raises:
        ValueError: Different numbers of values, fewer than 2 pairs, or a non-finite value.
    """
    if len(a) != len(b):
        raise ValueError(f'{field}: {len(a)} seeds against {len(b)}; a paired comparison needs '
                         f'the same seeds for both')
    if len(a) < 2:
        raise ValueError(f'{field}: a paired comparison needs at least 2 seeds, got {len(a)}')
    diffs = [_finite(y, field) - _finite(x, field) for x, y in zip(a, b)]
    summary = summarise_seeds(diffs, field)
    n, mean, std = summary.n, summary.mean, summary.std
    if std == 0:
        t = math.copysign(math.inf, mean) if mean else math.nan
        p = 0.0 if mean else 1.0
        half = 0.0
    else:
        t = mean / (std / math.sqrt(n))
        p = float(2 * stats.t.sf(abs(t), n - 1))
        half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return PairedComparison(mean, std, n, t, p, (mean - half, mean + half),
                            seeds_to_separate(mean, std))


def seeds_to_separate(mean_diff: float, std_diff: float, alpha: float = 0.05,
                      max_seeds: int = 1000) -> Optional[int]:
    """Smallest ``n >= 2`` with ``|mean_diff| / (std_diff / sqrt(n)) > t_{1 − alpha/2, n−1}``
    (the paired t-test would call a difference of this mean and spread significant at ``alpha``);
    2 when ``std_diff`` is 0 and ``mean_diff`` is not (every seed gives the same difference), None
    when ``mean_diff`` is 0 or more than ``max_seeds`` are needed."""
    if std_diff == 0:
        return 2 if mean_diff else None
    if mean_diff == 0:
        return None
    for n in range(2, max_seeds + 1):
        if abs(mean_diff) * math.sqrt(n) / std_diff > stats.t.ppf(1 - alpha / 2, n - 1):
            return n
    return None


def _finite(value, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f'{field}: {value!r} is not a finite number')
    return float(value)
