"""Likelihood metrics from the scores the runner computed: perplexity, bits per byte,
token accuracy and multiple-choice accuracy.

Pure functions over plain numbers; the model is never called here. Pooled metrics weight
every token (or byte) equally, so a long reference counts more than a short one, which is
what perplexity over a corpus means.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReferenceLikelihood:
    """Log-likelihood of a reference answer given the prompt.

    logprob: sum of natural-log probabilities of its tokens; is_greedy: every token was the
    model's top choice; n_correct_tokens: how many tokens were the top choice (None if unknown).
    """

    logprob: float
    n_tokens: int
    n_bytes: int
    is_greedy: bool = False
    n_correct_tokens: int | None = None


@dataclass(frozen=True)
class ChoiceLikelihood:
    """Log-likelihood of one multiple-choice option given the prompt."""

    logprob: float
    n_tokens: int
    n_bytes: int


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def perplexity(logprobs: Sequence[float], n_tokens: Sequence[int]) -> float | None:
    """exp(-sum of logprobs / total tokens), pooled over all references; None without tokens."""
    total = sum(n_tokens)
    if total <= 0:
        return None
    try:
        return _finite(math.exp(-sum(logprobs) / total))
    except OverflowError:
        return None


def bits_per_byte(logprobs: Sequence[float], n_bytes: Sequence[int]) -> float | None:
    """-sum of logprobs / ln 2 / total UTF-8 bytes: comparable across tokenizers."""
    total = sum(n_bytes)
    if total <= 0:
        return None
    return _finite(-sum(logprobs) / math.log(2) / total)


def token_accuracy(n_correct: Sequence[int], n_tokens: Sequence[int]) -> float | None:
    """Share of reference tokens that the model ranked first, pooled over references."""
    total = sum(n_tokens)
    return sum(n_correct) / total if total > 0 else None


def mc_prediction(choices: Sequence[ChoiceLikelihood]) -> tuple[int, int]:
    """(choice with the highest logprob, choice with the highest logprob per byte).

    The per-byte variant (acc_norm) removes the bias towards short options, whose fewer
    tokens cost less probability. Ties go to the first choice.
    """
    if not choices:
        raise ValueError("multiple choice needs at least one choice")
    raw = max(range(len(choices)), key=lambda i: (choices[i].logprob, -i))
    norm = max(range(len(choices)), key=lambda i: (choices[i].logprob / max(1, choices[i].n_bytes), -i))
    return raw, norm


def mc_accuracy(predictions: Sequence[int], answers: Sequence[int]) -> float | None:
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions but {len(answers)} answers")
    if not answers:
        return None
    return sum(p == a for p, a in zip(predictions, answers, strict=True)) / len(answers)


def item_likelihood(
    reference: ReferenceLikelihood | None = None,
    choices: Sequence[ChoiceLikelihood] | None = None,
    answer: int | None = None,
) -> dict[str, Any] | None:
    """The per-item ``likelihood`` block of results.json (None when there is nothing)."""
    block: dict[str, Any] = {}
    if reference is not None:
        block.update(
            reference_logprob=reference.logprob,
            reference_tokens=reference.n_tokens,
            reference_bytes=reference.n_bytes,
            reference_greedy=reference.is_greedy,
            reference_correct_tokens=reference.n_correct_tokens,
        )
    if choices:
        if answer is None or not 0 <= answer < len(choices):
            raise ValueError(f"answer {answer} is not an index into {len(choices)} choices")
        raw, norm = mc_prediction(choices)
        block.update(
            mc_choice=raw,
            mc_correct=raw == answer,
            mc_choice_norm=norm,
            mc_correct_norm=norm == answer,
            mc_logprobs=[c.logprob for c in choices],
        )
    return block or None


def _metrics(blocks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    refs = [b for b in blocks if b.get("reference_tokens")]
    with_correct = [b for b in refs if b.get("reference_correct_tokens") is not None]
    mc = [b for b in blocks if "mc_correct" in b]
    logprobs = [float(b["reference_logprob"]) for b in refs]
    return {
        "perplexity": perplexity(logprobs, [int(b["reference_tokens"]) for b in refs]),
        "bits_per_byte": bits_per_byte(logprobs, [int(b.get("reference_bytes") or 0) for b in refs]),
        "token_accuracy": token_accuracy(
            [int(b["reference_correct_tokens"]) for b in with_correct],
            [int(b["reference_tokens"]) for b in with_correct],
        ),
        "mc_accuracy": sum(bool(b["mc_correct"]) for b in mc) / len(mc) if mc else None,
        "mc_accuracy_norm": (
            sum(bool(b.get("mc_correct_norm", b["mc_correct"])) for b in mc) / len(mc) if mc else None
        ),
        "n_references": len(refs),
        "n_mc": len(mc),
    }


def summarise_likelihood(item_rows: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The top-level ``likelihood`` block of results.json from the item rows.

    Rows need ``id``, ``category`` and ``likelihood`` (a block from :func:`item_likelihood`
    or None). Likelihoods do not depend on sampling, so only the first row of each item counts.
    Returns None when no row has likelihood data (a run graded from a responses file).
    """
    blocks: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for row in item_rows:
        block = row.get("likelihood")
        if block and str(row["id"]) not in blocks:
            blocks[str(row["id"])] = (str(row["category"]), block)
    if not blocks:
        return None
    summary = _metrics([block for _, block in blocks.values()])
    per_category: dict[str, dict[str, Any]] = {}
    for category in sorted({category for category, _ in blocks.values()}):
        metrics = _metrics([block for cat, block in blocks.values() if cat == category])
        per_category[category] = metrics
    summary["per_category"] = per_category
    return summary
