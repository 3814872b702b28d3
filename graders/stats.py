"""Seeded bootstrap confidence intervals, vectorised with numpy.

Three flavours:
- :func:`bootstrap_ci` — the mean of independent values;
- :func:`clustered_bootstrap_ci` — the mean over samples when an item was answered several
  times: whole items are resampled, so the samples of one item never split (they are not
  independent, and treating them as such would make the interval too narrow);
- :func:`bootstrap_grade` — the whole grade: items are resampled within each category, and a
  caller-supplied function turns the resampled category means into grades.

All intervals are percentile intervals at ``level`` (0.95 by default); the same seed gives the
same interval.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence

import numpy as np


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def percentile_interval(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Central ``level`` interval of bootstrap draws (last axis)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail], axis=-1)
    return float(low), float(high)


def resampled_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` means of ``values`` resampled with replacement (shape ``(n_boot,)``)."""
    n = len(values)
    if n == 0:
        raise ValueError("cannot bootstrap an empty sample")
    picks = rng.integers(0, n, size=(n_boot, n))
    return values[picks].mean(axis=1)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of independent values."""
    array = np.asarray(values, dtype=float)
    return percentile_interval(resampled_means(array, n_boot, _rng(seed)), level)


def clustered_bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    clusters: Sequence[Hashable],
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Interval for the mean over all values, resampling whole clusters (item ids).

    Each draw picks as many clusters as there are, with replacement, and keeps every value of
    each chosen cluster; the statistic is the mean over the values kept.
    """
    array = np.asarray(values, dtype=float)
    if len(array) != len(clusters):
        raise ValueError(f"{len(array)} values but {len(clusters)} cluster labels")
    if len(array) == 0:
        raise ValueError("cannot bootstrap an empty sample")
    # Clusters are numbered by first appearance, so the result does not depend on label types.
    index: dict[Hashable, int] = {}
    codes = np.fromiter(
        (index.setdefault(c, len(index)) for c in clusters), dtype=np.int64, count=len(clusters)
    )
    sums = np.bincount(codes, weights=array)
    counts = np.bincount(codes).astype(float)
    picks = _rng(seed).integers(0, len(index), size=(n_boot, len(index)))
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    return percentile_interval(means, level)


def bootstrap_grade(
    item_scores: Mapping[str, Sequence[float] | np.ndarray],
    grade_of: Callable[[Mapping[str, np.ndarray]], np.ndarray],
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Bootstrap draws of a grade computed from per-category means.

    ``item_scores`` maps category -> item scores (samples already averaged per item).
    Items are resampled within each category (categories are fixed by the suites, the items
    in them are the sample). ``grade_of`` receives category -> array of ``n_boot`` resampled
    means and returns the ``n_boot`` grades. Returns (grade draws, category mean draws).
    Categories are drawn in sorted order so a seed always gives the same draws.
    """
    rng = _rng(seed)
    category_draws = {
        category: resampled_means(np.asarray(item_scores[category], dtype=float), n_boot, rng)
        for category in sorted(item_scores)
    }
    grades = np.asarray(grade_of(category_draws), dtype=float)
    if grades.shape != (n_boot,):
        raise ValueError(f"grade_of returned shape {grades.shape}, expected ({n_boot},)")
    return grades, category_draws
