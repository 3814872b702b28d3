"""Regression gates: turn a finished run (and a baseline) into pass / fail.

A gate on a noisy benchmark must not cry wolf. ``assert_no_regression``
compares the two runs item by item (``graders.paired``) and fails only when
a drop is both larger than its limit and significant:

* the grade (/20) fails when its drop exceeds ``max_drop`` grade points and p < ``alpha``;
* a category (/100) fails when its drop exceeds ``max_category_drop`` score points and p < ``alpha``;
* p is Holm-corrected over the checks made (grade + gated categories), so a small category may be
  unable to fail at all: the report says so instead of passing silently.

The same decision backs the pytest plugin (``graders.pytest_plugin``) and
``bench.py gate`` for CI systems that do not use pytest.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.results_schema import RESULTS_NAME, load_results, validate_results
from graders.paired import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_PERMUTATIONS,
    GRADE_KEY,
    PairedComparison,
    PairedDifference,
    compare_scores,
    holm_adjust,
    items_needed,
    smallest_p_value,
)
from hessgpt.errors import HessError

DEFAULT_MAX_DROP = 0.5  # grade points out of 20
DEFAULT_MAX_CATEGORY_DROP = 5.0  # score points out of 100
DEFAULT_ALPHA = 0.05
WORST_ITEMS_SHOWN = 5


@dataclass(frozen=True)
class BenchRun:
    """A finished run: its results.json content and where it came from."""

    results: dict[str, Any]
    path: Path | None = None  # the results.json file; None for an in-memory dict

    def __repr__(self) -> str:
        # Short on purpose: pytest prints fixture values, and results hold every answer.
        return f"BenchRun({self.name!r}, grade={self.grade!r})"

    @property
    def name(self) -> str:
        if self.path is None:
            return "<in-memory results>"
        return str(self.path.parent if self.path.name == RESULTS_NAME else self.path)

    @property
    def grade(self) -> float | None:
        return self.results.get("grade")

    @property
    def categories(self) -> dict[str, Any]:
        return self.results.get("categories") or {}

    def category_score(self, category: str) -> float:
        entry = self.categories.get(category)
        if entry is None or entry.get("score") is None:
            known = ", ".join(sorted(self.categories)) or "none"
            raise HessError(f"{self.name}: category '{category}' is not in this run (categories: {known})")
        return float(entry["score"])

    def suite_hashes(self) -> dict[str, str | None]:
        """Suite name -> sha256, from meta.suites (or the categories' suite_hash)."""
        suites = (self.results.get("meta") or {}).get("suites") or {}
        if suites:
            return {name: (info or {}).get("sha256") for name, info in suites.items()}
        return {name: (info or {}).get("suite_hash") for name, info in self.categories.items()}


RunLike = BenchRun | Mapping[str, Any] | str | Path


def load_run(source: RunLike) -> BenchRun:
    """A run from a run directory, a results.json path, a results dict, or a BenchRun."""
    if isinstance(source, BenchRun):
        return source
    if isinstance(source, Mapping):
        results = dict(source)
        validate_results(results, "<in-memory results>")
        return BenchRun(results=results)
    path = Path(source)
    file = path / RESULTS_NAME if path.is_dir() else path
    if not file.is_file():
        where = f"{path}: no {RESULTS_NAME} in this directory" if path.is_dir() else f"{path}: no such run"
        raise HessError(f"{where}; give a finished run directory (the --out of a bench run)")
    return BenchRun(results=load_results(file), path=file)


# ---------------------------------------------------------------- suites


def suite_differences(a: BenchRun, b: BenchRun) -> list[str]:
    """Human-readable differences between the suites two runs graded."""
    ha, hb = a.suite_hashes(), b.suite_hashes()
    differences = []
    for name in sorted(set(ha) | set(hb)):
        if name not in hb:
            differences.append(f"{name} (only in {a.name})")
        elif name not in ha:
            differences.append(f"{name} (only in {b.name})")
        elif ha[name] != hb[name]:
            differences.append(f"{name} (sha256 {str(ha[name])[:12]} vs {str(hb[name])[:12]})")
    return differences


def require_same_suites(a: BenchRun, b: BenchRun, override: str = "--shared-items-only") -> None:
    """Refuse to compare runs that graded different suites, naming them."""
    differences = suite_differences(a, b)
    if differences:
        raise HessError(
            f"{a.name} vs {b.name}: the runs graded different suites: {', '.join(differences)}; "
            f"re-run both on the same suites, or compare only the items they share with {override}"
        )


def compare_runs(
    baseline: RunLike,
    run: RunLike,
    *,
    shared_items_only: bool = False,
    confidence: float = 0.95,
    seed: int = 0,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    override: str = "--shared-items-only",
) -> tuple[BenchRun, BenchRun, PairedComparison]:
    """Load both runs, check their suites, and compare them (differences are run - baseline)."""
    a, b = load_run(baseline), load_run(run)
    if not shared_items_only:
        require_same_suites(a, b, override)
    comparison = compare_scores(
        a.results,
        b.results,
        n_bootstrap=n_bootstrap,
        n_permutations=n_permutations,
        confidence=confidence,
        seed=seed,
    )
    if not comparison.items:
        raise HessError(f"{a.name} vs {b.name}: the runs share no item id; nothing to compare")
    return a, b, comparison


# ---------------------------------------------------------------- formatting helpers


def excerpt(text: Any, limit: int = 60) -> str:
    """One quoted line of an answer, for messages and tables."""
    if text is None:
        return "(no answer)"
    flat = " ".join(str(text).split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return json.dumps(flat, ensure_ascii=False)


def outputs_by_id(results: Mapping[str, Any]) -> dict[str, Any]:
    """First sample's answer for each item id."""
    outputs: dict[str, Any] = {}
    for item in results.get("items") or []:
        outputs.setdefault(str(item["id"]), item.get("output"))
    return outputs


def format_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def _ci_label(confidence: float) -> str:
    return f"{confidence * 100:g}% CI"


# ---------------------------------------------------------------- the decision


@dataclass(frozen=True)
class GateCheck:
    """One quantity (the grade or a category) checked against its drop limit."""

    difference: PairedDifference
    max_drop: float
    alpha: float
    p_adjusted: float  # the p-value after the multiple-testing correction; equals p_value without one

    @property
    def too_large(self) -> bool:
        return self.difference.drop > self.max_drop

    @property
    def significant(self) -> bool:
        return self.p_adjusted < self.alpha

    @property
    def failed(self) -> bool:
        return self.too_large and self.significant

    def describe(self) -> str:
        d = self.difference
        unit, digits = ("/20", 2) if d.key == GRADE_KEY else ("/100", 1)
        low, high = -d.ci[1], -d.ci[0]  # CI of the drop
        relation = ">" if self.too_large else "<="
        adjusted = "" if self.p_adjusted == d.p_value else f", adjusted p={format_p(self.p_adjusted)}"
        return (
            f"{d.key}: {d.a:.{digits}f} -> {d.b:.{digits}f} {unit}, drop {d.drop:.{digits}f} {relation} "
            f"{self.max_drop:g} ({_ci_label(d.confidence)} of the drop {low:.{digits}f} to {high:.{digits}f}), "
            f"p={format_p(d.p_value)}{adjusted} (Wilcoxon p={format_p(d.wilcoxon_p)}), "
            f"{d.n_regressed} of {d.n_items} items worse, {d.n_improved} better"
        )


@dataclass(frozen=True)
class RegressionReport:
    """Every check of a run against its baseline, and the failure message if any failed."""

    run: BenchRun
    baseline: BenchRun
    comparison: PairedComparison
    checks: list[GateCheck]
    alpha: float
    max_drop: float | None
    max_category_drop: float
    correction: str = "holm"
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[GateCheck]:
        return [c for c in self.checks if c.failed]

    @property
    def passed(self) -> bool:
        return not self.failed

    def worst_items(self, n: int = WORST_ITEMS_SHOWN) -> list[str]:
        failed_categories = [c.difference.key for c in self.failed if c.difference.key != GRADE_KEY]
        pairs = self.comparison.most_regressed(n, failed_categories or None)
        before, after = outputs_by_id(self.baseline.results), outputs_by_id(self.run.results)
        return [
            f"{p.id} [{p.category}] {p.a:.2f} -> {p.b:.2f}: {excerpt(before.get(p.id))} -> {excerpt(after.get(p.id))}"
            for p in pairs
        ]

    @property
    def large_but_not_significant(self) -> list[GateCheck]:
        """Drops over their limit that the data cannot tell from noise (worth a look, not a failure)."""
        return [c for c in self.checks if c.too_large and not c.significant]

    def rule(self) -> str:
        limits = []
        if any(c.difference.key == GRADE_KEY for c in self.checks):
            limits.append(f"the grade drops by more than {self.max_drop:g}/20")
        gated = [c.difference.key for c in self.checks if c.difference.key != GRADE_KEY]
        if gated:
            # Name the categories when only some are gated, so a pass does not read as "all fine".
            which = "a category" if set(gated) == set(self.comparison.categories) else f"one of {', '.join(gated)}"
            limits.append(f"{which} drops by more than {self.max_category_drop:g}/100")
        if not limits:
            return "nothing checked: max_drop=None and no categories"
        correction = f", Holm-corrected over {len(self.checks)} checks" if self.correction == "holm" else ""
        return f"fails when {' or '.join(limits)} with p < {self.alpha:g}{correction}"

    def message(self) -> str:
        """The verdict, one line when the gate passes; with the evidence when it fails."""
        failed = self.failed
        head = f"{self.run.name} vs baseline {self.baseline.name}, {len(self.comparison.items)} paired items"
        if not failed:
            lines = [f"no regression: {head} ({self.rule()})"]
            lines += [f"  large but not significant: {c.describe()}" for c in self.large_but_not_significant]
            lines += [f"  note: {note}" for note in self.notes]
            return "\n".join(lines)
        names = ", ".join(c.difference.key for c in failed)
        lines = [f"regression in {names}: {head} ({self.rule()})"]
        lines += [f"  {c.describe()}" for c in failed]
        within = [c for c in self.checks if not c.failed]
        if within:
            lines.append(
                "  not failing: " + ", ".join(f"{c.difference.key} {c.difference.diff:+.2f}" for c in within)
            )
        worst = self.worst_items()
        if worst:
            lines.append("items that regressed most (score baseline -> run: answer baseline -> run):")
            lines += [f"  {line}" for line in worst]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


CORRECTIONS = ("holm", "none")


def evaluate_regression(
    run: RunLike,
    baseline: RunLike,
    *,
    max_drop: float | None = DEFAULT_MAX_DROP,
    max_category_drop: float = DEFAULT_MAX_CATEGORY_DROP,
    alpha: float = DEFAULT_ALPHA,
    categories: Iterable[str] | None = None,
    correction: str = "holm",
    shared_items_only: bool = False,
    seed: int = 0,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    override: str = "shared_items_only=True",
) -> RegressionReport:
    """Check a run against a baseline without raising on regression (see ``assert_no_regression``).

    The grade is checked unless ``max_drop`` is None, whatever ``categories`` lists; the Holm
    correction runs over the checks actually made.
    """
    if not 0.0 < alpha < 1.0:
        raise HessError(f"alpha: {alpha} must be between 0 and 1 (e.g. 0.05)")
    for name, value in (("max_drop", max_drop), ("max_category_drop", max_category_drop)):
        if value is not None and (not math.isfinite(value) or value < 0):
            raise HessError(f"{name}: {value} must be a non-negative number of points")
    if correction not in CORRECTIONS:
        raise HessError(f"correction: {correction!r} is not one of {', '.join(CORRECTIONS)}")
    base, new, comparison = compare_runs(
        baseline,
        run,
        shared_items_only=shared_items_only,
        confidence=1.0 - alpha,
        seed=seed,
        n_bootstrap=n_bootstrap,
        n_permutations=n_permutations,
        override=override,
    )
    wanted = sorted(comparison.categories) if categories is None else list(dict.fromkeys(categories))
    unknown = [c for c in wanted if c not in comparison.categories]
    if unknown:
        shared = ", ".join(sorted(comparison.categories)) or "none"
        raise HessError(f"categories: {', '.join(unknown)} not in both runs (shared categories: {shared})")
    differences = [comparison.grade] if max_drop is not None and comparison.grade is not None else []
    differences += [comparison.categories[c] for c in wanted]
    raw = [d.p_value for d in differences]
    adjusted = holm_adjust(raw) if correction == "holm" else raw
    checks = [
        GateCheck(d, max_drop if d.key == GRADE_KEY else max_category_drop, alpha, p)
        for d, p in zip(differences, adjusted, strict=True)
    ]
    notes = _too_few_items(checks, len(checks) if correction == "holm" else 1, n_permutations)
    if comparison.only_a or comparison.only_b:
        notes.append(
            f"{len(comparison.only_a)} items only in the baseline and {len(comparison.only_b)} only in the run "
            "were left out"
        )
    return RegressionReport(
        new, base, comparison, checks, alpha, max_drop, max_category_drop, correction, notes
    )


def _too_few_items(checks: list[GateCheck], n_checks: int, n_permutations: int) -> list[str]:
    """Say so when checks have too few items to fail: otherwise a silent pass looks like good news."""
    groups: dict[int, list[GateCheck]] = {}
    for check in checks:
        floor = smallest_p_value(check.difference.n_items, n_permutations)
        if floor * n_checks >= check.alpha:
            groups.setdefault(check.difference.n_items, []).append(check)
    notes = []
    for n, group in sorted(groups.items()):
        alpha = group[0].alpha
        floor = smallest_p_value(n, n_permutations)
        names = ", ".join(c.difference.key for c in group)
        each, these = (" each", "these checks") if len(group) > 1 else ("", "this check")
        holm = f" (Holm over {n_checks} checks)" if n_checks > 1 else ""
        needed = f"a check needs at least {items_needed(alpha, n_checks, n_permutations)} items to fail on its own{holm}"
        if floor >= alpha:
            notes.append(f"{names}: only {n} paired items{each}, so p cannot go below {floor:.2g} and {these} can "
                         f"never fail at alpha={alpha:g}; {needed}")
        else:
            notes.append(f"{names}: only {n} paired items{each}: p cannot go below {floor:.2g} "
                         f"({min(1.0, floor * n_checks):.2g} after Holm), so {these} fail at alpha={alpha:g} only "
                         f"when most other checks fail too; {needed}")
    return notes


# ---------------------------------------------------------------- assertion helpers


def grade_shortfall(run: RunLike, min_grade: float) -> str | None:
    """Why the run's grade is below min_grade, or None when it is not."""
    bench_run = load_run(run)
    grade = bench_run.grade
    if grade is None:
        raise HessError(f"{bench_run.name}: results have no grade")
    if grade >= min_grade:
        return None
    ci = bench_run.results.get("grade_ci")
    ci_text = f" (95% CI {ci[0]:.2f} to {ci[1]:.2f})" if ci and None not in ci else ""
    partial = " (partial run: rescaled over the suites run)" if bench_run.results.get("partial") else ""
    return f"grade {grade:.2f}/20{ci_text} is below the required {min_grade:g}/20{partial}: {bench_run.name}"


def assert_grade_at_least(run: RunLike, min_grade: float) -> None:
    """Fail when the run's grade (/20) is below min_grade."""
    __tracebackhide__ = True  # pytest shows the message, not this helper's source
    shortfall = grade_shortfall(run, min_grade)
    if shortfall:
        raise AssertionError(shortfall)


def assert_category_at_least(run: RunLike, category: str, min_score: float) -> None:
    """Fail when a category's score (/100) is below min_score."""
    __tracebackhide__ = True
    bench_run = load_run(run)
    score = bench_run.category_score(category)
    if score < min_score:
        ci = bench_run.categories[category].get("ci")
        ci_text = f" (95% CI {ci[0]:.1f} to {ci[1]:.1f})" if ci and None not in ci else ""
        raise AssertionError(
            f"{category}: score {score:.1f}/100{ci_text} is below the required {min_score:g}/100: {bench_run.name}"
        )


def assert_no_regression(
    run: RunLike,
    baseline: RunLike,
    max_drop: float | None = DEFAULT_MAX_DROP,
    alpha: float = DEFAULT_ALPHA,
    categories: Iterable[str] | None = None,
    *,
    max_category_drop: float = DEFAULT_MAX_CATEGORY_DROP,
    correction: str = "holm",
    shared_items_only: bool = False,
    seed: int = 0,
) -> RegressionReport:
    """Fail when the run is worse than the baseline by more than noise.

    Checks are the grade and the gated categories:

    * ``max_drop`` limits the grade's drop, in grade points (/20); ``None`` skips the grade check.
    * ``max_category_drop`` limits each category's drop, in score points (/100; default 5).
    * ``categories=None`` gates every category both runs share; a list gates only those, and the
      grade is *still* gated (over all shared items) unless ``max_drop=None``; ``[]`` gates the
      grade alone.

    A check fails only when its drop is larger than its limit *and* the paired permutation test
    gives p < ``alpha`` after a Holm correction over the checks made (grade + gated categories;
    ``correction="none"`` turns it off). A category with too few items can never reach that
    (at alpha 0.05 with eight checks it needs 9 items): the message then says so in a note.
    Returns the report when the gate passes.
    """
    __tracebackhide__ = True
    report = evaluate_regression(
        run,
        baseline,
        max_drop=max_drop,
        max_category_drop=max_category_drop,
        alpha=alpha,
        categories=categories,
        correction=correction,
        shared_items_only=shared_items_only,
        seed=seed,
    )
    if not report.passed:
        raise AssertionError(report.message())
    return report
