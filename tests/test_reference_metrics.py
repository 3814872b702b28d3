"""BLEU, chrF and ROUGE-L agree with sacrebleu and rouge-score called directly."""

from __future__ import annotations

import random

import pytest
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF

from graders.reference import (
    _rouge_tokens,
    best_bleu,
    best_chrf,
    corpus_bleu,
    corpus_chrf,
    corpus_rouge_l,
    rouge_l,
    sentence_bleu,
    sentence_chrf,
)

HYPOTHESIS = "the cat sat on the red mat"
REFERENCES = ["the cat sat on the mat", "a dog slept under the table"]


def test_sentence_bleu_matches_sacrebleu():
    expected = BLEU(effective_order=True).sentence_score(HYPOTHESIS, REFERENCES).score
    assert sentence_bleu(HYPOTHESIS, REFERENCES) == pytest.approx(expected)
    assert sentence_bleu("the cat sat on the mat", REFERENCES) == pytest.approx(100.0)
    best = best_bleu(HYPOTHESIS, REFERENCES)
    assert best.reference_index == 0 and best.value == pytest.approx(expected)


def test_sentence_chrf_matches_sacrebleu():
    expected = CHRF().sentence_score(HYPOTHESIS, REFERENCES).score
    assert sentence_chrf(HYPOTHESIS, REFERENCES) == pytest.approx(expected)
    assert best_chrf(HYPOTHESIS, list(reversed(REFERENCES))).reference_index == 1


def test_rouge_l_matches_rouge_score_and_hand_value():
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    expected = max(scorer.score(ref, HYPOTHESIS)["rougeL"].fmeasure for ref in REFERENCES)
    best = rouge_l(HYPOTHESIS, REFERENCES)
    assert best.value == pytest.approx(expected)
    # LCS = 6 ('the cat sat on the mat'); P = 6/7, R = 6/6 -> F1 = 12/13.
    assert best.value == pytest.approx(12 / 13)
    assert best.reference_index == 0


class _OurTokens:
    def tokenize(self, text: str) -> list[str]:
        return _rouge_tokens(text)


def test_rouge_l_equals_rouge_score_bit_for_bit_on_random_texts():
    """Our LCS is rouge-score's, given the same tokens: equal floats, not approximately."""
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_OurTokens())
    rng = random.Random(3)
    vocabulary = ["le", "chat", "the", "cat", "été", "sat", "on", "mat", "a", "dog"]
    for _ in range(300):
        answer = " ".join(rng.choices(vocabulary, k=rng.randint(0, 14)))
        references = [" ".join(rng.choices(vocabulary, k=rng.randint(0, 14))) for _ in range(rng.randint(1, 3))]
        expected = [scorer.score(ref, answer)["rougeL"].fmeasure for ref in references]
        best = rouge_l(answer, references)
        assert best.value == max(expected)
        assert best.reference_index == expected.index(max(expected))


def test_rouge_l_keeps_accented_words():
    # rouge-score's own tokenizer would turn 'été' into nothing; ours folds it to 'ete'.
    assert rouge_l("un été chaud", ["Un été très chaud"]).value == pytest.approx(2 * 1 * 0.75 / 1.75)


def test_empty_hypothesis_scores_zero():
    assert sentence_bleu("", REFERENCES) == 0.0
    assert sentence_chrf("", REFERENCES) == 0.0
    assert rouge_l("", REFERENCES).value == 0.0


def test_corpus_helpers_with_uneven_reference_counts():
    hypotheses = [HYPOTHESIS, "hello world"]
    references = [REFERENCES, ["hello world"]]
    streams = [[REFERENCES[0], "hello world"], [REFERENCES[1], None]]
    assert corpus_bleu(hypotheses, references) == pytest.approx(
        BLEU().corpus_score(hypotheses, streams).score
    )
    assert corpus_chrf(hypotheses, references) == pytest.approx(
        CHRF().corpus_score(hypotheses, streams).score
    )
    assert corpus_rouge_l(hypotheses, references) == pytest.approx((12 / 13 + 1.0) / 2)
    with pytest.raises(ValueError, match="every answer needs at least one reference"):
        corpus_bleu(["x"], [[]])
    with pytest.raises(ValueError, match="1 answers but 2 reference lists"):
        corpus_chrf(["x"], [["a"], ["b"]])
