"""Checks graded by computation: the final numeric answer, the final answer's words, and hidden unit
tests run in the sandbox.

The final answer is what the model says outside its tool calls (``hessgpt.tools.final_answer``): a
result block printed by the sandbox is not the model's answer, so copying a number from it counts only
when the model states it.
"""

from __future__ import annotations

import re
import secrets
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from graders.checks import CheckParamError, CheckResult, Param, check, contains_any
from graders.text import clip
from hessgpt.errors import HessError
from hessgpt.tokenizer import clean_text
from hessgpt.tools import extract_code, final_answer

if TYPE_CHECKING:
    from benchmarks.suite import Item

# A number as people write it: sign, digits with optional thousands commas, decimals, exponent.
_NUMBER_RE = re.compile(r"(?<![\w.])[-\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?!\w|\.\d)")
UNIT_TEST_TIMEOUT_S = 10.0
UNIT_TEST_MEMORY_MB = 200
MAX_TESTS = 50


def parse_number(text: str) -> Fraction | None:
    """The exact value of a number written as in ``_NUMBER_RE`` (None if it is not one)."""
    cleaned = text.strip().replace("\u2212", "-").replace(",", "")
    try:
        return Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
        return None


def numbers_in(text: str) -> list[tuple[str, Fraction]]:
    out = []
    for match in _NUMBER_RE.finditer(text):
        value = parse_number(match.group(0))
        if value is not None:
            out.append((match.group(0), value))
    return out


def _valid_value(params: dict[str, Any]) -> None:
    if parse_number(str(params["value"])) is None:
        raise CheckParamError("value", f"{params['value']!r} is not a number (write it as a string: \"3.5\")")


def _close(found: Fraction, expected: Fraction, rel_tol: float, abs_tol: float) -> bool:
    return abs(found - expected) <= max(Fraction(rel_tol) * abs(expected), Fraction(abs_tol))


@check(
    "numeric_answer",
    Param("value", "string", required=True),
    Param("rel_tol", "number", minimum=0),
    Param("abs_tol", "number", default=0, minimum=0),
    extra=_valid_value,
    summary="1 if the last number of the final answer equals value (within tolerance)",
)
def numeric_answer(output: str, item: Item, value: str, rel_tol: float | None = None,
                   abs_tol: float = 0) -> CheckResult:
    expected = parse_number(value)
    assert expected is not None  # validated with the suite
    if rel_tol is None:  # an integer is exact unless the item says otherwise
        rel_tol = 0.0 if expected.denominator == 1 and "." not in value else 1e-6
    answer = final_answer(clip(output))
    found = numbers_in(answer)
    if not found:
        return CheckResult(0.0, f"no number in the final answer (expected {value})")
    text, number = found[-1]
    if _close(number, expected, rel_tol, abs_tol):
        return CheckResult(1.0, f"final number {text} = {value}")
    return CheckResult(0.0, f"final number {text}, expected {value}")


@check("final_answer_contains", Param("values", kind="strings", required=True, words_needed=True),
       summary="1 if any value appears in the final answer (tool blocks left out)")
def final_answer_contains(output: str, item: Item, values: list[str]) -> CheckResult:
    answer = final_answer(clip(output))
    if not answer:
        return CheckResult(0.0, "no final answer outside the tool calls")
    return contains_any(answer, item, values)


# -- hidden unit tests ----------------------------------------------------------------------------


def _valid_tests(params: dict[str, Any]) -> None:
    lines = unit_test_lines(params["tests"])
    if not lines:
        raise CheckParamError("tests", "needs at least one test line (one assert per line)")
    if len(lines) > MAX_TESTS:
        raise CheckParamError("tests", f"at most {MAX_TESTS} test lines, got {len(lines)}")
    for i, line in enumerate(lines):
        try:
            compile(line, f"tests[{i}]", "exec")
        except SyntaxError as exc:
            raise CheckParamError("tests", f"line {i + 1} is not valid Python ({exc.msg}): {line}") from None


def unit_test_lines(tests: str) -> list[str]:
    return [line.strip() for line in tests.splitlines() if line.strip() and not line.strip().startswith("#")]


def unit_test_program(code: str, tests: list[str], nonce: str) -> str:
    """The candidate's code followed by each test in its own try block; the tally is printed on a
    line tagged with ``nonce`` (a secret per run, so printed text cannot fake a pass)."""
    body = [code, "", "__hess_fail = []"]
    for i, line in enumerate(tests):
        body += ["try:", f"    {line}", "except BaseException as __hess_e:",
                 f"    __hess_fail.append(({i}, type(__hess_e).__name__))"]
    body.append(f"print({nonce!r}, len(__hess_fail), __hess_fail[:1])")
    return "\n".join(body) + "\n"


_TALLY_RE = re.compile(r"^(?P<nonce>[0-9a-f]{32}) (?P<failed>\d+) \[(?:\((?P<first>\d+), '(?P<exc>\w+)'\))?\]$", re.M)


def run_unit_tests(code: str, tests: list[str], runner: Any = None,
                   timeout_s: float = UNIT_TEST_TIMEOUT_S) -> CheckResult:
    """1 when every test passes, else 0; the explanation names the first failure or the crash."""
    if runner is None:
        from hessgpt.sandbox import run as runner
    nonce = secrets.token_hex(16)
    program = clean_text(unit_test_program(code, tests, nonce))  # lone surrogates cannot be sent as UTF-8
    try:
        outcome = runner(program, timeout_s=timeout_s, memory_mb=UNIT_TEST_MEMORY_MB)
    except HessError as exc:  # refused before it ran (e.g. over the sandbox's code size limit)
        return CheckResult(0.0, f"0/{len(tests)} tests ran: the sandbox refused the code ({_short(str(exc), 160)})")
    tally = next((m for m in _TALLY_RE.finditer(outcome.stdout or "") if m.group("nonce") == nonce), None)
    if tally is None:
        detail = getattr(outcome, "detail", "") or _last_line(outcome.stderr) or outcome.exit_reason
        return CheckResult(0.0, f"0/{len(tests)} tests ran: {outcome.exit_reason} ({_short(detail, 160)})")
    failed = int(tally.group("failed"))
    if failed == 0:
        return CheckResult(1.0, f"{len(tests)}/{len(tests)} tests passed")
    first = tests[int(tally.group("first"))]
    return CheckResult(0.0, f"{len(tests) - failed}/{len(tests)} tests passed; first failure: "
                            f"{_short(first, 120)} ({tally.group('exc')})")


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


@check("unit_tests", Param("tests", "string", required=True), Param("timeout_s", "number", default=UNIT_TEST_TIMEOUT_S,
       minimum=0, exclusive_minimum=True, maximum=60), extra=_valid_tests,
       summary="1 if the answer's code passes every hidden test (run in the sandbox)")
def unit_tests(output: str, item: Item, tests: str, timeout_s: float = UNIT_TEST_TIMEOUT_S) -> CheckResult:
    return run_unit_tests(extract_code(clip(output)), unit_test_lines(tests), timeout_s=timeout_s)
