"""Paired statistics: compare two runs item by item.

Two runs of the same suites answer the same items, so the honest question is
"how much did each item move?", not "do two clouds of scores overlap?". Item
difficulty varies far more than a checkpoint changes a model, so an unpaired
test drowns a consistent small drop in that variance; pairing removes it.

Everything here works on per-item scores (samples of an item are averaged
first, so the item is the unit of resampling: a clustered bootstrap) and
re-aggregates categories and the grade exactly like ``results.json`` does:
category score = 100 x mean of item means (missing = 0), criterion points =
max x mean(category scores)/100, grade = sum of points, rescaled to /20 when
some criteria have no category in the comparison.

Sign convention: differences are ``b - a`` (new minus old); a drop is negative.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_BOOTSTRAP = 2000
DEFAULT_PERMUTATIONS = 10000
# Up to 2**16 sign patterns are enumerated exactly; above that, Monte Carlo.
EXACT_PERMUTATION_MAX_N = 16
GRADE_KEY = "grade"


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


@dataclass(frozen=True)
class PairedStat:
    """A paired difference of means with its uncertainty."""

    diff: float
    ci: tuple[float, float]
    p_value: float
    wilcoxon_p: float | None
    n: int
    n_improved: int
    n_regressed: int


@dataclass(frozen=True)
class PairedDifference:
    """The grade or one category, re-aggregated on shared items, for both runs."""

    key: str
    scale: float  # 20 for the grade, 100 for a category
    a: float
    b: float
    diff: float  # b - a, in the same unit as a and b
    ci: tuple[float, float]
    p_value: float  # sign-flip permutation test, two-sided
    wilcoxon_p: float | None  # cross-check; None when undefined (all differences zero)
    n_items: int
    n_improved: int
    n_regressed: int
    confidence: float = 0.95

    @property
    def drop(self) -> float:
        """How much worse b is than a (negative when b improved)."""
        return -self.diff


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


# ---------------------------------------------------------------- primitives


def _rng(seed: int, key: str) -> np.random.Generator:
    # One stream per statistic, so a category's CI does not depend on which others exist.
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def sign_flip_p_value(
    contributions: Sequence[float] | np.ndarray,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    rng: np.random.Generator | None = None,
) -> float:
    """Two-sided p-value of sum(contributions) under random sign flips.

    Under "no change" each item's difference is as likely to be +d as -d.
    Exact enumeration for small n; otherwise Monte Carlo with the +1
    correction so the p-value is never 0.
    """
    x = np.asarray(contributions, dtype=float)
    n = x.size
    if n == 0:
        return 1.0
    observed = abs(x.sum())
    # Tolerance so that sign patterns equal to the observed sum count as "as extreme".
    threshold = observed - 1e-9 * max(1.0, observed)
    if n <= EXACT_PERMUTATION_MAX_N:
        patterns = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        totals = np.abs(patterns @ x)
        return float(np.mean(totals >= threshold))
    rng = rng if rng is not None else np.random.default_rng(0)
    as_extreme = 0
    done = 0
    chunk = max(1, min(n_permutations, 2_000_000 // n))
    while done < n_permutations:
        rows = min(chunk, n_permutations - done)
        signs = rng.integers(0, 2, size=(rows, n), dtype=np.int8) * 2 - 1
        as_extreme += int(np.count_nonzero(np.abs(signs @ x) >= threshold))
        done += rows
    return (as_extreme + 1) / (n_permutations + 1)


def smallest_p_value(n: int, n_permutations: int = DEFAULT_PERMUTATIONS) -> float:
    """The lowest p-value ``sign_flip_p_value`` can give on n items, whatever the data.

    Exact: the observed pattern and its mirror image are always as extreme, so p >= 2 / 2**n
    (5 items: 0.0625, never significant at 0.05). Monte Carlo: p >= 1 / (n_permutations + 1).
    """
    if n <= 0:
        return 1.0
    if n <= EXACT_PERMUTATION_MAX_N:
        return min(1.0, 2.0 / 2**n)
    return 1.0 / (n_permutations + 1)


def items_needed(alpha: float, n_checks: int = 1, n_permutations: int = DEFAULT_PERMUTATIONS) -> int:
    """Fewest items whose smallest p-value, times ``n_checks`` (Holm's first step), is below alpha.

    With alpha 0.05: 6 items for one check, 9 for a gate's eight checks (grade + seven categories).
    """
    n = 1
    while smallest_p_value(n, n_permutations) * max(1, n_checks) >= alpha and n <= EXACT_PERMUTATION_MAX_N:
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


def _percentile_ci(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def paired_mean_difference(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedStat:
    """Mean of b - a over paired observations: bootstrap CI, sign-flip and Wilcoxon p-values."""
    x = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if x.size == 0:
        raise ValueError("paired_mean_difference needs at least one pair")
    rng = _rng(seed, "mean-difference")
    resampled = x[rng.integers(0, x.size, size=(n_bootstrap, x.size))].mean(axis=1)
    return PairedStat(
        diff=float(x.mean()),
        ci=_percentile_ci(resampled, confidence),
        p_value=sign_flip_p_value(x, n_permutations, rng),
        wilcoxon_p=wilcoxon_p_value(x),
        n=int(x.size),
        n_improved=int(np.count_nonzero(x > 0)),
        n_regressed=int(np.count_nonzero(x < 0)),
    )


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


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given).

    A gate checks the grade and every category at once; without a correction
    seven or eight chances at p < 0.05 make a false alarm on pure noise likely.
    Holm keeps the chance of any false alarm below alpha and is never less
    powerful than Bonferroni.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


# ---------------------------------------------------------------- run comparison


def compare_scores(
    results_a: Mapping[str, Any],
    results_b: Mapping[str, Any],
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Grade and category differences of b against a, paired over their shared items.

    The bootstrap is stratified by category (each resample keeps every
    category's size), so one set of resamples gives category CIs and the
    grade CI consistently. The grade's permutation test flips the sign of
    each item's weighted contribution to the grade difference.
    """
    pairs, only_a, only_b = pair_items(results_a, results_b)
    by_category: dict[str, list[ItemPair]] = {}
    for pair in pairs:
        by_category.setdefault(pair.category, []).append(pair)

    categories: dict[str, PairedDifference] = {}
    boot_means: dict[str, np.ndarray] = {}
    a_means: dict[str, float] = {}
    b_means: dict[str, float] = {}
    for name in sorted(by_category):
        group = by_category[name]
        a = np.array([p.a for p in group])
        b = np.array([p.b for p in group])
        x = b - a
        rng = _rng(seed, f"category:{name}")
        boot_means[name] = x[rng.integers(0, x.size, size=(n_bootstrap, x.size))].mean(axis=1)
        a_means[name], b_means[name] = float(a.mean()), float(b.mean())
        low, high = _percentile_ci(boot_means[name], confidence)
        categories[name] = PairedDifference(
            key=name,
            scale=100.0,
            a=100.0 * a_means[name],
            b=100.0 * b_means[name],
            diff=100.0 * float(x.mean()),
            ci=(100.0 * low, 100.0 * high),
            p_value=sign_flip_p_value(x, n_permutations, rng),
            wilcoxon_p=wilcoxon_p_value(x),
            n_items=int(x.size),
            n_improved=int(np.count_nonzero(x > 0)),
            n_regressed=int(np.count_nonzero(x < 0)),
            confidence=confidence,
        )

    criteria = results_a.get("criteria") or results_b.get("criteria") or []
    weights = grade_weights(criteria, by_category)
    grade = None
    if weights:
        # Each item's share of the grade: w_c x 100 / n_c (category score is 100 x mean).
        contributions = np.array(
            [weights.get(p.category, 0.0) * 100.0 / len(by_category[p.category]) * p.diff for p in pairs]
        )
        boot_grade = sum(weights[c] * 100.0 * boot_means[c] for c in weights)
        rng = _rng(seed, GRADE_KEY)
        grade = PairedDifference(
            key=GRADE_KEY,
            scale=20.0,
            a=sum(weights[c] * 100.0 * a_means[c] for c in weights),
            b=sum(weights[c] * 100.0 * b_means[c] for c in weights),
            diff=float(contributions.sum()),
            ci=_percentile_ci(np.asarray(boot_grade), confidence),
            p_value=sign_flip_p_value(contributions, n_permutations, rng),
            wilcoxon_p=wilcoxon_p_value(contributions),
            n_items=int(sum(len(by_category[c]) for c in weights)),
            n_improved=int(np.count_nonzero(contributions > 0)),
            n_regressed=int(np.count_nonzero(contributions < 0)),
            confidence=confidence,
        )
    return PairedComparison(grade=grade, categories=categories, items=pairs, only_a=only_a, only_b=only_b)
