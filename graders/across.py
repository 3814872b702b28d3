"""What each answer's grading needs to know about the other answers of the run.

Two failures of small models only show across answers: mode collapse (the same reply to
every prompt, which item checks alone grade as a fine, polite answer) and templated
creativity (one stanza recycled for every poem). This module builds, for every answer, an
:class:`~graders.checks.AnswerContext`: how many distinct prompts received the very same
answer, and the other items' answers of its suite for checks that compare with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from graders.checks import AnswerContext, collapse_threshold
from graders.robustness import normalised_answer


def prompt_key(row: Mapping[str, Any]) -> str:
    """The normalised text the model was shown: blank prompts of any spacing are one prompt."""
    messages = row.get("messages") or [{"content": row.get("prompt") or ""}]
    return normalised_answer(" ".join(str(m.get("content") or "") for m in messages))


def answer_contexts(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], AnswerContext]:
    """(item id, sample) -> context, for every answered row.

    ``rows`` are item rows with id, category, sample, output, missing and the prompt (or
    messages). Samples of one item never count against each other: they answer one prompt.
    Peers are the same-sample answers of the items in the same category (the item's own included).
    """
    answered = [r for r in rows if not r.get("missing") and isinstance(r.get("output"), str)]
    prompts_by_answer: dict[str, set[str]] = {}
    answers_by_group: dict[tuple[str, int], dict[str, str]] = {}
    for row in answered:
        prompts_by_answer.setdefault(normalised_answer(row["output"]), set()).add(prompt_key(row))
        answers_by_group.setdefault((row["category"], row["sample"]), {})[row["id"]] = row["output"]
    threshold = collapse_threshold(len(set().union(*prompts_by_answer.values())))

    contexts = {}
    for row in answered:
        key = normalised_answer(row["output"])
        shared_by = len(prompts_by_answer[key]) if key else 1  # blank answers already score 0
        # One mapping per suite and sample, shared by its rows: checks leave out the item's own answer.
        peers = answers_by_group[(row["category"], row["sample"])]
        contexts[(row["id"], row["sample"])] = AnswerContext(peers, shared_by, threshold)
    return contexts

__all__ = ["answer_contexts", "prompt_key"]
