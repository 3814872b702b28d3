"""Run-level degeneration metrics and their findings."""

from __future__ import annotations

import pytest

from graders.robustness import (
    distinct_n,
    mode_collapse,
    normalised_answer,
    repeated_ngram_ratio,
    special_token_leaks,
    suite_findings,
)


def test_repeated_ngram_ratio():
    # 7 3-grams, 3 distinct: 4 repeat an earlier one.
    assert repeated_ngram_ratio("a b c a b c a b c") == pytest.approx(4 / 7)
    assert repeated_ngram_ratio("all different words here") == 0.0
    assert repeated_ngram_ratio("too short") == 0.0


def test_distinct_n():
    texts = ["a b a", "a c"]
    assert distinct_n(texts, 1) == pytest.approx(3 / 5)
    assert distinct_n(texts, 2) == pytest.approx(3 / 3)
    assert distinct_n(["one"], 2) is None


def test_special_token_leaks():
    assert special_token_leaks("hi <|im_start|>user <|endoftext|> </s>") == [
        "<|im_start|>",
        "<|endoftext|>",
        "</s>",
    ]
    assert special_token_leaks("a < b and c > d | e") == []


def test_mode_collapse_normalises_case_and_punctuation():
    answers = {"x": "I don't know.", "y": "i DON'T know", "z": "Paris", "w": "Lyon"}
    share, groups = mode_collapse(answers)
    assert share == pytest.approx(0.5)
    assert groups == {normalised_answer("I don't know"): ["x", "y"]}
    assert mode_collapse({}) == (0.0, {})


def test_suite_findings_block():
    rows = [
        {"id": "r-001", "output": "I do not know.", "missing": False, "sample": 0},
        {"id": "r-001", "output": "Something else entirely", "missing": False, "sample": 1},
        {"id": "r-002", "output": "i do not know", "missing": False, "sample": 0},
        {"id": "r-003", "output": "go go go go go go go go <|endoftext|>", "missing": False, "sample": 0},
        {"id": "r-004", "output": "", "missing": False, "sample": 0},
        {"id": "r-005", "output": None, "missing": True, "sample": 0},
    ]
    block = suite_findings(rows)
    assert set(block) == {
        "mode_collapse",
        "distinct_1",
        "distinct_2",
        "repeated_ngram_ratio",
        "special_token_leaks",
        "findings",
    }
    # Four answered items (first sample each); r-001 and r-002 share an answer.
    assert block["mode_collapse"] == pytest.approx(0.5)
    assert block["special_token_leaks"] == 1
    # 3-grams: 2 + 2 + 7 (r-003 has 9 words incl. 'endoftext'); r-003 repeats 5 of its 7.
    assert block["repeated_ngram_ratio"] == pytest.approx(5 / 11, abs=1e-4)
    findings = "\n".join(block["findings"])
    assert "1 answer leaked a special token (most often '<|endoftext|>'): r-003" in findings
    assert "2 items answered 'i do not know': r-001, r-002" in findings
    assert "1 answer loops" in findings and "1 answer with no words: r-004" in findings


def test_suite_findings_quiet_on_healthy_answers():
    rows = [
        {"id": f"h-{i}", "output": text, "missing": False}
        for i, text in enumerate(["Paris is the capital.", "Water boils at 100 degrees.", "Hello, Ana!"])
    ]
    block = suite_findings(rows)
    assert block["findings"] == []
    assert block["mode_collapse"] == 0.0 and block["special_token_leaks"] == 0
    assert suite_findings([])["distinct_1"] is None


def test_long_id_lists_are_shortened():
    rows = [{"id": f"x-{i:02d}", "output": "same answer", "missing": False} for i in range(8)]
    finding = suite_findings(rows)["findings"][0]
    assert "x-00, x-01, x-02, x-03, x-04 and 3 more" in finding
