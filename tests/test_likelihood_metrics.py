"""Perplexity, bits per byte, token accuracy and multiple choice on hand-computed numbers."""

from __future__ import annotations

import math

import pytest

from graders.likelihood import (
    ChoiceLikelihood,
    ReferenceLikelihood,
    bits_per_byte,
    item_likelihood,
    mc_accuracy,
    mc_prediction,
    perplexity,
    summarise_likelihood,
    token_accuracy,
)


def test_perplexity_pools_tokens():
    # Mean negative logprob per token = (2 + 6) / (1 + 3) = 2.
    assert perplexity([-2.0, -6.0], [1, 3]) == pytest.approx(math.exp(2.0))
    assert perplexity([], []) is None
    assert perplexity([-1e6], [1]) is None  # overflow is reported as unknown, not inf


def test_bits_per_byte():
    # 8 nats over 4 bytes = 2 nats per byte = 2 / ln 2 bits per byte.
    assert bits_per_byte([-2.0, -6.0], [2, 2]) == pytest.approx(2 / math.log(2))
    assert bits_per_byte([-1.0], [0]) is None


def test_token_accuracy_pooled():
    assert token_accuracy([1, 3], [2, 6]) == pytest.approx(0.5)
    assert token_accuracy([1, 0], [1, 9]) == pytest.approx(0.1)


def test_mc_prediction_raw_and_length_normalised():
    choices = [
        ChoiceLikelihood(logprob=-4.0, n_tokens=2, n_bytes=4),  # -1.0 per byte
        ChoiceLikelihood(logprob=-6.0, n_tokens=4, n_bytes=12),  # -0.5 per byte
        ChoiceLikelihood(logprob=-9.0, n_tokens=5, n_bytes=10),  # -0.9 per byte
    ]
    assert mc_prediction(choices) == (0, 1)
    tie = [ChoiceLikelihood(-1.0, 1, 1), ChoiceLikelihood(-1.0, 1, 1)]
    assert mc_prediction(tie) == (0, 0)


def test_mc_accuracy():
    assert mc_accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == pytest.approx(0.75)
    assert mc_accuracy([], []) is None


def test_item_likelihood_block():
    block = item_likelihood(
        ReferenceLikelihood(logprob=-4.2, n_tokens=6, n_bytes=30, is_greedy=False, n_correct_tokens=3),
        [ChoiceLikelihood(-4.0, 2, 4), ChoiceLikelihood(-6.0, 4, 12)],
        answer=1,
    )
    assert (
        block["reference_logprob"] == -4.2
        and block["reference_tokens"] == 6
        and block["reference_bytes"] == 30
    )
    assert block["reference_greedy"] is False and block["reference_correct_tokens"] == 3
    assert (block["mc_choice"], block["mc_correct"]) == (0, False)
    assert (block["mc_choice_norm"], block["mc_correct_norm"]) == (1, True)
    assert item_likelihood() is None
    with pytest.raises(ValueError):
        item_likelihood(choices=[ChoiceLikelihood(-1, 1, 1)], answer=3)


def test_summary_over_items_and_categories():
    rows = [
        {
            "id": "a",
            "category": "factual",
            "likelihood": {
                "reference_logprob": -2.0,
                "reference_tokens": 1,
                "reference_bytes": 2,
                "reference_correct_tokens": 1,
            },
        },
        # A second sample of the same item must not count twice.
        {
            "id": "a",
            "category": "factual",
            "likelihood": {
                "reference_logprob": -2.0,
                "reference_tokens": 1,
                "reference_bytes": 2,
                "reference_correct_tokens": 1,
            },
        },
        {
            "id": "b",
            "category": "factual",
            "likelihood": {
                "reference_logprob": -6.0,
                "reference_tokens": 3,
                "reference_bytes": 2,
                "reference_correct_tokens": 0,
                "mc_correct": True,
                "mc_correct_norm": False,
            },
        },
        {"id": "c", "category": "creativity", "likelihood": {"mc_correct": False, "mc_choice": 1}},
        {"id": "d", "category": "creativity", "likelihood": None},
    ]
    summary = summarise_likelihood(rows)
    assert summary["perplexity"] == pytest.approx(math.exp(2.0))
    assert summary["bits_per_byte"] == pytest.approx(8 / math.log(2) / 4)
    assert summary["token_accuracy"] == pytest.approx(1 / 4)
    assert summary["mc_accuracy"] == pytest.approx(0.5)
    assert summary["mc_accuracy_norm"] == pytest.approx(0.0)
    assert (summary["n_references"], summary["n_mc"]) == (2, 2)
    assert summary["per_category"]["factual"]["perplexity"] == pytest.approx(math.exp(2.0))
    assert summary["per_category"]["creativity"]["perplexity"] is None
    assert summary["per_category"]["creativity"]["mc_accuracy"] == 0.0
    assert summarise_likelihood([{"id": "x", "category": "f", "likelihood": None}]) is None
