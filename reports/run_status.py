"""What a run is, in words: partial, limited, reused answers, contaminated items.

A grade of 2.8/20 means one thing for a full run and another for a run of two suites rescaled to
/20, a sample of the items, or answers taken from an earlier run. The terminal summary and the
scorecard both print these notes next to the grade, so no reader mistakes one for the other.
"""

from __future__ import annotations

from typing import Any


def _limit(meta: dict[str, Any]) -> tuple[int | None, Any]:
    selection = meta.get("selection") or {}
    limit = selection.get("limit", (meta.get("settings") or {}).get("limit"))
    return limit, selection.get("seed", meta.get("seed"))


def grade_qualifiers(results: dict[str, Any]) -> list[str]:
    """Short words for the grade line: ``partial``, ``limited``."""
    words = []
    if is_partial(results):
        words.append("partial")
    if _limit(results.get("meta") or {})[0]:
        words.append("limited")
    return words


def is_partial(results: dict[str, Any]) -> bool:
    criteria = results.get("criteria") or []
    return bool(results.get("partial")) or any(c.get("points") is None for c in criteria)


def run_notes(results: dict[str, Any], partial: bool = True) -> list[str]:
    """One sentence per way this run differs from a full, fresh run of every item (``partial=False``
    leaves out the partial-run sentence, for pages that say it their own way)."""
    notes = []
    meta = results.get("meta") or {}
    criteria = results.get("criteria") or []
    if partial and is_partial(results):
        points = sum(c.get("max") or 0 for c in criteria if c.get("points") is not None)
        ran = ", ".join(sorted(results.get("categories") or {})) or "none"
        notes.append(f"Partial run: only {ran} ({points:g} of the 20 points); the grade is rescaled to /20 over "
                     "them and is not comparable with a full run's grade")
    limit, seed = _limit(meta)
    if limit:
        selection = meta.get("selection") or {}
        n_selected = selection.get("n_selected") or len({it.get("id") for it in results.get("items") or []})
        n_available = selection.get("n_available") or sum(
            (s or {}).get("n_items") or 0 for s in (meta.get("suites") or {}).values())
        share = f" ({n_selected / n_available:.0%})" if n_available else ""
        ci = results.get("grade_ci")
        width = f"; its 95% CI is {ci[1] - ci[0]:.1f} points wide" if ci and None not in ci else ""
        notes.append(f"Limited run (--limit {limit} --seed {seed}): {n_selected} of {n_available or '?'} items"
                     f"{share}, a seeded sample stratified by tag{width}; compare it only with runs of the same "
                     "--limit and --seed, not with a full run")
    reused = meta.get("reused_answers")
    if reused:
        total = len(results.get("items") or [])
        notes.append(f"Reused answers: {reused} of {total} answers come from an earlier run in this folder (same "
                     "model, inputs and settings); delete its work.jsonl to generate them again")
    contamination = results.get("contamination") or {}
    flagged = contamination.get("items") or []
    if flagged:
        without = contamination.get("grade_without")
        other = f"; without them the grade is {without:.1f}/20" if isinstance(without, int | float) else ""
        notes.append(f"Contaminated: {len(flagged)} graded item(s) overlap the training data "
                     f"({', '.join(flagged[:5])}{', ...' if len(flagged) > 5 else ''}){other}")
    return notes
