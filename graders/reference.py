"""Reference-based metrics: BLEU and chrF (sacrebleu), ROUGE-L (ours, equal to rouge-score's).

Sentence-level functions score one answer against several references; the corpus-level
helpers summarise a whole category for the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from sacrebleu.metrics import BLEU, CHRF

from graders.text import clip, words

# ROUGE-L's LCS is quadratic in pure Python: a looping answer must not stall grading.
MAX_ROUGE_TOKENS = 1000


def _rouge_tokens(text: str) -> list[str]:
    """rouge-score's default tokenizer drops every non-ASCII letter ('café' -> 'caf'); ours folds
    accents first so French references score as they should."""
    return words(text)[:MAX_ROUGE_TOKENS]


def _lcs_f1(target: Sequence[str], prediction: Sequence[str]) -> float:
    """ROUGE-L F1 as rouge-score computes it (its LCS table, one row at a time). Ours because importing
    rouge-score imports nltk and scipy.stats: 4 s of every bench run, for this one function."""
    if not target or not prediction:
        return 0.0
    previous = [0] * (len(prediction) + 1)
    for token in target:
        row = [0]
        for j, other in enumerate(prediction):
            row.append(previous[j] + 1 if token == other else max(previous[j + 1], row[j]))
        previous = row
    lcs = previous[-1]
    precision, recall = lcs / len(prediction), lcs / len(target)
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


@dataclass(frozen=True)
class BestMatch:
    """The best score over the references and which reference (0-based) gave it."""

    value: float
    reference_index: int


@lru_cache(maxsize=1)
def _bleu() -> BLEU:
    # effective_order: a short answer without 4-gram matches still gets a non-zero BLEU.
    return BLEU(effective_order=True)


@lru_cache(maxsize=1)
def _chrf() -> CHRF:
    return CHRF()


def _best(scores: Sequence[float]) -> BestMatch:
    index = max(range(len(scores)), key=lambda i: scores[i])
    return BestMatch(float(scores[index]), index)


def sentence_bleu(hypothesis: str, references: Sequence[str]) -> float:
    """Sentence BLEU (0-100) of one answer against all references at once."""
    if not references:
        raise ValueError("sentence_bleu needs at least one reference")
    return float(_bleu().sentence_score(clip(hypothesis), list(references)).score)


def sentence_chrf(hypothesis: str, references: Sequence[str]) -> float:
    """Sentence chrF (0-100) of one answer against all references at once."""
    if not references:
        raise ValueError("sentence_chrf needs at least one reference")
    return float(_chrf().sentence_score(clip(hypothesis), list(references)).score)


def best_bleu(hypothesis: str, references: Sequence[str]) -> BestMatch:
    """Multi-reference sentence BLEU, plus the single reference that matches best."""
    value = sentence_bleu(hypothesis, references)
    closest = _best([sentence_bleu(hypothesis, [ref]) for ref in references]).reference_index
    return BestMatch(value, closest)


def best_chrf(hypothesis: str, references: Sequence[str]) -> BestMatch:
    value = sentence_chrf(hypothesis, references)
    closest = _best([sentence_chrf(hypothesis, [ref]) for ref in references]).reference_index
    return BestMatch(value, closest)


def rouge_l(hypothesis: str, references: Sequence[str]) -> BestMatch:
    """Best ROUGE-L F1 (0-1) over the references."""
    if not references:
        raise ValueError("rouge_l needs at least one reference")
    answer = _rouge_tokens(clip(hypothesis))
    return _best([_lcs_f1(_rouge_tokens(ref), answer) for ref in references])


def _reference_streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacrebleu wants one stream per reference slot; items with fewer references get None."""
    width = max((len(refs) for refs in references), default=0)
    return [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU (0-100) over answers that each have one or more references."""
    _check_corpus(hypotheses, references)
    return float(BLEU().corpus_score([clip(h) for h in hypotheses], _reference_streams(references)).score)


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus chrF (0-100)."""
    _check_corpus(hypotheses, references)
    return float(CHRF().corpus_score([clip(h) for h in hypotheses], _reference_streams(references)).score)


def corpus_rouge_l(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Mean over answers of the best ROUGE-L F1 (0-1); ROUGE has no pooled corpus form."""
    _check_corpus(hypotheses, references)
    return sum(rouge_l(h, refs).value for h, refs in zip(hypotheses, references, strict=True)) / len(
        hypotheses
    )


def _check_corpus(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} answers but {len(references)} reference lists")
    if not hypotheses:
        raise ValueError("no answers to score")
    if any(not refs for refs in references):
        raise ValueError("every answer needs at least one reference")
