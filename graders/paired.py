"""Paired statistics: compare two runs item by item.

Two runs of the same suites answer the same items, so the honest question is
"how much did each item move?", not "do two clouds of scores overlap?". Item
difficulty varies far more than a checkpoint changes a model, so an unpaired
test drowns a consistent small drop in that variance; pairing removes it.

Everything here works on per-item scores (samples of an item are averaged
first, so the item is the unit) and re-aggregates categories and the grade
exactly like ``results.json`` does: category score = 100 x mean of item means
(missing = 0), criterion points = max x mean(category scores)/100, grade = sum
of points, rescaled to /20 when some criteria have no category in the comparison.

One test gives both the p-value and the interval: the sign-flip permutation
test, and the interval made of every shift it does not reject. So an interval
excludes zero exactly when p < 1 - confidence, and a difference on too few
items to ever be significant has no finite interval at all.

Sign convention: differences are ``b - a`` (new minus old); a drop is negative.
"""

from __future__ import annotations

import functools
import math
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_PERMUTATIONS = 10000
# Up to 2**16 sign patterns are enumerated exactly; above that, Monte Carlo.
EXACT_PERMUTATION_MAX_N = 16
GRADE_KEY = "grade"
# Subset means are rounded to this many decimals so that ties (a sum that should be 0) stay ties.
_DECIMALS = 9


@dataclass(frozen=True)
class ItemPair:
    """One item seen by both runs: its mean score in each (0..1)."""

    id: str
    category: str
    a: float
    b: float

    @property
    def diff(self) -> float:
        return self.b - self.a


# ---------------------------------------------------------------- item scores


def item_means(results: Mapping[str, Any]) -> dict[str, tuple[str, float]]:
    """Map item id -> (category, mean score over its samples); missing answers score 0."""
    sums: dict[str, list[float]] = {}
    category_of: dict[str, str] = {}
    for item in results.get("items") or []:
        item_id = str(item["id"])
        score = item.get("score")
        value = 0.0 if item.get("missing") or score is None else float(score)
        sums.setdefault(item_id, []).append(value)
        category_of.setdefault(item_id, str(item["category"]))
    return {item_id: (category_of[item_id], sum(v) / len(v)) for item_id, v in sums.items()}


def pair_items(
    results_a: Mapping[str, Any], results_b: Mapping[str, Any]
) -> tuple[list[ItemPair], list[str], list[str]]:
    """Items present in both runs (sorted by id), and the ids only one run has."""
    a, b = item_means(results_a), item_means(results_b)
    shared = sorted(set(a) & set(b))
    pairs = [ItemPair(i, a[i][0], a[i][1], b[i][1]) for i in shared]
    return pairs, sorted(set(a) - set(b)), sorted(set(b) - set(a))


# ---------------------------------------------------------------- the sign-flip test


@functools.lru_cache(maxsize=4)
def _all_flips(n: int) -> np.ndarray:
    """Every subset of n items as a 0/1 matrix (2**n rows): which items a sign pattern flips."""
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(np.float64)


@dataclass(frozen=True)
class SignFlipTest:
    """A two-sided sign-flip permutation test of a weighted sum, and its inversion.

    The statistic is ``estimate = sum(w_i x_i)``. The hypothesis "the true difference is delta"
    shifts every item's difference by the same amount (``x_i - delta / sum(w)``); under it each
    shifted difference is as likely to be positive as negative. A sign pattern that flips the
    items of a set F is at least as extreme as the observed one (upwards) exactly when delta is
    at least ``theta_F = sum(w) * sum_F(w x) / sum_F(w)``, the weighted mean of x over F scaled to
    the statistic. So the test at every delta, and the interval of the deltas it keeps, come from
    one sorted array of these subset means.
    """

    estimate: float
    thetas: np.ndarray = field(repr=False, compare=False)  # sorted, over the patterns that flip something
    n_unflipped: int  # patterns that flip nothing (the observed one): as extreme at every delta
    n_patterns: int  # denominator of the p-value
    n_items: int
    n_nonzero: int  # items whose difference is not 0: the only ones that can move p at delta = 0
    exact: bool

    def _at_most(self, delta: float) -> int:
        """Patterns whose statistic is >= the observed one at this delta (the upper tail)."""
        return self.n_unflipped + int(np.searchsorted(self.thetas, delta + 0.5 * 10**-_DECIMALS, side="right"))

    def _at_least(self, delta: float) -> int:
        """Patterns whose statistic is <= the observed one at this delta (the lower tail)."""
        return self.n_unflipped + self.thetas.size - int(
            np.searchsorted(self.thetas, delta - 0.5 * 10**-_DECIMALS, side="left")
        )

    def p_value(self, delta: float = 0.0) -> float:
        """Two-sided p-value of "the true difference is delta": twice the smaller tail, at most 1."""
        tail = min(self._at_most(delta), self._at_least(delta))
        return min(1.0, 2.0 * tail / self.n_patterns)

    def _needed(self, level: float) -> int:
        """Fewest patterns a tail must hold for 2 x tail / n_patterns to reach ``level``."""
        return math.ceil(level / 2.0 * self.n_patterns - 1e-9)

    def ci(self, confidence: float = 0.95) -> tuple[float, float] | None:
        """Every delta the test does not reject at 1 - confidence; None when that is every delta.

        None means the items are too few for any difference to be significant at that level.
        The interval excludes 0 exactly when ``p_value() < 1 - confidence``.
        """
        k = self._needed(1.0 - confidence) - self.n_unflipped
        if k <= 0:
            return None
        return float(self.thetas[k - 1]), float(self.thetas[self.thetas.size - k])

    @property
    def min_p(self) -> float:
        """The smallest p-value these items can give at delta = 0, whatever the signs of their differences.

        Only changed items count: with n of them all of one sign, the observed pattern and its
        mirror are the only ones as extreme, so p >= 2 / 2**n (5 changed items: 0.0625). With
        Monte Carlo patterns p >= 2 / (n_patterns) as well.
        """
        return smallest_p_value(self.n_nonzero, None if self.exact else self.n_patterns - 1)


def sign_flip_test(
    values: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray | None = None,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    rng: np.random.Generator | None = None,
) -> SignFlipTest:
    """The sign-flip test of ``sum(weights * values)`` (weights 1 by default).

    Exact enumeration up to 16 items; above that ``n_permutations`` random patterns plus the
    observed one, so the p-value is never 0 (seeded by ``rng``).
    """
    x = np.asarray(values, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    if x.shape != w.shape or x.ndim != 1:
        raise ValueError(f"{x.size} values but {w.size} weights")
    if np.any(w <= 0):
        raise ValueError("weights must be positive")
    estimate = float(np.dot(w, x))
    n = x.size
    if n == 0:
        return SignFlipTest(0.0, np.empty(0), 1, 1, 0, 0, True)
    exact = n <= EXACT_PERMUTATION_MAX_N
    if exact:
        flips = _all_flips(n)
    else:
        rng = rng if rng is not None else np.random.default_rng(0)
        flips = rng.integers(0, 2, size=(n_permutations, n), dtype=np.int8).astype(np.float64)
    sums = flips @ np.column_stack([w, w * x])  # per pattern: flipped weight, flipped weighted difference
    moved = sums[:, 0] > 0
    thetas = np.round(w.sum() * sums[moved, 1] / sums[moved, 0], _DECIMALS)
    n_unflipped = int(np.count_nonzero(~moved)) + (0 if exact else 1)  # MC: the observed pattern too
    return SignFlipTest(
        estimate=estimate,
        thetas=np.sort(thetas),
        n_unflipped=n_unflipped,
        n_patterns=flips.shape[0] + (0 if exact else 1),
        n_items=n,
        n_nonzero=int(np.count_nonzero(x)),
        exact=exact,
    )


def sign_flip_p_value(
    contributions: Sequence[float] | np.ndarray,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    rng: np.random.Generator | None = None,
) -> float:
    """Two-sided p-value of sum(contributions) under random sign flips.

    Under "no change" each item's difference is as likely to be +d as -d. Exact enumeration for
    small n; otherwise Monte Carlo with the observed pattern counted, so the p-value is never 0.
    """
    return sign_flip_test(contributions, n_permutations=n_permutations, rng=rng).p_value()


def smallest_p_value(n_changed: int, n_permutations: int | None = None) -> float:
    """The lowest p-value the sign-flip test can give when n items changed, whatever the data.

    Exact: the observed pattern and its mirror image are always as extreme, so p >= 2 / 2**n
    (5 changed items: 0.0625, never significant at 0.05). With ``n_permutations`` random patterns
    (more than 16 items) p is also at least 2 / (n_permutations + 1).
    """
    if n_changed <= 0:
        return 1.0
    floor = 2.0 / 2.0**n_changed
    if n_permutations is not None:
        floor = max(floor, 2.0 / (n_permutations + 1))
    return min(1.0, floor)


def items_needed(level: float) -> int:
    """Fewest changed items whose smallest p-value is below ``level`` (0.05: 6; 0.025: 7)."""
    n = 1
    while smallest_p_value(n) >= level:
        n += 1
    return n


def wilcoxon_p_value(contributions: Sequence[float] | np.ndarray) -> float | None:
    """Wilcoxon signed-rank p-value (scipy), or None when no item changed."""
    from scipy import stats as scipy_stats  # imported on use: it is slow to import

    x = np.asarray(contributions, dtype=float)
    if x.size == 0 or not np.any(x != 0):
        return None
    with warnings.catch_warnings():
        # scipy warns about the normal approximation on tiny samples; the value is still a cross-check.
        warnings.simplefilter("ignore")
        try:
            result = scipy_stats.wilcoxon(x, zero_method="wilcox", alternative="two-sided")
        except ValueError:
            return None
    p = float(result.pvalue)
    return None if math.isnan(p) else p


def _rng(seed: int, key: str) -> np.random.Generator:
    # One stream per statistic, so a category's test does not depend on which others exist.
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


@dataclass(frozen=True)
class PairedStat:
    """A paired difference of means with its uncertainty (ci None: too few items to say)."""

    diff: float
    ci: tuple[float, float] | None
    p_value: float
    wilcoxon_p: float | None
    n: int
    n_improved: int
    n_regressed: int


def paired_mean_difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedStat:
    """Mean of b - a over paired observations: sign-flip p-value and the interval that inverts it."""
    x = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if x.size == 0:
        raise ValueError("paired_mean_difference needs at least one pair")
    test = sign_flip_test(x, np.full(x.size, 1.0 / x.size), n_permutations, _rng(seed, "mean-difference"))
    return PairedStat(
        diff=float(x.mean()),
        ci=test.ci(confidence),
        p_value=test.p_value(),
        wilcoxon_p=wilcoxon_p_value(x),
        n=int(x.size),
        n_improved=int(np.count_nonzero(x > 0)),
        n_regressed=int(np.count_nonzero(x < 0)),
    )


# ---------------------------------------------------------------- several checks at once


@dataclass(frozen=True)
class CheckDecision:
    """The outcome of one hypothesis in :func:`holm_tarone`."""

    rejected: bool
    level: float  # the share of alpha it was last tested at (when rejected: the one that rejected it)
    testable: bool  # False: its smallest reachable p-value never fit its share, so it spent no alpha


def _tarone_scale(remaining: Sequence[int], min_ps: Sequence[float], weights: Sequence[float],
                  alpha: float) -> tuple[float, set[int]]:
    """(c, testable set) for the hypotheses still standing: each testable i is tested at alpha w_i / c.

    Hypothesis i can reject only if its smallest reachable p-value m_i is below its level, i.e.
    c <= tau_i = alpha w_i / m_i. The scale is the smallest c whose testable set weighs at most c,
    so the levels of the testable hypotheses add up to alpha at most (Tarone's argument, weighted):
    hypotheses that could never reject give their share to the others. Without such hypotheses c is
    the total weight left, which is the weighted Holm step.
    """
    taus = sorted({alpha * weights[i] / min_ps[i] for i in remaining}, reverse=True)
    cumulative = []
    total = 0.0
    for tau in taus:
        total += sum(weights[i] for i in remaining if alpha * weights[i] / min_ps[i] == tau)
        cumulative.append(total)
    for j in range(len(taus) - 1, -1, -1):  # smallest scales first
        if cumulative[j] <= taus[j] * (1 + 1e-12):
            scale = max(cumulative[j], taus[j + 1] if j + 1 < len(taus) else 0.0)
            return scale, {i for i in remaining if alpha * weights[i] / min_ps[i] >= taus[j]}
    return 1.0, set()


def holm_tarone(
    p_values: Sequence[float],
    min_p_values: Sequence[float],
    weights: Sequence[float] | None = None,
    alpha: float = 0.05,
) -> list[CheckDecision]:
    """Weighted Holm step-down with Tarone's rule for tests that cannot reach significance.

    Several checks at once (a gate's grade and categories) would raise false alarms on pure noise
    without a correction. Each hypothesis holds a share ``w_i`` of alpha. A sign-flip test on few
    changed items has a smallest reachable p-value (``min_p_values``); a test that could never go
    below its share is left out and its share goes to the others (Tarone, 1990). A rejected
    hypothesis passes its share on (Holm, 1979). The chance of any false rejection stays below
    alpha: each step is a consonant shortcut of closed testing with weighted Tarone-Bonferroni tests.
    A hypothesis is rejected when p < its level.
    """
    m = len(p_values)
    if len(min_p_values) != m:
        raise ValueError("one smallest p-value per p-value")
    w = [1.0] * m if weights is None else [float(x) for x in weights]
    if len(w) != m or any(x <= 0 for x in w):
        raise ValueError("one positive weight per p-value")
    floors = [max(float(x), 1e-300) for x in min_p_values]
    remaining = list(range(m))
    level = [0.0] * m
    rejected = [False] * m
    ever_testable = [False] * m
    while remaining:
        scale, testable = _tarone_scale(remaining, floors, w, alpha)
        for i in remaining:
            level[i] = alpha * w[i] / scale if i in testable else 0.0
            ever_testable[i] = ever_testable[i] or i in testable
        newly = [i for i in testable if p_values[i] < level[i]]
        if not newly:
            break
        for i in newly:
            rejected[i] = True
        remaining = [i for i in remaining if not rejected[i]]
    return [CheckDecision(rejected[i], level[i], ever_testable[i]) for i in range(m)]


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given), for reference and tests."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


# ---------------------------------------------------------------- grade weights


def grade_weights(criteria: Sequence[Mapping[str, Any]], categories: Iterable[str]) -> dict[str, float]:
    """Weight of each category score (/100) in the grade (/20): grade = sum(w_c * S_c).

    Criterion points = max x mean(its present categories)/100, so a category
    weighs max / (100 x number of present categories of its criterion).
    Criteria without any present category drop out, and the rest is rescaled
    to /20 — the same rule results.json uses for partial runs.
    """
    present = set(categories)
    used = []
    full_max = 0.0
    for criterion in criteria:
        top = float(criterion.get("max") or 0.0)
        full_max += top
        mine = [c for c in criterion.get("categories") or [] if c in present]
        if mine:
            used.append((top, mine))
    used_max = sum(top for top, _ in used)
    if not used or used_max <= 0:
        return {}
    scale = 1.0 if math.isclose(used_max, full_max) else 20.0 / used_max
    weights: dict[str, float] = {}
    for top, mine in used:
        for category in mine:
            weights[category] = weights.get(category, 0.0) + scale * top / (100.0 * len(mine))
    return weights


def reaggregate(results: Mapping[str, Any]) -> tuple[float | None, dict[str, float]]:
    """Grade (/20) and category scores (/100) recomputed from the item scores alone."""
    by_category: dict[str, list[float]] = {}
    for category, mean in item_means(results).values():
        by_category.setdefault(category, []).append(mean)
    scores = {c: 100.0 * sum(v) / len(v) for c, v in by_category.items()}
    weights = grade_weights(results.get("criteria") or [], scores)
    grade = sum(w * scores[c] for c, w in weights.items()) if weights else None
    return grade, scores



@dataclass(frozen=True)
class PairedDifference:
    """The grade or one category, re-aggregated on shared items, for both runs."""

    key: str
    scale: float  # 20 for the grade, 100 for a category
    a: float
    b: float
    diff: float  # b - a, in the same unit as a and b
    ci: tuple[float, float] | None  # at ``confidence``; None: too few items for any significance
    p_value: float  # sign-flip permutation test, two-sided
    wilcoxon_p: float | None  # cross-check; None when undefined (all differences zero)
    n_items: int
    n_improved: int
    n_regressed: int
    confidence: float = 0.95
    test: SignFlipTest | None = field(default=None, repr=False, compare=False)

    @property
    def drop(self) -> float:
        """How much worse b is than a (negative when b improved)."""
        return -self.diff

    @property
    def n_changed(self) -> int:
        return self.n_improved + self.n_regressed

    @property
    def min_p(self) -> float:
        """The smallest p-value these items could give (see ``SignFlipTest.min_p``)."""
        return self.test.min_p if self.test is not None else smallest_p_value(self.n_changed)

    def significant(self, alpha: float) -> bool:
        return self.p_value < alpha

    def ci_at(self, confidence: float) -> tuple[float, float] | None:
        """The interval at another confidence (e.g. the level a gate tested this check at)."""
        if self.test is None:
            return self.ci if math.isclose(confidence, self.confidence) else None
        return self.test.ci(confidence)


@dataclass(frozen=True)
class PairedComparison:
    """Grade and categories of run b against run a, over the items both answered."""

    grade: PairedDifference | None
    categories: dict[str, PairedDifference]
    items: list[ItemPair]
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)

    def rows(self) -> list[PairedDifference]:
        """Grade first, then categories in name order."""
        head = [self.grade] if self.grade is not None else []
        return head + [self.categories[name] for name in sorted(self.categories)]

    def most_regressed(self, n: int = 5, categories: Iterable[str] | None = None) -> list[ItemPair]:
        wanted = set(categories) if categories is not None else None
        pool = [p for p in self.items if p.diff < 0 and (wanted is None or p.category in wanted)]
        return sorted(pool, key=lambda p: (p.diff, p.id))[:n]

    def most_improved(self, n: int = 5, categories: Iterable[str] | None = None) -> list[ItemPair]:
        wanted = set(categories) if categories is not None else None
        pool = [p for p in self.items if p.diff > 0 and (wanted is None or p.category in wanted)]
        return sorted(pool, key=lambda p: (-p.diff, p.id))[:n]


def _difference(key: str, scale: float, a: float, b: float, x: np.ndarray, weights: np.ndarray,
                confidence: float, n_permutations: int, seed: int) -> PairedDifference:
    """One row: the weighted sum of item differences, its test and the interval that inverts it."""
    test = sign_flip_test(x, weights, n_permutations, _rng(seed, key))
    contributions = weights * x
    return PairedDifference(
        key=key,
        scale=scale,
        a=a,
        b=b,
        diff=test.estimate,
        ci=test.ci(confidence),
        p_value=test.p_value(),
        wilcoxon_p=wilcoxon_p_value(contributions),
        n_items=int(x.size),
        n_improved=int(np.count_nonzero(contributions > 0)),
        n_regressed=int(np.count_nonzero(contributions < 0)),
        confidence=confidence,
        test=test,
    )


def compare_scores(
    results_a: Mapping[str, Any],
    results_b: Mapping[str, Any],
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Grade and category differences of b against a, paired over their shared items.

    A category's difference is 100 x the mean item difference; the grade's is the sum of each
    item's weighted contribution (its category's weight in the grade x 100 / the category's size).
    Each gets its sign-flip p-value and the interval of the shifts that test keeps.
    """
    pairs, only_a, only_b = pair_items(results_a, results_b)
    by_category: dict[str, list[ItemPair]] = {}
    for pair in pairs:
        by_category.setdefault(pair.category, []).append(pair)

    categories: dict[str, PairedDifference] = {}
    a_means: dict[str, float] = {}
    b_means: dict[str, float] = {}
    for name in sorted(by_category):
        group = by_category[name]
        a = np.array([p.a for p in group])
        b = np.array([p.b for p in group])
        a_means[name], b_means[name] = float(a.mean()), float(b.mean())
        categories[name] = _difference(
            name, 100.0, 100.0 * a_means[name], 100.0 * b_means[name], b - a, np.full(a.size, 100.0 / a.size),
            confidence, n_permutations, seed,
        )

    criteria = results_a.get("criteria") or results_b.get("criteria") or []
    weights = grade_weights(criteria, by_category)
    grade = None
    graded = [p for p in pairs if p.category in weights]
    if graded:
        # Each item's weight in the grade: w_c x 100 / n_c (a category score is 100 x its mean).
        item_weights = np.array([weights[p.category] * 100.0 / len(by_category[p.category]) for p in graded])
        grade = _difference(
            GRADE_KEY, 20.0,
            sum(weights[c] * 100.0 * a_means[c] for c in weights),
            sum(weights[c] * 100.0 * b_means[c] for c in weights),
            np.array([p.diff for p in graded]), item_weights, confidence, n_permutations, seed,
        )
    return PairedComparison(grade=grade, categories=categories, items=pairs, only_a=only_a, only_b=only_b)
