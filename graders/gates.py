"""Regression gates: turn a finished run (and a baseline) into pass / fail.

A gate on a noisy benchmark must not cry wolf. ``assert_no_regression``
compares the two runs item by item (``graders.paired``) and fails only when
a drop is both larger than its limit and significant:

* the grade (/20) fails when its drop exceeds ``max_drop`` grade points and is significant;
* a category (/100) fails when its drop exceeds ``max_category_drop`` score points and is significant;
* "significant" shares ``alpha`` between the checks (``graders.paired.holm_tarone``): the grade
  holds half of it and the gated categories share the other half; a check whose items are too few
  to ever reach its share gives it to the others, and a check that fails passes its share on. So a
  clear drop of the grade fails even when the categories are small, and pure noise fails at most
  ``alpha`` of the time. A check that can never fail is named in a note instead of passing silently.

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

from graders.paired import (
    DEFAULT_PERMUTATIONS,
    GRADE_KEY,
    CheckDecision,
    PairedComparison,
    PairedDifference,
    compare_scores,
    holm_tarone,
    items_needed,
)
from hessgpt.errors import HessError

RESULTS_FILE = "results.json"
SUPPORTED_SCHEMA = 1
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
        return str(self.path.parent if self.path.name == RESULTS_FILE else self.path)

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
        _validate(results, "<in-memory results>")
        return BenchRun(results=results)
    path = Path(source)
    file = path / RESULTS_FILE if path.is_dir() else path
    if not file.is_file():
        where = f"{path}: no {RESULTS_FILE} in this directory" if path.is_dir() else f"{path}: no such run"
        raise HessError(f"{where}; give a finished run directory (the --out of a bench run)")
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise HessError(f"{file}: cannot read it ({error})") from None
    except json.JSONDecodeError as error:
        raise HessError(f"{file}: not valid JSON (line {error.lineno}: {error.msg})") from None
    _validate(results, str(file))
    return BenchRun(results=results, path=file)


def _validate(results: Any, where: str) -> None:
    if not isinstance(results, dict):
        raise HessError(f"{where}: expected a JSON object with the run's results")
    version = results.get("schema_version")
    if version != SUPPORTED_SCHEMA:
        raise HessError(
            f"{where}: schema_version {version!r} is not supported (expected {SUPPORTED_SCHEMA}); "
            "re-run the bench with this version"
        )
    items = results.get("items")
    if not isinstance(items, list):
        raise HessError(f"{where}: 'items' is missing or not a list")
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "id" not in item or "category" not in item:
            raise HessError(f"{where}: items[{index}] needs an 'id' and a 'category'")
        score = item.get("score")
        if score is not None and not isinstance(score, int | float):
            raise HessError(f"{where}: item {item['id']}: score {score!r} is not a number")
    if not isinstance(results.get("categories") or {}, dict):
        raise HessError(f"{where}: 'categories' must be an object")
    if not isinstance(results.get("criteria") or [], list):
        raise HessError(f"{where}: 'criteria' must be a list")


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


def selection(run: BenchRun) -> dict[str, Any]:
    """How the run chose its items: ``{"limit", "seed", "method"}`` (the seed matters with a limit)."""
    meta = run.results.get("meta") or {}
    chosen = meta.get("selection") or {}
    limit = chosen.get("limit", (meta.get("settings") or {}).get("limit"))
    if not limit:
        return {"limit": None, "seed": None, "method": "all items"}
    # Runs written before limited runs were sampled took the first items of each suite.
    method = chosen.get("method", "first items" if not chosen else "seeded sample stratified by tag")
    return {"limit": limit, "seed": chosen.get("seed", meta.get("seed")), "method": method}


def selection_difference(a: BenchRun, b: BenchRun) -> str:
    """Why two runs of the same suites graded different items (--limit or its seed), or ''."""
    sa, sb = selection(a), selection(b)
    if sa == sb:
        return ""

    def text(s: dict[str, Any]) -> str:
        if not s["limit"]:
            return "all items"
        first = " (its first items)" if s["method"] == "first items" else ""
        return f"--limit {s['limit']} --seed {s['seed']}{first}"

    return f"{a.name} graded {text(sa)}, {b.name} {text(sb)}"


def require_same_suites(a: BenchRun, b: BenchRun, override: str = "--shared-items-only") -> None:
    """Refuse to compare runs that graded different suites or different samples of them, naming them."""
    differences = suite_differences(a, b)
    if differences:
        raise HessError(
            f"{a.name} vs {b.name}: the runs graded different suites: {', '.join(differences)}; "
            f"re-run both on the same suites, or compare only the items they share with {override}"
        )
    different_items = selection_difference(a, b)
    if different_items:
        raise HessError(
            f"{a.name} vs {b.name}: the runs graded different items ({different_items}); a limited run's grade "
            f"is comparable only with runs of the same --limit and --seed: re-run one of them so, or compare "
            f"only the items they share with {override}"
        )


def compare_runs(
    baseline: RunLike,
    run: RunLike,
    *,
    shared_items_only: bool = False,
    confidence: float = 0.95,
    seed: int = 0,
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


def format_p(p: float | None, alpha: float | None = None) -> str:
    """A p-value with 3 significant digits ("< 0.001" below that), and more digits when rounding
    would put it on the wrong side of ``alpha`` (0.04999 is "0.04999", never "0.0500")."""
    if p is None:
        return "n/a"
    if p < 0.001:
        return "< 0.001"
    digits = 3
    text = f"{p:#.{digits}g}"
    while alpha is not None and digits < 12 and (float(text) < alpha) != (p < alpha):
        digits += 1
        text = f"{p:#.{digits}g}"
    return text


def p_text(p: float | None, alpha: float | None = None) -> str:
    """``p=0.0150`` or ``p < 0.001``."""
    text = format_p(p, alpha)
    return f"p {text}" if text.startswith("<") else f"p={text}"


def format_level(level: float) -> str:
    """A significance level or confidence share: 0.05, 0.025, 0.00714."""
    return f"{level:.3g}"


def format_ci(ci: tuple[float, float] | None, digits: int, confidence: float, sign: bool = False) -> str:
    """``95% CI -3.20 to -0.41``, or why there is none."""
    if ci is None:
        return "too few items to say"
    spec = f"+.{digits}f" if sign else f".{digits}f"
    return f"{confidence_label(confidence)} {ci[0]:{spec}} to {ci[1]:{spec}}"


def confidence_label(confidence: float) -> str:
    return f"{float(f'{confidence * 100:.4g}'):g}% CI"


# ---------------------------------------------------------------- the decision


@dataclass(frozen=True)
class GateCheck:
    """One quantity (the grade or a category) checked against its drop limit."""

    difference: PairedDifference
    max_drop: float
    alpha: float
    decision: CheckDecision  # its share of alpha, and whether the test rejected "no change" at it

    @property
    def level(self) -> float:
        """The significance level this check was tested at (its share of alpha); 0 when it could not be."""
        return self.decision.level

    @property
    def too_large(self) -> bool:
        return self.difference.drop > self.max_drop

    @property
    def significant(self) -> bool:
        return self.decision.rejected

    @property
    def failed(self) -> bool:
        return self.too_large and self.significant

    def interval(self) -> tuple[float, float] | None:
        """The interval of the drop at the level this check was tested at: it excludes 0 exactly
        when the check is significant, so the message never shows one without the other."""
        if self.level <= 0:
            return None
        ci = self.difference.ci_at(1.0 - self.level)
        return None if ci is None else (-ci[1], -ci[0])

    def describe(self) -> str:
        d = self.difference
        unit, digits = ("/20", 2) if d.key == GRADE_KEY else ("/100", 1)
        relation = ">" if self.too_large else "<="
        if self.level > 0:
            interval = format_ci(self.interval(), digits, 1.0 - self.level) + " of the drop"
            verdict = "significant" if self.significant else "not significant"
            test = f"{p_text(d.p_value, self.level)} vs its share of alpha {format_level(self.level)}: {verdict}"
        else:
            interval = "too few changed items to say"
            test = (f"{p_text(d.p_value)}, cannot fail: p cannot go below {format_p(d.min_p)} "
                    f"with {d.n_changed} changed items")
        return (
            f"{d.key}: {d.a:.{digits}f} -> {d.b:.{digits}f} {unit}, drop {d.drop:.{digits}f} {relation} "
            f"{self.max_drop:g} ({interval}), {test} (Wilcoxon {p_text(d.wilcoxon_p)}), "
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
        if self.correction == "none" or len(self.checks) == 1:
            return f"fails when {' or '.join(limits)} with p < {self.alpha:g}"
        return (f"fails when {' or '.join(limits)} and significant, alpha={self.alpha:g} shared by "
                f"{len(self.checks)} checks (Holm-Tarone)")

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
                "  not failing: " + ", ".join(
                    f"{c.difference.key} {c.difference.diff:+.2f} ({p_text(c.difference.p_value)})"
                    for c in within)
            )
        worst = self.worst_items()
        if worst:
            lines.append("items that regressed most (score baseline -> run: answer baseline -> run):")
            lines += [f"  {line}" for line in worst]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


CORRECTIONS = ("holm", "none")
GRADE_SHARE = 0.5  # of alpha, for the grade when categories are gated too


def check_weights(keys: list[str]) -> list[float]:
    """Each check's share of alpha: the grade half, the categories the other half in equal parts."""
    n_categories = sum(1 for k in keys if k != GRADE_KEY)
    if GRADE_KEY not in keys or n_categories == 0:
        return [1.0 / len(keys)] * len(keys) if keys else []
    return [GRADE_SHARE if k == GRADE_KEY else (1.0 - GRADE_SHARE) / n_categories for k in keys]


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
    n_permutations: int = DEFAULT_PERMUTATIONS,
    override: str = "shared_items_only=True",
) -> RegressionReport:
    """Check a run against a baseline without raising on regression (see ``assert_no_regression``).

    The grade is checked unless ``max_drop`` is None, whatever ``categories`` lists; alpha is
    shared over the checks actually made (``correction="none"``: each check at alpha).
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
    if correction == "holm":
        decisions = holm_tarone([d.p_value for d in differences], [d.min_p for d in differences],
                                check_weights([d.key for d in differences]), alpha)
    else:
        decisions = [CheckDecision(d.p_value < alpha, alpha if d.min_p < alpha else 0.0, d.min_p < alpha)
                     for d in differences]
    checks = [
        GateCheck(d, max_drop if d.key == GRADE_KEY else max_category_drop, alpha, decision)
        for d, decision in zip(differences, decisions, strict=True)
    ]
    notes = _cannot_fail(checks)
    if comparison.only_a or comparison.only_b:
        notes.append(
            f"{len(comparison.only_a)} items only in the baseline and {len(comparison.only_b)} only in the run "
            "were left out"
        )
    return RegressionReport(
        new, base, comparison, checks, alpha, max_drop, max_category_drop, correction, notes
    )


def _cannot_fail(checks: list[GateCheck]) -> list[str]:
    """Name the checks that went down but had too few changed items to ever fail: otherwise a silent
    pass looks like good news. (A check where nothing or little changed passes honestly.)"""
    idle = [c for c in checks if not c.decision.testable and c.difference.drop > 0]
    if not idle:
        return []
    names = ", ".join(f"{c.difference.key} ({c.difference.n_changed} of {c.difference.n_items} items changed)"
                      for c in idle)
    alpha = checks[0].alpha
    testable = any(c.decision.testable for c in checks)
    shared = " and gave their share of alpha to the other checks" if testable else ""
    return [f"{names}: went down, but too few changed items for p to ever reach their share of "
            f"alpha={alpha:g}, so these checks could not fail{shared}; a check needs at least "
            f"{items_needed(alpha)} changed items to fail with all of alpha, more with a share"]


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
    rejects "no change" at its share of ``alpha``: the grade holds half, the gated categories share
    the other half, a check too small to ever reach its share gives it to the others (Tarone) and a
    failed check passes its share on (Holm); ``correction="none"`` tests each check at ``alpha``.
    A check with too few changed items to ever fail is named in a note. Returns the report when
    the gate passes.
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
