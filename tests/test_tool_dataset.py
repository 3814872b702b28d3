"""The generated tool-call conversations (scripts/make_tool_dataset.py): seeded, every result is what
its code prints, every answer states that result, operands vary so copying is the only way to score,
and nothing overlaps the shipped suites."""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from pathlib import Path

import pytest

from hessgpt.tools import CODE, END

ROOT = Path(__file__).resolve().parents[1]
# Numbers that belong to the phrasing, not to the operands.
FIXED = (r"\(1 (mile|inch|kg) = [^)]*\)|\(1 to 366\)|between 1 and|from 1 to|F\(1\) = F\(2\) = 1"
         r"|\(decimal\)")


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("make_tool_dataset", ROOT / "scripts" / "make_tool_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def records(script):
    return script.make(400, seed=7)


def test_same_seed_same_data_other_seed_other_data(script, records):
    assert script.make(400, seed=7) == records
    assert script.make(50, seed=8) != records[:50]


def test_each_conversation_runs_its_code_and_restates_the_result(script, records):
    for record in records:
        user, call, tool, answer = record["messages"]
        assert [m["role"] for m in record["messages"]] == ["user", "assistant", "tool", "assistant"]
        assert call["content"].startswith(f"{CODE}\n") and call["content"].endswith(f"\n{END}")
        code = call["content"][len(CODE) + 1:-len(END) - 1]
        assert script.run_code(code) == tool["content"] != ""
        assert answer["content"] == f"The answer is {tool['content']}."
        assert "\n" not in tool["content"]


def test_the_code_copies_the_questions_numbers(records):
    """Every number of the question reaches the code (as written, or as a list the code spells out), so
    the data teaches copying; and no operand value dominates, so memorising cannot replace it."""
    operands = Counter()
    for record in records:
        question, code = record["messages"][0]["content"], record["messages"][1]["content"]
        operands_only = re.sub(FIXED, "", question)
        numbers = re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?", operands_only)
        for number in numbers:
            assert re.search(rf"(?<![\w.]){re.escape(number)}(?![\d.])", code), (question, number, code)
        operands.update(numbers)
    assert operands.most_common(1)[0][1] < len(records) / 10


def test_question_families_cover_the_suite_and_phrasings_vary(records):
    questions = [r["messages"][0]["content"] for r in records]
    codes = "\n".join(r["messages"][1]["content"] for r in records)
    assert len(set(questions)) == len(questions)
    for needle in (" * ", " ** ", "isqrt(", "sympy.prime(", "sympy.fibonacci(", "strftime('%A')", ").days",
                   "273.15", "/ 3.6", "[::-1]", "bin(", "median(", "sorted(", "math.comb("):
        assert needle in codes, needle
    openings = Counter(" ".join(q.split()[:2]) for q in questions)
    assert len(openings) > 30


def test_generated_data_does_not_overlap_the_suites(script, records):
    kept, dropped = script.without_contamination(records, ROOT / "benchmarks" / "suites")
    assert len(kept) + dropped == len(records) and dropped <= 2
