"""Run-level figures of the suites graded by computation: tool use and accuracy with and without the
code tool, and pass@k of the code-writing items."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from math import comb
from typing import Any

from graders.checks import COMPUTED_CHECKS

PASS_K = (1, 5, 10)


def graded_by_computation(suite: Any) -> bool:
    """True for a suite whose every item is graded by computation (such as tools and code): it has a
    section of its own in the report, so it may run whether or not scoring.yaml gives it points."""
    return bool(suite.items) and all(
        any(spec.type in COMPUTED_CHECKS for spec in item.checks) for item in suite.items
    )


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimator 1 - C(n-c, k) / C(n, k): the chance that at least one of k answers drawn
    from the n sampled (c of them correct) is correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def _check_types(row: Mapping[str, Any]) -> set[str]:
    return {c.get("type") for c in row.get("checks") or []}


def _mean(values: list[float]) -> float | None:
    return round(100 * sum(values) / len(values), 2) if values else None


def tool_use(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Accuracy (/100) with the tool and without it, the share of answers that called it, the share
    of calls whose code ran cleanly, and calls per answer."""
    graded = [r for r in rows if not r.get("missing")]
    routed = [r for r in graded if r.get("tool_calls") is not None]
    calls = [c for r in routed for c in r["tool_calls"]]
    summary: dict[str, Any] = {"n_answers": len(graded), "routed": bool(routed)}
    if routed:
        summary.update(
            accuracy_with_tool=_mean([r["score"] for r in routed]),
            accuracy_without_tool=_mean([r["no_tool_score"] for r in routed if r.get("no_tool_score") is not None]),
            tool_call_rate=_mean([1.0 if r["tool_calls"] else 0.0 for r in routed]),
            clean_run_rate=_mean([1.0 if c.get("exit_reason") == "ok" else 0.0 for c in calls]),
            calls=len(calls),
            calls_per_answer=round(len(calls) / len(routed), 3),
            exit_reasons=_counts(c.get("exit_reason") for c in calls),
        )
    else:
        summary.update(accuracy_with_tool=None, accuracy_without_tool=_mean([r["score"] for r in graded]),
                       tool_call_rate=None, clean_run_rate=None, calls=0, calls_per_answer=None, exit_reasons={})
    return summary


def _counts(values: Iterable[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return dict(sorted(out.items()))


def passing(row: Mapping[str, Any]) -> bool:
    """An answer passes when every unit_tests check of it scored 1."""
    tests = [c for c in row.get("checks") or [] if c.get("type") == "unit_tests"]
    return bool(tests) and all(c.get("score", 0) >= 1.0 for c in tests)


def code_pass_rates(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """pass@k over items (k up to the samples per item); greedy runs give pass@1."""
    by_item: dict[str, list[bool]] = {}
    for row in rows:
        by_item.setdefault(row["id"], []).append(False if row.get("missing") else passing(row))
    n = min((len(v) for v in by_item.values()), default=0)
    out: dict[str, Any] = {"n_items": len(by_item), "samples": n}
    for k in PASS_K:
        if 1 <= k <= n:
            values = [pass_at_k(len(v), sum(v), k) for v in by_item.values()]
            out[f"pass@{k}"] = round(100 * sum(values) / len(values), 2)
    if n > 1 and f"pass@{n}" not in out:
        values = [pass_at_k(len(v), sum(v), n) for v in by_item.values()]
        out[f"pass@{n}"] = round(100 * sum(values) / len(values), 2)
    return out


def summarise(items: list[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Per category: ``tool_use`` for suites graded on a computed answer (or run through the tool),
    ``pass_rates`` for suites graded by unit tests. None when the run has neither."""
    by_category: dict[str, list[Mapping[str, Any]]] = {}
    for row in items:
        by_category.setdefault(row["category"], []).append(row)
    out: dict[str, Any] = {}
    for category, rows in by_category.items():
        types = set().union(*(_check_types(r) for r in rows))
        entry: dict[str, Any] = {}
        if "unit_tests" in types:
            entry["pass_rates"] = code_pass_rates(rows)
        if types & {"numeric_answer", "final_answer_contains"} or any(r.get("tool_calls") is not None for r in rows):
            entry["tool_use"] = tool_use(rows)
        if entry:
            out[category] = entry
    return out or None
