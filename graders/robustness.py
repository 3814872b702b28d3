"""Degeneration signals over a whole run: loops, bland repeated answers, leaked special tokens.

Item checks see one answer at a time; these metrics look across answers, because the classic
failures of small models (the same sentence for every prompt, an ``<|endoftext|>`` spelled out)
only show up in aggregate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from graders.text import (
    SPECIAL_TOKEN_RE,
    clip,
    ngrams,
    quoted,
    repeated_ngram_stats,
    repetition_words,
    words,
)

# An answer whose 3-grams repeat more than this is reported as looping.
LOOP_RATIO = 0.3
# Below this corpus distinct-2, answers are reported as reusing the same phrases.
LOW_DISTINCT_2 = 0.3
MAX_IDS_SHOWN = 5


def repeated_ngram_ratio(text: str, n: int = 3) -> float:
    """Share of the answer's word n-grams that repeat an earlier one (0 for short answers).

    Measured like the no_repetition check, list markers left out: five numbered copies of
    one item are a loop here too.
    """
    repeated, total = repeated_ngram_stats(repetition_words(text), n)
    return repeated / total if total else 0.0


def distinct_n(texts: Iterable[str], n: int) -> float | None:
    """Distinct word n-grams / all word n-grams over the answers (None if there are none)."""
    total = 0
    seen: set[tuple[str, ...]] = set()
    for text in texts:
        grams = ngrams(words(text), n)
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else None


def special_token_leaks(text: str) -> list[str]:
    """Special-token spellings found in an answer, in order."""
    return SPECIAL_TOKEN_RE.findall(clip(text))


def normalised_answer(text: str) -> str:
    """Case, accents, punctuation and spacing removed: the form compared for mode collapse."""
    return " ".join(words(text))


def mode_collapse(answers: Mapping[str, str]) -> tuple[float, dict[str, list[str]]]:
    """Share of items whose normalised answer equals another item's, and the groups.

    ``answers`` maps item id -> answer. Groups map a normalised answer to the ids sharing it
    (only groups of two or more). Empty answers count: saying nothing to many prompts is a
    collapse too.
    """
    if not answers:
        return 0.0, {}
    by_answer: dict[str, list[str]] = {}
    for item_id, text in answers.items():
        by_answer.setdefault(normalised_answer(text), []).append(item_id)
    groups = {answer: ids for answer, ids in by_answer.items() if len(ids) > 1}
    collapsed = sum(len(ids) for ids in groups.values())
    return collapsed / len(answers), groups


def _ids(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:MAX_IDS_SHOWN])
    if len(ids) > MAX_IDS_SHOWN:
        shown += f" and {len(ids) - MAX_IDS_SHOWN} more"
    return shown


def _answers(rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """First answered sample of each item: samples of one item may legitimately agree."""
    answers: dict[str, str] = {}
    for row in rows:
        if row.get("missing"):
            continue
        item_id = str(row["id"])
        if item_id not in answers:
            output = row.get("output")
            answers[item_id] = output if isinstance(output, str) else ""
    return answers


def suite_findings(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``robustness`` block of results.json.

    ``rows`` are item rows with at least id, output and missing (one per sample). Returns
    mode_collapse, distinct_1, distinct_2, repeated_ngram_ratio (pooled over answers),
    special_token_leaks (number of answers with a leak) and human-readable findings.
    """
    answers = _answers(rows)
    texts = list(answers.values())
    share, groups = mode_collapse(answers)

    repeated = total = 0
    looping: list[str] = []
    leaked: list[str] = []
    leaked_spellings: dict[str, int] = {}
    empty: list[str] = []
    for item_id, text in answers.items():
        if not words(text):
            empty.append(item_id)
        item_repeated, item_total = repeated_ngram_stats(repetition_words(text), 3)
        repeated += item_repeated
        total += item_total
        if item_total and item_repeated / item_total > LOOP_RATIO:
            looping.append(item_id)
        leaks = special_token_leaks(text)
        if leaks:
            leaked.append(item_id)
            for spelling in leaks:
                leaked_spellings[spelling] = leaked_spellings.get(spelling, 0) + 1

    distinct_1, distinct_2 = distinct_n(texts, 1), distinct_n(texts, 2)
    findings: list[str] = []
    if leaked:
        common = max(leaked_spellings, key=leaked_spellings.get)
        findings.append(
            f"{len(leaked)} answer{'s' if len(leaked) > 1 else ''} leaked a special token "
            f"(most often {quoted(common)}): {_ids(leaked)}"
        )
    if groups:
        answer, ids = max(groups.items(), key=lambda kv: (len(kv[1]), kv[0]))
        shown = quoted(answer) if answer else "an empty answer"
        findings.append(
            f"mode collapse: {share:.0%} of answered items share their answer with another item; "
            f"{len(ids)} items answered {shown}: {_ids(ids)}"
        )
    if looping:
        findings.append(
            f"{len(looping)} answer{'s loop' if len(looping) > 1 else ' loops'} "
            f"(over {LOOP_RATIO:.0%} of word 3-grams repeated): {_ids(looping)}"
        )
    if empty:
        findings.append(f"{len(empty)} answer{'s' if len(empty) > 1 else ''} with no words: {_ids(empty)}")
    if distinct_2 is not None and distinct_2 < LOW_DISTINCT_2 and len(texts) > 1:
        findings.append(f"low diversity: distinct-2 is {distinct_2:.2f}, answers reuse the same phrases")

    return {
        "mode_collapse": round(share, 4),
        "distinct_1": None if distinct_1 is None else round(distinct_1, 4),
        "distinct_2": None if distinct_2 is None else round(distinct_2, 4),
        "repeated_ngram_ratio": round(repeated / total, 4) if total else 0.0,
        "special_token_leaks": len(leaked),
        "findings": findings,
    }


__all__ = [
    "distinct_n",
    "mode_collapse",
    "normalised_answer",
    "repeated_ngram_ratio",
    "special_token_leaks",
    "suite_findings",
]
