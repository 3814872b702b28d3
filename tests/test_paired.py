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
    holm_tarone,
    item_means,
    items_needed,
    paired_mean_difference,
    reaggregate,
    sign_flip_p_value,
    sign_flip_test,
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
    # Twice the smaller tail; the observed pattern is counted, so p >= 2 / 2001.
    assert first == again == pytest.approx(2 / 2001)


def test_paired_mean_difference_hand_computed_case():
    # Differences: eight items lose 0.1, two gain 0.1. Mean -0.06.
    a = [0.5] * 10
    b = [0.4] * 8 + [0.6] * 2
    stat = paired_mean_difference(a, b)
    assert stat.diff == pytest.approx(-0.06)
    assert stat.p_value == pytest.approx(112 / 1024)
    assert (stat.n, stat.n_regressed, stat.n_improved) == (10, 8, 2)
    # The 95% interval keeps the shifts whose tails hold at least ceil(0.025 x 1024) = 26 of the
    # 1024 patterns. A pattern flipping m losses and g gains sits at the subset mean 0.1 (g - m) / (g + m).
    # Lower end: the 255 subsets of losses alone sit at -0.10, far more than 25 (+ the unflipped one).
    # Upper end: 3 subsets at +0.10 (gains only), 8 at +0.033 (m=1, g=2), then 16 at 0.00 (m=1, g=1):
    # 1 + 3 + 8 + 16 = 28 >= 26, so the interval is [-0.10, 0.00], and it keeps 0 as p = 0.109 says.
    assert stat.ci == pytest.approx((-0.10, 0.0), abs=1e-9)
    # Wilcoxon agrees that ten items are too few to call this drop real.
    assert stat.wilcoxon_p is not None and stat.wilcoxon_p > 0.05


def test_too_few_items_have_no_interval():
    # Two items: 2 / 2**2 = 0.5, no difference could be significant, so no shift is ever rejected.
    stat = paired_mean_difference([0.0, 0.0], [0.0, 1.0])
    assert stat.diff == 0.5
    assert stat.ci is None
    assert stat.p_value == 1.0
    # Five items all dropping: p = 0.0625 >= 0.05, still no 95% interval; six items have one.
    assert paired_mean_difference([1.0] * 5, [0.0] * 5).ci is None
    assert paired_mean_difference([1.0] * 6, [0.0] * 6).ci == pytest.approx((-1.0, -1.0))


def brute_force_p(x: np.ndarray, w: np.ndarray, delta: float) -> float:
    """Two-sided p of "the weighted sum is delta" by listing every sign pattern of the shifted differences."""
    shifted = w * (x - delta / w.sum())
    signs = 1 - 2 * ((np.arange(2 ** x.size)[:, None] >> np.arange(x.size)) & 1)
    totals = signs @ shifted
    upper = np.mean(totals >= shifted.sum() - 1e-12)
    lower = np.mean(totals <= shifted.sum() + 1e-12)
    return min(1.0, 2 * min(upper, lower))


def test_test_at_any_shift_matches_brute_force_and_the_interval_inverts_it():
    rng = np.random.default_rng(11)
    for _ in range(150):
        n = int(rng.integers(1, 10))
        x = np.round(rng.choice([-1.0, -0.5, 0.0, 0.25, 0.5, 1.0], n) * rng.random(n), 2)
        w = rng.choice([0.5, 1.0, 2.0], n)
        test = sign_flip_test(x, w)
        for delta in (0.0, float(rng.normal() * 2), test.estimate):
            assert test.p_value(delta) == pytest.approx(brute_force_p(x, w, delta), abs=1e-12)
        for confidence in (0.9, 0.95, 0.99):
            ci = test.ci(confidence)
            significant = test.p_value() < 1 - confidence
            if ci is None:
                assert not significant
                continue
            assert (ci[0] > 0 or ci[1] < 0) == significant
            # The ends are shifts the test keeps.
            assert min(test.p_value(ci[0]), test.p_value(ci[1])) >= 1 - confidence


def test_monte_carlo_interval_agrees_with_its_p_value():
    rng = np.random.default_rng(5)
    for trial in range(100):
        x = rng.normal(rng.normal() * 0.06, 0.2, 40)
        test = sign_flip_test(x, np.full(40, 100 / 40), rng=np.random.default_rng(trial))
        low, high = test.ci(0.95)
        assert (low > 0 or high < 0) == (test.p_value() < 0.05)
        assert low <= test.estimate <= high


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
    # Only changed items count: 3 changed among 9 cannot go below 2 / 8.
    assert sign_flip_test([-0.3] * 3 + [0.0] * 6).min_p == pytest.approx(0.25)
    assert smallest_p_value(40, n_permutations=9999) == pytest.approx(2e-4)
    assert smallest_p_value(0) == 1.0
    # 6 changed items reach below 0.05 (2/64), 7 below 0.025 (the grade's half of alpha).
    assert items_needed(0.05) == 6
    assert items_needed(0.025) == 7


def test_holm_adjustment_hand_case():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, then max(0.06, 0.04*1) = 0.06.
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_holm_tarone_without_discreteness_is_holm():
    p = [0.01, 0.04, 0.03, 0.005]
    decisions = holm_tarone(p, [1e-6] * 4, None, 0.05)
    assert [d.rejected for d in decisions] == [a < 0.05 for a in holm_adjust(p)]
    # Step 1 tests all four at 0.05/4; 0.005 and 0.01 pass, the other two are then tested at 0.05/2.
    assert [d.level for d in decisions] == pytest.approx([0.0125, 0.025, 0.025, 0.0125])


def test_holm_tarone_gives_the_share_of_tests_that_cannot_reject_to_the_others():
    # The grade (half of alpha) and seven categories of 3 items each: 2 / 2**3 = 0.25 can never
    # reach alpha, so the grade is tested at all of alpha. Plain Holm would ask p < 0.05 / 8.
    p = [0.015] + [0.25] * 7
    floors = [1e-4] + [0.25] * 7
    weights = [0.5] + [0.5 / 7] * 7
    decisions = holm_tarone(p, floors, weights, 0.05)
    assert decisions[0].rejected and decisions[0].level == pytest.approx(0.05)
    assert not any(d.testable or d.rejected for d in decisions[1:])
    assert holm_adjust(p)[0] > 0.05
    # With categories that can reject, the grade keeps its half: 0.015 < 0.025.
    decisions = holm_tarone([0.015] + [0.5] * 7, [1e-4] * 8, weights, 0.05)
    assert decisions[0].rejected and decisions[0].level == pytest.approx(0.025)
    # Once the grade is rejected its half passes on: the categories share all of alpha.
    assert decisions[1].level == pytest.approx(0.05 / 7)
    decisions = holm_tarone([0.03] + [0.5] * 7, [1e-4] * 8, weights, 0.05)
    assert not decisions[0].rejected and decisions[1].level == pytest.approx(0.05 / 14)
    # A test reachable only above its share gives it away, but only up to where it would become
    # testable: 6 changed items (floor 2/64 = 0.031) cannot reach 0.025, and the other test's level
    # rises from 0.025 to 0.031, not to 0.05 (at 0.031 both would be testable and need 0.062 > alpha).
    decisions = holm_tarone([0.03, 0.031], [1e-4, 0.03125], [0.5, 0.5], 0.05)
    assert decisions[0].level == pytest.approx(0.03125) and decisions[0].rejected
    # Once the first is rejected, the second holds all of alpha: 0.031 < 0.05.
    assert decisions[1].level == pytest.approx(0.05) and decisions[1].rejected


def test_holm_tarone_keeps_false_alarms_below_alpha_on_discrete_tests():
    # Eight sign-flip tests of pure noise, some on very few items: any rejection is a false alarm.
    # (scripts/simulate_gates.py does the same on whole runs, with Monte Carlo tests, at 1,000s of pairs.)
    rng = np.random.default_rng(0)
    sizes = [12, 3, 3, 4, 5, 6, 8, 10]
    weights = [0.5] + [0.5 / 7] * 7
    alarms = 0
    trials = 1000
    for _ in range(trials):
        tests = [sign_flip_test(rng.normal(0, 1, n) * (rng.random(n) < 0.7)) for n in sizes]
        decisions = holm_tarone([t.p_value() for t in tests], [t.min_p for t in tests], weights, 0.05)
        alarms += any(d.rejected for d in decisions)
    # Below alpha up to 3 standard errors; no correction at all would alarm about 12% of the time.
    assert alarms / trials < 0.05 + 3 * (0.05 * 0.95 / trials) ** 0.5


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
        assert (d.ci[0] > 0 or d.ci[1] < 0) == (d.p_value < 0.05)
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
