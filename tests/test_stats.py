"""Bootstrap intervals: coverage of the mean, shrinking with n, clustering, seeds and speed."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy import stats as scipy_stats

from graders.stats import bootstrap_ci, bootstrap_grade, clustered_bootstrap_ci, percentile_interval


def test_ci_contains_the_mean_and_is_seeded():
    values = np.random.default_rng(1).uniform(0, 1, size=60)
    low, high = bootstrap_ci(values, seed=3)
    assert low < values.mean() < high
    assert bootstrap_ci(values, seed=3) == (low, high)
    assert bootstrap_ci(values, seed=4) != (low, high)


def test_ci_shrinks_with_more_items():
    rng = np.random.default_rng(2)
    small, large = rng.uniform(0, 1, size=20), rng.uniform(0, 1, size=400)
    width_small = np.subtract(*bootstrap_ci(small)[::-1])
    width_large = np.subtract(*bootstrap_ci(large)[::-1])
    # Width goes as 1/sqrt(n): 20x the items, about 4.5x narrower.
    assert width_large < width_small / 3


def test_ci_agrees_with_scipy_percentile_bootstrap():
    values = np.random.default_rng(5).uniform(0, 1, size=80)
    ours = bootstrap_ci(values, n_boot=4000)
    theirs = scipy_stats.bootstrap((values,), np.mean, n_resamples=4000, method="percentile", random_state=0)
    assert ours[0] == pytest.approx(theirs.confidence_interval.low, abs=0.01)
    assert ours[1] == pytest.approx(theirs.confidence_interval.high, abs=0.01)


def test_constant_values_give_a_point_interval():
    assert bootstrap_ci([0.5] * 10) == (0.5, 0.5)
    assert bootstrap_ci([1.0]) == (1.0, 1.0)
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_clustered_equals_plain_with_one_sample_per_item():
    values = np.random.default_rng(6).uniform(0, 1, size=50)
    ids = [f"item-{i}" for i in range(50)]
    assert clustered_bootstrap_ci(values, ids, seed=9) == pytest.approx(bootstrap_ci(values, seed=9))


def test_clustered_is_reproducible_and_wider_for_correlated_samples():
    rng = np.random.default_rng(7)
    item_scores = rng.uniform(0, 1, size=10)
    values = np.repeat(item_scores, 5)  # five identical samples per item
    ids = np.repeat([f"q{i}" for i in range(10)], 5).tolist()
    clustered = clustered_bootstrap_ci(values, ids, seed=11)
    assert clustered == clustered_bootstrap_ci(values, ids, seed=11)
    naive = bootstrap_ci(values, seed=11)
    assert clustered[1] - clustered[0] > 1.5 * (naive[1] - naive[0])
    assert clustered[0] < values.mean() < clustered[1]


def test_clustered_weights_items_by_sample_count():
    # 50 items answered once with 1.0, 50 items sampled 4 times with 0.0: the statistic is the
    # mean over kept samples, 50 / 250 = 0.2 (a mean of item means would be 0.5).
    values = [1.0] * 50 + [0.0] * 200
    ids = [f"one-{i}" for i in range(50)] + [f"four-{i // 4}" for i in range(200)]
    low, high = clustered_bootstrap_ci(values, ids, seed=0)
    assert low < 0.2 < high < 0.5
    with pytest.raises(ValueError):
        clustered_bootstrap_ci([1.0], ["a", "b"])


def test_bootstrap_grade_vectorised_and_fast():
    rng = np.random.default_rng(8)
    scores = {name: rng.uniform(0, 1, size=300) for name in ("factual", "conversation", "creativity")}
    weights = {"factual": 10.0, "conversation": 6.0, "creativity": 4.0}

    def grade_of(means):
        return sum(weights[c] * means[c] for c in weights)

    start = time.perf_counter()
    grades, draws = bootstrap_grade(scores, grade_of, n_boot=2000, seed=0)
    assert time.perf_counter() - start < 1.0
    assert grades.shape == (2000,) and set(draws) == set(scores)
    point = grade_of({c: scores[c].mean() for c in scores})
    low, high = percentile_interval(grades)
    assert low < point < high
    again, _ = bootstrap_grade(scores, grade_of, n_boot=2000, seed=0)
    assert np.array_equal(grades, again)


def test_percentile_interval_rejects_bad_level():
    with pytest.raises(ValueError):
        percentile_interval(np.zeros(5), level=1.5)
