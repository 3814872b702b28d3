"""Paired statistics: hand-computed p-values and CIs, re-aggregation, and why pairing matters."""

from __future__ import annotations

import copy
import math
import random

import numpy as np
import pytest
from fixtures_results import make_results
from scipy import stats

from graders.paired import (
    compare_scores,
    grade_weights,
    holm_adjust,
    item_means,
    items_needed,
    paired_mean_difference,
    reaggregate,
    sign_flip_p_value,
    smallest_p_value,
    wilcoxon_p_value,
)

CRITERIA = make_results(n_per_category=1)["criteria"]


def test_sign_flip_exact_enumeration_matches_hand_count():
    # Of the 16 sign patterns of (1, 2, 3, 4), only all-plus and all-minus reach |sum| >= 10.
    assert sign_flip_p_value([1, 2, 3, 4]) == pytest.approx(2 / 16)
    # Ten differences of 0.1 in size, eight negative: |sum| >= 0.6 needs k <= 2 or k >= 8 plus signs.
    diffs = [-0.1] * 8 + [0.1] * 2
    as_extreme = sum(math.comb(10, k) for k in (0, 1, 2, 8, 9, 10))
    assert as_extreme == 112
    assert sign_flip_p_value(diffs) == pytest.approx(112 / 1024)
    # Five equal drops: the smallest p-value five items can ever give is 2 / 32.
    assert sign_flip_p_value([-0.5] * 5) == pytest.approx(0.0625)
    assert sign_flip_p_value([0.2, -0.2]) == 1.0
    assert sign_flip_p_value([0.0, 0.0, 0.0]) == 1.0


def test_sign_flip_monte_carlo_is_seeded_and_never_zero():
    diffs = np.full(40, -0.05)
    first = sign_flip_p_value(diffs, 2000, np.random.default_rng(3))
    again = sign_flip_p_value(diffs, 2000, np.random.default_rng(3))
    assert first == again == pytest.approx(1 / 2001)


def test_paired_mean_difference_hand_computed_case():
    # Differences: eight items lose 0.1, two gain 0.1. Mean -0.06.
    a = [0.5] * 10
    b = [0.4] * 8 + [0.6] * 2
    stat = paired_mean_difference(a, b, n_bootstrap=20000)
    assert stat.diff == pytest.approx(-0.06)
    assert stat.p_value == pytest.approx(112 / 1024)
    assert (stat.n, stat.n_regressed, stat.n_improved) == (10, 8, 2)
    # A bootstrap resample holds K ~ Binomial(10, 0.2) gains, so its mean is 0.02 K - 0.1.
    # P(K = 0) = 0.107 > 2.5%, and P(K <= 4) = 0.967 < 97.5% <= P(K <= 5) = 0.994:
    # the exact percentile interval is [0.02*0 - 0.1, 0.02*5 - 0.1] = [-0.10, 0.00].
    assert stats.binom.cdf(4, 10, 0.2) < 0.975 <= stats.binom.cdf(5, 10, 0.2)
    assert stat.ci[0] == pytest.approx(-0.10)
    assert stat.ci[1] == pytest.approx(0.0, abs=1e-12)
    # Wilcoxon agrees that ten items are too few to call this drop real.
    assert stat.wilcoxon_p is not None and stat.wilcoxon_p > 0.05


def test_two_pairs_bootstrap_interval_spans_both_values():
    stat = paired_mean_difference([0.0, 0.0], [0.0, 1.0])
    assert stat.diff == 0.5
    assert stat.ci == (0.0, 1.0)
    assert stat.p_value == 1.0


def test_paired_test_detects_consistent_small_drop_that_unpaired_misses():
    # Item difficulty varies a lot; the new model loses exactly 0.03 on every item.
    rng = np.random.default_rng(7)
    old = rng.uniform(0.05, 1.0, 200)
    new = old - 0.03
    unpaired = stats.ttest_ind(old, new, equal_var=False)
    assert unpaired.pvalue > 0.2
    assert stats.mannwhitneyu(old, new).pvalue > 0.2
    paired = paired_mean_difference(old, new)
    assert paired.diff == pytest.approx(-0.03)
    assert paired.p_value < 0.001
    assert paired.ci[1] < 0 < -paired.ci[0]
    assert paired.wilcoxon_p is not None and paired.wilcoxon_p < 1e-10


def test_wilcoxon_is_none_when_nothing_changed():
    assert wilcoxon_p_value([0.0, 0.0]) is None
    assert wilcoxon_p_value([]) is None


def test_smallest_p_value_and_items_needed():
    # All n differences of one sign: only that pattern and its mirror are as extreme.
    for n in (1, 5, 9):
        assert sign_flip_p_value([-0.3] * n) == pytest.approx(smallest_p_value(n)) == pytest.approx(2 / 2**n)
    assert smallest_p_value(40, n_permutations=9999) == pytest.approx(1e-4)
    assert smallest_p_value(0) == 1.0
    # alpha 0.05: 6 items for a lone test; a gate's 8 checks (grade + 7 categories) need 9 (2/2**9 * 8 < 0.05).
    assert items_needed(0.05) == 6
    assert items_needed(0.05, n_checks=8) == 9
    assert smallest_p_value(8) * 8 >= 0.05 > smallest_p_value(9) * 8


def test_holm_adjustment_hand_case():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, then max(0.06, 0.04*1) = 0.06.
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_grade_weights_full_and_partial():
    weights = grade_weights(
        CRITERIA,
        [
            "factual",
            "explanations",
            "conversation",
            "instructions",
            "input_tasks",
            "creativity",
            "robustness",
        ],
    )
    # factual_precision (8 points) is shared by two categories: 8 / (2 x 100) per score point.
    assert weights["factual"] == pytest.approx(0.04)
    assert weights["conversation"] == pytest.approx(0.05)
    assert weights["robustness"] == pytest.approx(0.01)
    assert sum(w * 100 for w in weights.values()) == pytest.approx(20.0)
    # Only factual and conversation: 8 + 5 = 13 points present, rescaled to 20.
    partial = grade_weights(CRITERIA, ["factual", "conversation"])
    assert partial["factual"] == pytest.approx(20 / 13 * 8 / 100)
    assert partial["conversation"] == pytest.approx(20 / 13 * 5 / 100)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"samples": 3},
        {"missing": {"factual": 2}},
        {"suites": ["factual", "creativity"]},
    ],
)
def test_reaggregate_reproduces_results_figures(kwargs):
    results = make_results(seed=4, n_per_category=6, **kwargs)
    grade, scores = reaggregate(results)
    assert grade == pytest.approx(results["grade"], abs=0.01)
    for name, entry in results["categories"].items():
        assert scores[name] == pytest.approx(entry["score"], abs=0.01)


def test_item_means_average_samples_and_count_missing_as_zero():
    results = make_results(seed=1, n_per_category=3, samples=2, suites=["factual"], missing={"factual": 1})
    means = item_means(results)
    first = [it["score"] for it in results["items"] if it["id"] == "factual-001"]
    assert means["factual-001"] == ("factual", pytest.approx(sum(first) / 2))
    assert means["factual-003"] == ("factual", 0.0)


def test_compare_scores_grade_difference_is_the_reaggregated_difference():
    old = make_results(seed=2, n_per_category=8)
    new = copy.deepcopy(old)
    rnd = random.Random(5)
    for item in new["items"]:
        item["score"] = min(1.0, max(0.0, item["score"] + rnd.uniform(-0.3, 0.2)))
    comparison = compare_scores(old, new)
    grade_old, scores_old = reaggregate(old)
    grade_new, scores_new = reaggregate(new)
    assert comparison.grade is not None
    assert comparison.grade.a == pytest.approx(grade_old)
    assert comparison.grade.b == pytest.approx(grade_new)
    assert comparison.grade.diff == pytest.approx(grade_new - grade_old)
    for name, d in comparison.categories.items():
        assert d.diff == pytest.approx(scores_new[name] - scores_old[name])
        assert d.ci[0] <= d.diff <= d.ci[1]
    assert comparison.grade.ci[0] <= comparison.grade.diff <= comparison.grade.ci[1]
    # Same inputs, same seed: identical statistics.
    assert compare_scores(old, new) == comparison


def test_compare_scores_pairs_only_shared_items():
    old = make_results(seed=2, n_per_category=4, suites=["factual"])
    new = copy.deepcopy(old)
    new["items"] = [it for it in new["items"] if it["id"] != "factual-004"]
    comparison = compare_scores(old, new)
    assert comparison.only_a == ["factual-004"]
    assert comparison.only_b == []
    assert comparison.categories["factual"].n_items == 3
