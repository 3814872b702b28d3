"""Rubric checks: the vocabulary suite items use to grade an answer.

Each check is a pure function ``(output, item, **params) -> CheckResult`` registered in
:data:`CHECKS` with the parameters it accepts, so suite files are validated against the
same declarations the graders run with. Scores are in [0, 1]; explanations are short and
name what was found or missing, because the report shows them next to the answer.

Two rules hold for every check:
- an answer with no visible words (empty, whitespace, punctuation or special tokens only)
  scores 0, so negative checks (not_contains, no_repetition...) never reward silence;
- no check raises on any string, and none reads past the first ``text.MAX_CHARS`` characters.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import lru_cache
from typing import TYPE_CHECKING, Any

# The `regex` engine (a dependency of tiktoken) speaks Python's `re` syntax and, unlike `re`,
# can stop a search that runs too long: suite patterns are untrusted.
import regex as regex_engine

from graders import assertion, hygiene, reference
from graders.calibration import calibrate
from graders.relevance import relevance
from graders.text import (
    BULLET_LINE_RE,
    LANGUAGE_NAMES,
    NUMBERED_LINE_RE,
    SPECIAL_TOKEN_RE,
    WordIndex,
    answer_words,
    clip,
    content_words,
    crude_stem,
    has_word,
    inline_numbers,
    is_blank,
    list_items,
    ngrams,
    quoted,
    quoted_list,
    repeated_ngram_stats,
    repetition_words,
    sentences,
    stopword_counts,
    visible_text,
    words,
)

if TYPE_CHECKING:
    from benchmarks.suite import Item

MAX_PATTERN_CHARS = 500
REGEX_TIMEOUT_SECONDS = 1.0
_REGEX_FLAGS = {
    "i": regex_engine.IGNORECASE,
    "m": regex_engine.MULTILINE,
    "s": regex_engine.DOTALL,
    "x": regex_engine.VERBOSE,
}
# A quantified group that itself contains a quantifier, e.g. (a+)+ : exponential backtracking.
_NESTED_QUANTIFIER_RE = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)(?:[+*]|\{\d*,)")


@dataclass(frozen=True)
class CheckResult:
    score: float
    explanation: str


# A content check measures what the task asks for; a guard check measures what any decent
# answer has (not empty, no loop, not a copy of the prompt, a sensible length). Guards can
# only take marks away: an off-topic answer passes every guard and must still score 0.
CONTENT, GUARD = "content", "guard"
CHECK_ROLES = (CONTENT, GUARD)


@dataclass(frozen=True)
class CheckSpec:
    """One check of an item, as written in a suite file (params validated, defaults filled).

    ``role`` is ``content`` or ``guard``; None means the check type's default role.
    """

    type: str
    weight: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)
    role: str | None = None


@dataclass(frozen=True)
class AnswerContext:
    """What grading one answer needs to know about the other answers of the run.

    ``peers``: the answers in the same suite (id -> answer, this item's own included), for checks
    that compare answers with each other; ``shared_by``: how many distinct prompts received this
    very answer (normalised), and ``collapse_threshold`` how many may before it counts as
    mode collapse.
    """

    peers: Mapping[str, str] = field(default_factory=dict)
    shared_by: int = 1
    collapse_threshold: int = 0


@dataclass(frozen=True)
class ItemGrade:
    score: float
    checks: list[dict[str, Any]]
    adjustments: list[dict[str, Any]] = field(default_factory=list)
    content: float | None = None  # weighted mean of the content checks (None: the item has none)
    raw: float | None = None  # the score before calibration to the human scale


class CheckParamError(ValueError):
    """A check parameter is wrong; ``field`` names it (e.g. 'n' or 'values[2]')."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


# ---------------------------------------------------------------- parameter declarations


@dataclass(frozen=True)
class Param:
    """A declared check parameter.

    kind: 'int', 'number', 'string', 'strings' (non-empty list of strings),
    'ideas' (non-empty list of non-empty lists of strings), 'choice' (one of ``choices``).
    """

    name: str
    kind: str
    required: bool = False
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()
    words_needed: bool = False  # strings must contain a letter or digit (whole-word matching)
    allow_empty: bool = False


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()} (quote it in YAML)"
    return f"{type(value).__name__} {value!r}"[:80]


def _check_string(name: str, value: Any, words_needed: bool, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise CheckParamError(name, f"expected a string, got {_type_name(value)}")
    if not value.strip() and not allow_empty:
        raise CheckParamError(name, "must not be empty")
    if words_needed and not has_word(value):
        raise CheckParamError(name, f"{value!r} has no letter or digit to match as a word; use a regex check")
    return value


def _check_param(param: Param, value: Any) -> Any:
    name = param.name
    if param.kind in ("int", "number"):
        is_int = isinstance(value, int) and not isinstance(value, bool)
        is_number = is_int or (isinstance(value, float) and value == value and abs(value) != float("inf"))
        if (param.kind == "int" and not is_int) or not is_number:
            wanted = "an integer" if param.kind == "int" else "a number"
            raise CheckParamError(name, f"expected {wanted}, got {_type_name(value)}")
        low = param.minimum
        if low is not None and (value < low or (param.exclusive_minimum and value == low)):
            raise CheckParamError(
                name, f"must be {'>' if param.exclusive_minimum else '>='} {low}, got {value}"
            )
        if param.maximum is not None and value > param.maximum:
            raise CheckParamError(name, f"must be <= {param.maximum}, got {value}")
        return value
    if param.kind == "string":
        return _check_string(name, value, param.words_needed, param.allow_empty)
    if param.kind == "choice":
        if value not in param.choices:
            raise CheckParamError(
                name, f"expected one of {', '.join(param.choices)}, got {_type_name(value)}"
            )
        return value
    if param.kind == "strings":
        if not isinstance(value, list) or not value:
            raise CheckParamError(name, f"expected a non-empty list of strings, got {_type_name(value)}")
        return [_check_string(f"{name}[{i}]", v, param.words_needed) for i, v in enumerate(value)]
    if param.kind == "ideas":
        if not isinstance(value, list) or not value:
            raise CheckParamError(name, f"expected a non-empty list of alias lists, got {_type_name(value)}")
        ideas = []
        for i, aliases in enumerate(value):
            if isinstance(aliases, str):  # a single alias may be written without brackets
                aliases = [aliases]
            if not isinstance(aliases, list) or not aliases:
                raise CheckParamError(
                    f"{name}[{i}]", f"expected a non-empty list of aliases, got {_type_name(aliases)}"
                )
            ideas.append([_check_string(f"{name}[{i}][{j}]", a, True) for j, a in enumerate(aliases)])
        return ideas
    raise AssertionError(f"unknown parameter kind {param.kind}")


@dataclass(frozen=True)
class CheckDef:
    name: str
    func: Callable[..., CheckResult]
    params: tuple[Param, ...] = ()
    needs: tuple[str, ...] = ()  # item fields the check reads: 'references', 'input'
    validate_extra: Callable[[dict[str, Any]], None] | None = None
    summary: str = ""
    role: str = CONTENT  # default role; a suite may override it per check type or per check
    peers: bool = False  # the function also receives ``peers`` (other answers of the suite)

    def validate(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Check raw parameters from a suite file; return them with defaults filled in."""
        known = {p.name: p for p in self.params}
        for key in raw:
            if key not in known:
                hint = get_close_matches(str(key), list(known), n=1)
                accepted = ", ".join(known) or "no parameters"
                extra = f"did you mean '{hint[0]}'? " if hint else ""
                raise CheckParamError(
                    str(key), f"unknown parameter for {self.name}; {extra}(accepts: {accepted})"
                )
        params: dict[str, Any] = {}
        for param in self.params:
            if raw.get(param.name) is not None:  # an explicit null means "not given"
                params[param.name] = _check_param(param, raw[param.name])
            elif param.required:
                raise CheckParamError(param.name, f"required by {self.name}")
            else:
                params[param.name] = param.default
        if self.validate_extra is not None:
            self.validate_extra(params)
        return params

    def run(
        self, output: str, item: Item, params: Mapping[str, Any] | None = None,
        context: AnswerContext | None = None,
    ) -> CheckResult:
        """Validate ``params`` and grade ``output``; applies the no-visible-text rule."""
        return _guarded(self, output, item, self.validate(params or {}), context)


CHECKS: dict[str, CheckDef] = {}


def check(
    name: str,
    *params: Param,
    needs: tuple[str, ...] = (),
    extra: Callable[[dict[str, Any]], None] | None = None,
    summary: str = "",
    role: str = CONTENT,
    peers: bool = False,
) -> Callable[[Callable[..., CheckResult]], Callable[..., CheckResult]]:
    """Register a check function under ``name`` with the parameters it accepts."""

    def register(func: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
        CHECKS[name] = CheckDef(name, func, tuple(params), needs, extra, summary, role, peers)
        return func

    return register


def _range_params(min_kind: str = "int") -> tuple[Param, Param]:
    return (
        Param("min", min_kind, minimum=0),
        Param("max", min_kind, minimum=0, exclusive_minimum=True),
    )


def _min_below_max(params: dict[str, Any]) -> None:
    low, high = params.get("min"), params.get("max")
    if low is None and high is None:
        raise CheckParamError("min", "give min, max or both")
    if low is not None and high is not None and low > high:
        raise CheckParamError("min", f"min {low} is greater than max {high}")


def _regex_compiles(params: dict[str, Any]) -> None:
    pattern = params["pattern"]
    if len(pattern) > MAX_PATTERN_CHARS:
        raise CheckParamError("pattern", f"longer than {MAX_PATTERN_CHARS} characters")
    if _NESTED_QUANTIFIER_RE.search(pattern):
        raise CheckParamError(
            "pattern", "nested quantifier like (a+)+ can take exponential time; simplify it"
        )
    bad_flags = set(params["flags"]) - set(_REGEX_FLAGS)
    if bad_flags:
        raise CheckParamError(
            "flags", f"unknown flag(s) {''.join(sorted(bad_flags))!r}; use letters from 'imsx'"
        )
    try:
        _compile(pattern, params["flags"])
    except (regex_engine.error, re.error) as exc:
        raise CheckParamError("pattern", f"invalid regular expression: {exc}") from None


@lru_cache(maxsize=1024)
def _compile(pattern: str, flags: str) -> Any:
    value = regex_engine.VERSION0  # exactly Python's `re` semantics
    for letter in flags:
        value |= _REGEX_FLAGS[letter]
    return regex_engine.compile(pattern, value)


# ---------------------------------------------------------------- grading


def _guarded(
    definition: CheckDef, output: str, item: Item, params: Mapping[str, Any],
    context: AnswerContext | None = None,
) -> CheckResult:
    if is_blank(output):
        return CheckResult(0.0, "no visible text in the answer")
    if definition.peers:
        params = {**params, "peers": context.peers if context is not None else {}}
    result = definition.func(output, item, **params)
    score = min(1.0, max(0.0, float(result.score)))
    return CheckResult(round(score, 4), result.explanation)


# Checks that grade by computing (the answer's value, or its code run against hidden tests).
COMPUTED_CHECKS = frozenset({"numeric_answer", "final_answer_contains", "unit_tests"})
DEGENERACY = "degeneracy"  # kept for results written before hygiene defects replaced it
MODE_COLLAPSE = "mode_collapse"
WRONG_CLAIM = "wrong_claim"
CALIBRATION = "calibration"
ATTEMPT = "relevant_attempt"
# The same answer to more than this share of the run's distinct prompts (and at least
# COLLAPSE_MIN_PROMPTS of them) is not an answer to any one of them.
COLLAPSE_SHARE = 0.05
COLLAPSE_MIN_PROMPTS = 8
# What is left of a factual answer that asserts a wrong answer, or the right one and a wrong one.
WRONG_CLAIM_FACTOR = 0.05
# What a guard-only item keeps of a clean reply that misses every topic check.
TOPIC_FLOOR = 0.25
# The content score kept by an answer that misses the task but speaks to it (see graders.relevance):
# careful readers give a wrong but relevant attempt a little credit, and unrelated text none.
ATTEMPT_CREDIT = 0.1
HEDGE_FACTOR = 0.3


def collapse_threshold(n_prompts: int) -> int:
    """How many distinct prompts may share one answer before it counts as mode collapse."""
    return max(COLLAPSE_MIN_PROMPTS, math.ceil(COLLAPSE_SHARE * n_prompts))


def collapse_factor(shared_by: int, threshold: int) -> float:
    """1 while at most ``threshold`` prompts share the answer, then threshold / shared_by."""
    if threshold <= 0 or shared_by <= threshold:
        return 1.0
    return threshold / shared_by


def check_role(spec: CheckSpec) -> str:
    return spec.role or CHECKS[spec.type].role


def grade_item(
    item: Item, output: str, context: AnswerContext | None = None,
    calibration: Mapping[str, list[list[float]]] | None = None,
) -> ItemGrade:
    """Run every check of ``item`` on ``output`` and combine them into the item score.

    With C the weighted mean of the content checks and L the weight share that the guard
    checks lose (sum of w x (1 - score) over the guards, divided by all weights), the score
    is ``C x (1 - L)``: an answer that meets the task loses what its guards lose, and an
    answer that misses the task earns nothing from passing them. C is at least
    ``ATTEMPT_CREDIT x relevance`` (:mod:`graders.relevance`): a wrong answer that speaks to the
    prompt ranks above unrelated text, far below a partial one. An item with only guard
    checks (robustness) scores their weighted mean, times ``TOPIC_FLOOR + (1 - TOPIC_FLOOR) x T``
    where T is the weighted mean of its topic checks (content checks the suite made guards, and
    not_contains: the reply speaks to the prompt and does not obey an injection), so a clean reply
    that ignores the prompt keeps TOPIC_FLOOR. Adjustments then multiply the score:
    the defects any answer can have (:mod:`graders.hygiene`: cut mid-sentence, loop, echo,
    digit run, junk, word salad), a factual answer that asserts a wrong answer
    (:func:`claim_adjustment`), and mode collapse, the same answer given to many different
    prompts (:func:`collapse_factor`). Last, the score is read on the human scale through the
    category's calibration map (:mod:`graders.calibration`; ``calibration={}`` leaves it raw).
    """
    if not isinstance(output, str):  # a malformed responses file must not crash grading
        output = ""
    rows = []
    total = content_weight = content_sum = guard_loss = 0.0
    topic_weight = topic_sum = 0.0
    for spec in item.checks:
        role = check_role(spec)
        result = _guarded(CHECKS[spec.type], output, item, spec.params, context)
        rows.append(
            {
                "type": spec.type,
                "role": role,
                "weight": spec.weight,
                "score": result.score,
                "explanation": result.explanation,
            }
        )
        total += spec.weight
        if role == CONTENT:
            content_weight += spec.weight
            content_sum += spec.weight * result.score
        elif CHECKS[spec.type].role == CONTENT or spec.type == "not_contains":
            # A check of what this item's reply must (not) say, made a guard by its suite
            # (robustness: the reply is on topic, the injected instruction is not obeyed).
            topic_weight += spec.weight
            topic_sum += spec.weight * result.score
        else:
            guard_loss += spec.weight * (1.0 - result.score)
    content = None
    adjustments = []
    # An answer graded by computation is judged by its value or its code's tests: code and long exact
    # numbers are what those tasks ask for, not defects of prose.
    computed = any(spec.type in COMPUTED_CHECKS for spec in item.checks)
    if total <= 0:
        score = 0.0
    elif content_weight > 0:
        content = content_sum / content_weight
        credited = content
        if content < ATTEMPT_CREDIT and not computed:
            credited, attempt = _attempt_credit(item, output, content)
            if attempt is not None:
                adjustments.append(attempt)
        score = credited * (1.0 - (guard_loss + topic_weight - topic_sum) / total)
    else:
        hygiene_weight = total - topic_weight
        score = 1.0 - guard_loss / hygiene_weight if hygiene_weight > 0 else 1.0
        if topic_weight > 0:
            score *= TOPIC_FLOOR + (1.0 - TOPIC_FLOOR) * topic_sum / topic_weight

    if not is_blank(output) and not computed:
        for defect in hygiene.defects(output, _prompt_text(item), item.input is not None):
            adjustments.append({"type": defect.type, "factor": defect.factor, "explanation": defect.explanation})
            score *= defect.factor
        wrong_claim = claim_adjustment(item, output)
        if wrong_claim is not None:
            adjustments.append(wrong_claim)
            score *= wrong_claim["factor"]
    if context is not None and not is_blank(output):
        factor = collapse_factor(context.shared_by, context.collapse_threshold)
        if factor < 1.0:
            adjustments.append(
                {
                    "type": MODE_COLLAPSE,
                    "factor": round(factor, 4),
                    "explanation": f"the same answer was given to {context.shared_by} different prompts "
                    f"(more than {context.collapse_threshold} is mode collapse): "
                    f"item score multiplied by {factor:.2f}",
                }
            )
            score *= factor
    raw = round(score, 4)
    score = calibrate(item.category, raw, calibration) if raw > 0 else 0.0
    if score != raw:
        adjustments.append({"type": CALIBRATION, "factor": round(score / raw, 4),
                            "explanation": f"raw score {raw:.2f} reads as {score:.2f} on the human scale "
                                           f"(calibration map of {item.category})"})
    return ItemGrade(score, rows, adjustments, None if content is None else round(content, 4), raw)


def _attempt_credit(item: Item, output: str, content: float) -> tuple[float, dict[str, Any] | None]:
    """The content score raised to ``ATTEMPT_CREDIT x relevance``, and the adjustment saying so."""
    if is_blank(output):
        return content, None
    found = relevance(output, [_prompt_text(item), *item.references])
    credit = round(ATTEMPT_CREDIT * found.score, 4)
    if credit <= content:
        return content, None
    return credit, {
        "type": ATTEMPT,
        "factor": None,
        "explanation": f"misses the task but speaks to it (shares {quoted_list(list(found.shared))} with the "
                       f"prompt or references): content {content:.2f} raised to {credit:.2f}",
    }


def _right_and_wrong(item: Item) -> tuple[list[str], list[str]]:
    """The right answers of a factual item (its word-matching content checks, the right choice)
    and the wrong ones it knows (its not_contains values, the other choices)."""
    right: list[str] = []
    wrong: list[str] = []
    for spec in item.checks:
        if spec.type == "contains_any" and check_role(spec) == CONTENT:
            right.extend(spec.params["values"])
        elif spec.type == "not_contains":
            wrong.extend(spec.params["values"])
    if item.choices and item.answer is not None:
        correct = item.choices[item.answer]
        right.append(correct)
        for index, choice in enumerate(item.choices):
            if index != item.answer:
                core = assertion.distinctive(choice, correct)
                if core:
                    wrong.append(core)
    right_words = {" ".join(words(r)) for r in right}
    wrong = [w for w in dict.fromkeys(wrong) if " ".join(words(w)) not in right_words]
    return right, wrong


def claim_adjustment(item: Item, output: str) -> dict[str, Any] | None:
    """For factual items: the answer asserts a wrong answer it knows (a distractor, a common
    confusion) instead of, or besides, the right one; or names the right one only to deny it."""
    if item.category != "factual":
        return None
    right, wrong = _right_and_wrong(item)
    if not right:
        return None
    found = assertion.claim(output, right, wrong)
    if found.answer == "wrong":
        factor, why = WRONG_CLAIM_FACTOR, f"answers {quoted_list(found.wrong[:1])}, a wrong answer"
    elif found.hedge:
        factor, why = HEDGE_FACTOR, f"offers the right answer and a wrong one ({quoted_list(found.wrong)}) as alternatives"
    elif found.answer is None and found.negated_right:
        factor, why = WRONG_CLAIM_FACTOR, "mentions the right answer only to deny it"
    else:
        return None
    return {"type": WRONG_CLAIM, "factor": factor, "explanation": f"{why}: item score multiplied by {factor:g}"}


def range_score(value: float, low: float | None, high: float | None) -> float:
    """1 inside [low, high]; outside, 1 minus the relative distance to the nearest bound."""
    if low is not None and value < low:
        return max(0.0, value / low) if low > 0 else 1.0
    if high is not None and value > high:
        return max(0.0, 1.0 - (value - high) / high)
    return 1.0


def _range_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"expected {low}-{high}" if low != high else f"expected {low}"
    return f"expected at least {low}" if low is not None else f"expected at most {high}"


def _prompt_text(item: Item) -> str:
    """Everything the model was shown: all turns of the conversation, input included."""
    return "\n".join(message["content"] for message in item.conversation())


# ---------------------------------------------------------------- word matching


_WORDS = dict(kind="strings", required=True, words_needed=True)


@check("contains_any", Param("values", **_WORDS), summary="1 if any value appears")
def contains_any(output: str, item: Item, values: Sequence[str]) -> CheckResult:
    index = WordIndex(output)
    for value in values:
        if index.contains(value):
            return CheckResult(1.0, f"found {quoted(value)}")
    return CheckResult(0.0, f"none of {quoted_list(values)} found")


@check("contains_all", Param("values", **_WORDS), summary="fraction of values that appear")
def contains_all(output: str, item: Item, values: Sequence[str]) -> CheckResult:
    index = WordIndex(output)
    missing = [v for v in values if not index.contains(v)]
    found = len(values) - len(missing)
    explanation = f"{found}/{len(values)} found"
    if missing:
        explanation += f"; missing {quoted_list(missing)}"
    return CheckResult(found / len(values), explanation)


@check("key_ideas", Param("ideas", "ideas", required=True), summary="fraction of ideas with an alias present")
def key_ideas(output: str, item: Item, ideas: Sequence[Sequence[str]]) -> CheckResult:
    index = WordIndex(output)
    missing = [aliases[0] for aliases in ideas if not any(index.contains(a) for a in aliases)]
    found = len(ideas) - len(missing)
    explanation = f"{found}/{len(ideas)} ideas"
    if missing:
        explanation += f"; missing {quoted_list(missing)}"
    return CheckResult(found / len(ideas), explanation)


@check("not_contains", Param("values", **_WORDS), summary="1 if no value appears", role=GUARD)
def not_contains(output: str, item: Item, values: Sequence[str]) -> CheckResult:
    if item.category == "factual":
        # Wrong answers of a question of fact: naming one to deny it ('Canberra, not Sydney') is fine.
        asserted = {m.phrase for m in assertion.mentions(output, values) if m.asserted}
        present = [v for v in values if v in asserted]
    else:
        index = WordIndex(output)
        present = [v for v in values if index.contains(v)]
    if present:
        return CheckResult(0.0, f"found forbidden {quoted_list(present)}")
    return CheckResult(1.0, f"none of {quoted_list(values)}")


@check(
    "regex",
    Param("pattern", "string", required=True),
    Param("flags", "string", default="", allow_empty=True),
    extra=_regex_compiles,
    summary="1 if the pattern matches the raw output",
)
def regex(output: str, item: Item, pattern: str, flags: str = "") -> CheckResult:
    try:
        match = _compile(pattern, flags).search(clip(output), timeout=REGEX_TIMEOUT_SECONDS)
    except TimeoutError:
        return CheckResult(0.0, f"pattern gave up after {REGEX_TIMEOUT_SECONDS:g} s on this answer")
    if match:
        return CheckResult(1.0, f"matched {quoted(match.group(0))}")
    return CheckResult(0.0, f"no match for /{pattern[:40]}/")


@check("starts_with", Param("value", "string", required=True, words_needed=True), summary="first words match")
def starts_with(output: str, item: Item, value: str) -> CheckResult:
    expected = words(value)
    first = words(output[: len(value) * 4 + 200])[: len(expected)]
    if first == expected:
        return CheckResult(1.0, f"starts with {quoted(value)}")
    return CheckResult(0.0, f"starts with {quoted(' '.join(first))}, expected {quoted(value)}")


@check("ends_with", Param("value", "string", required=True), summary="stripped output ends with value")
def ends_with(output: str, item: Item, value: str) -> CheckResult:
    tail = output.rstrip()
    if tail.endswith(value.strip()):
        return CheckResult(1.0, f"ends with {quoted(value)}")
    return CheckResult(0.0, f"ends with {quoted(tail[-20:])}, expected {quoted(value)}")


# ---------------------------------------------------------------- format and length


def count_numbered_items(text: str) -> int:
    """Numbered list items: one per line ('1. x', '2) y', '**3.** z'), or inline '1. a 2. b'."""
    text = clip(text)
    on_lines = len(NUMBERED_LINE_RE.findall(text))
    if on_lines >= 2:
        return on_lines
    return max(on_lines, len(inline_numbers(text)))


def count_bullets(text: str) -> int:
    return len(BULLET_LINE_RE.findall(clip(text)))


def _list_score(kind: str, found: int, expected: int) -> CheckResult:
    score = max(0.0, 1.0 - abs(found - expected) / expected)
    return CheckResult(score, f"{found} {kind} items, expected {expected}")


@check(
    "numbered_list",
    Param("n", "int", required=True, minimum=0, exclusive_minimum=True),
    summary="exactly n numbered items",
)
def numbered_list(output: str, item: Item, n: int) -> CheckResult:
    return _list_score("numbered", count_numbered_items(output), n)


@check(
    "bulleted_list",
    Param("n", "int", required=True, minimum=0, exclusive_minimum=True),
    summary="exactly n bullet items",
)
def bulleted_list(output: str, item: Item, n: int) -> CheckResult:
    return _list_score("bulleted", count_bullets(output), n)


def count_words(text: str) -> int:
    """Whitespace-separated chunks that contain a letter or digit ('don't' is one word)."""
    return sum(1 for chunk in visible_text(text).split() if has_word(chunk))


def _counted(noun: str, found: int, low: float | None, high: float | None) -> CheckResult:
    label = noun if found == 1 else noun + "s"
    return CheckResult(range_score(found, low, high), f"{found} {label}, {_range_text(low, high)}")


@check("word_count", *_range_params(), extra=_min_below_max, summary="word count within [min, max]", role=GUARD)
def word_count(output: str, item: Item, min: int | None = None, max: int | None = None) -> CheckResult:
    return _counted("word", count_words(output), min, max)


@check("sentence_count", *_range_params(), extra=_min_below_max, summary="sentence count within [min, max]", role=GUARD)
def sentence_count(output: str, item: Item, min: int | None = None, max: int | None = None) -> CheckResult:
    return _counted("sentence", len(sentences(visible_text(output))), min, max)


@check("char_count", *_range_params(), extra=_min_below_max, summary="character count within [min, max]", role=GUARD)
def char_count(output: str, item: Item, min: int | None = None, max: int | None = None) -> CheckResult:
    return _counted("character", len(output.strip()), min, max)


def _cased_share(output: str, upper: bool) -> CheckResult:
    cased = [c for c in clip(output) if c.isupper() or c.islower()]
    if not cased:
        return CheckResult(0.0, "no letters")
    share = sum(1 for c in cased if c.isupper() == upper) / len(cased)
    case = "uppercase" if upper else "lowercase"
    return CheckResult(1.0 if share >= 0.95 else share, f"{share:.0%} of letters {case}")


@check("uppercase", summary="share of letters in upper case (1 from 95%)")
def uppercase(output: str, item: Item) -> CheckResult:
    return _cased_share(output, upper=True)


@check("lowercase", summary="share of letters in lower case (1 from 95%)")
def lowercase(output: str, item: Item) -> CheckResult:
    return _cased_share(output, upper=False)


_JSON_FENCE_RE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.S)
_MAX_JSON_STARTS = 50


def extract_json(text: str) -> tuple[Any, bool] | None:
    """(value, whole) for the output parsed as JSON, else its first parseable {...}/[...] block."""
    text = clip(text).strip()
    try:
        return json.loads(text), True
    except (ValueError, RecursionError):
        pass
    for block in _JSON_FENCE_RE.findall(text):
        try:
            return json.loads(block), False
        except (ValueError, RecursionError):
            pass
    decoder = json.JSONDecoder()
    starts = [i for i, c in enumerate(text) if c in "{["][:_MAX_JSON_STARTS]
    for start in starts:
        try:
            return decoder.raw_decode(text, start)[0], False
        except (ValueError, RecursionError):
            continue
    return None


@check("valid_json", Param("keys", "strings"), summary="parses as JSON; with keys, fraction present")
def valid_json(output: str, item: Item, keys: Sequence[str] | None = None) -> CheckResult:
    found = extract_json(output)
    if found is None:
        return CheckResult(0.0, "no JSON found")
    value, whole = found
    where = "" if whole else " (embedded in text)"
    kind = {dict: "object", list: "array"}.get(type(value), type(value).__name__)
    if not keys:
        return CheckResult(1.0, f"parsed JSON {kind}{where}")
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, dict)), None)
    if not isinstance(value, dict):
        return CheckResult(0.0, f"parsed JSON {kind}{where}, but it has no keys")
    missing = [k for k in keys if k not in value]
    explanation = f"JSON {kind}{where} with {len(keys) - len(missing)}/{len(keys)} keys"
    if missing:
        explanation += f"; missing {quoted_list(missing)}"
    return CheckResult((len(keys) - len(missing)) / len(keys), explanation)


# ---------------------------------------------------------------- hygiene

_FINAL_PUNCTUATION = set(".!?…。！？")
_CLOSERS = set(")]}\"'”’»`")
_TRAILING_DECORATION = "*_~ \t\n\u200d\ufe0f"


@check("not_truncated", summary="ends with sentence punctuation, not mid-word", role=GUARD)
def not_truncated(output: str, item: Item) -> CheckResult:
    text = visible_text(output[-2000:]).rstrip().rstrip(_TRAILING_DECORATION)
    if not text:
        return CheckResult(0.0, "no visible text")
    last = text[-1]
    if last in _FINAL_PUNCTUATION or last in _CLOSERS or unicodedata.category(last) == "So":
        return CheckResult(1.0, f"ends with {quoted(last)}")
    return CheckResult(0.0, f"ends with {quoted(text[-20:])} without final punctuation")


@check(
    "not_echo",
    Param("max_overlap", "number", default=0.7, minimum=0, maximum=1, exclusive_minimum=True),
    summary="word 3-gram overlap with the prompt at most max_overlap",
    role=GUARD,
)
def not_echo(output: str, item: Item, max_overlap: float = 0.7) -> CheckResult:
    # Special-token spellings are not words the reader sees: '<|im_start|>user' around a
    # copied prompt must not dilute the overlap.
    answer = answer_words(output)
    if not answer:
        return CheckResult(0.0, "no words besides special tokens and list markers")
    n = 3 if len(answer) >= 3 else 1
    grams = ngrams(answer, n)
    prompt_grams = set(ngrams(answer_words(_prompt_text(item)), n))
    overlap = sum(1 for g in grams if g in prompt_grams) / len(grams)
    if overlap <= max_overlap:
        return CheckResult(1.0, f"{overlap:.0%} of word {n}-grams copied from the prompt")
    score = (1.0 - overlap) / (1.0 - max_overlap) if max_overlap < 1 else 0.0
    return CheckResult(score, f"echoes the prompt: {overlap:.0%} of word {n}-grams copied")


@check("non_empty", summary="at least one visible word", role=GUARD)
def non_empty(output: str, item: Item) -> CheckResult:
    return CheckResult(1.0, f"{count_words(output)} words")


def repeated_ratio(output: str) -> tuple[float, int]:
    """(share of word 3-grams repeating an earlier one, number of 3-grams), list markers removed."""
    repeated, total = repeated_ngram_stats(repetition_words(output), 3)
    return (repeated / total if total else 0.0), total


@check(
    "no_repetition",
    Param("max_ratio", "number", default=0.3, minimum=0, maximum=1, exclusive_minimum=False),
    extra=lambda p: _below_one(p, "max_ratio"),
    summary="repeated word 3-gram ratio at most max_ratio, 0 from twice max_ratio",
    role=GUARD,
)
def no_repetition(output: str, item: Item, max_ratio: float = 0.3) -> CheckResult:
    ratio, _ = repeated_ratio(output)
    explanation = f"repeated 3-gram ratio {ratio:.2f} (max {max_ratio:g})"
    if ratio <= max_ratio:
        return CheckResult(1.0, explanation)
    # Steep on purpose: a correct paragraph followed by the same sentence over and over has
    # a ratio of about 0.4, and a gentle slope would leave it most of the credit.
    zero_at = min(1.0, 2 * max_ratio)
    if ratio >= zero_at:
        return CheckResult(0.0, explanation + f": a loop, 0 from {zero_at:g}")
    return CheckResult((zero_at - ratio) / (zero_at - max_ratio), explanation)


@check("distinct_items", summary="share of list items (or lines) that are distinct", role=GUARD)
def distinct_items(output: str, item: Item) -> CheckResult:
    # Items compare after folding case, accents and punctuation: '**Dragon**' is 'dragon'.
    items = [key for key in (" ".join(words(text)) for text in list_items(visible_text(output))) if key]
    if len(items) < 2:
        # Like the negative checks on an empty answer: no list, no credit for its variety.
        return CheckResult(0.0, "not a list: a single item")
    counts: dict[str, int] = {}
    for key in items:
        counts[key] = counts.get(key, 0) + 1
    share = len(counts) / len(items)
    explanation = f"{len(counts)} distinct of {len(items)} items"
    repeated = [key for key, count in counts.items() if count > 1]
    if repeated:
        explanation += f"; repeated {quoted_list(repeated)}"
    return CheckResult(share, explanation)


def _below_one(params: dict[str, Any], name: str) -> None:
    if params[name] >= 1:
        raise CheckParamError(name, f"must be below 1, got {params[name]}")


@check("no_special_tokens", summary="no special-token spelling leaked", role=GUARD)
def no_special_tokens(output: str, item: Item) -> CheckResult:
    leaks = SPECIAL_TOKEN_RE.findall(clip(output))
    if leaks:
        distinct = sorted(set(leaks), key=leaks.index)
        return CheckResult(0.0, f"leaked {quoted_list(distinct)} ({len(leaks)} times)")
    return CheckResult(1.0, "no special tokens")


@check(
    "language",
    Param("lang", "choice", required=True, choices=tuple(LANGUAGE_NAMES)),
    summary="stop-word language id",
)
def language(output: str, item: Item, lang: str) -> CheckResult:
    counts = stopword_counts(words(output))
    total = sum(counts.values())
    name = LANGUAGE_NAMES[lang]
    if total == 0:
        return CheckResult(0.5, f"too short to tell whether it is {name}")
    share = counts[lang] / total
    others = ", ".join(f"{n} {LANGUAGE_NAMES[k]}" for k, n in counts.items() if k != lang)
    explanation = f"{counts[lang]} {name} vs {others} stop words"
    return CheckResult(1.0 if share >= 0.65 else share, explanation)


# ---------------------------------------------------------------- references and input


def _score_against_target(name: str, value: float, target: float, best: int, digits: int) -> CheckResult:
    return CheckResult(min(1.0, value / target), f"{name} {value:.{digits}f} vs reference {best + 1}")


@check(
    "rouge_l",
    Param("target", "number", default=0.5, minimum=0, maximum=1, exclusive_minimum=True),
    Param("min", "number", default=0.0, minimum=0, maximum=1),
    needs=("references",),
    summary="ROUGE-L F1 against the best reference, 1 from target",
)
def rouge_l(output: str, item: Item, target: float = 0.5, min: float = 0.0) -> CheckResult:
    best = reference.rouge_l(output, item.references)
    if best.value < min:
        return CheckResult(0.0, f"ROUGE-L F1 {best.value:.2f} below minimum {min:g}")
    return _score_against_target("ROUGE-L F1", best.value, target, best.reference_index, 2)


@check(
    "chrf",
    Param("target", "number", default=60.0, minimum=0, maximum=100, exclusive_minimum=True),
    needs=("references",),
    summary="sentence chrF / target",
)
def chrf(output: str, item: Item, target: float = 60.0) -> CheckResult:
    best = reference.best_chrf(output, item.references)
    return _score_against_target("chrF", best.value, target, best.reference_index, 1)


@check(
    "bleu",
    Param("target", "number", default=40.0, minimum=0, maximum=100, exclusive_minimum=True),
    needs=("references",),
    summary="sentence BLEU / target",
)
def bleu(output: str, item: Item, target: float = 40.0) -> CheckResult:
    best = reference.best_bleu(output, item.references)
    return _score_against_target("BLEU", best.value, target, best.reference_index, 1)


@check("novelty", summary="share of the answer's word 3-grams not in the prompt", role=GUARD)
def novelty(output: str, item: Item) -> CheckResult:
    # List numbers would make '1. Dragon 2. Dragon' look fresh, and leaked special tokens are
    # not wording: both are left out.
    answer = answer_words(output)
    if not answer:
        return CheckResult(0.0, "no words besides special tokens and list markers")
    n = 3 if len(answer) >= 3 else 1
    grams = ngrams(answer, n)
    prompt_grams = set(ngrams(answer_words(_prompt_text(item)), n))
    # Counting each new n-gram once keeps a looping answer from looking inventive.
    new = {g for g in grams if g not in prompt_grams}
    share = len(new) / len(grams)
    return CheckResult(share, f"{share:.0%} of word {n}-grams new ({len(new)} distinct of {len(grams)})")


ACROSS_ALLOWANCE = 0.2  # stock phrases ("once upon a time") any two answers may share


@check(
    "novel_across_answers",
    Param("allowance", "number", default=ACROSS_ALLOWANCE, minimum=0, maximum=1, exclusive_minimum=False),
    summary="share of the answer's word 3-grams found in the closest other answer of the suite",
    role=GUARD,
    peers=True,
)
def novel_across_answers(
    output: str, item: Item, peers: Mapping[str, str], allowance: float = ACROSS_ALLOWANCE
) -> CheckResult:
    # A creative model writes each piece afresh; the same stanza for every prompt is a
    # template, however well it fits one of them.
    grams = _gram_set(output)
    if not grams:
        return CheckResult(0.0, "no words besides special tokens and list markers")
    others = [(peer_id, text) for peer_id, text in peers.items() if peer_id != item.id]
    if not others:
        return CheckResult(1.0, "no other answers to compare with")
    overlap, closest = max((len(grams & _gram_set(text)) / len(grams), peer_id) for peer_id, text in others)
    score = 1.0 if overlap <= allowance else (1.0 - overlap) / (1.0 - allowance) if allowance < 1 else 0.0
    return CheckResult(score, f"{overlap:.0%} of word 3-grams also in the answer to {closest}")


@lru_cache(maxsize=4096)
def _gram_set(text: str) -> frozenset[tuple[str, ...]]:
    answer = answer_words(text)
    return frozenset(ngrams(answer, 3 if len(answer) >= 3 else 1))


@check(
    "answer_length_ratio",
    *_range_params("number"),
    needs=("input",),
    extra=_min_below_max,
    summary="answer words / input words within [min, max]",
    role=GUARD,
)
def answer_length_ratio(
    output: str, item: Item, min: float | None = None, max: float | None = None
) -> CheckResult:
    input_words = count_words(item.input or "")
    if input_words == 0:
        return CheckResult(0.0, "the input has no words")
    ratio = count_words(output) / input_words
    return CheckResult(range_score(ratio, min, max), f"length ratio {ratio:.2f}, {_range_text(min, max)}")


@check("faithful", needs=("input",), summary="share of content words that appear in the input")
def faithful(output: str, item: Item) -> CheckResult:
    answer = content_words(words(output))
    if not answer:
        return CheckResult(0.0, "no content words")
    source = {crude_stem(w) for w in words(item.input or "")}
    unsupported = [w for w in answer if crude_stem(w) not in source]
    share = 1.0 - len(unsupported) / len(answer)
    explanation = f"{share:.0%} of content words appear in the input"
    if unsupported:
        explanation += f"; not found: {quoted_list(list(dict.fromkeys(unsupported)))}"
    return CheckResult(share, explanation)


def check_names() -> list[str]:
    return sorted(CHECKS)


def suggest_check(name: str) -> str | None:
    hint = get_close_matches(name, list(CHECKS), n=1)
    return hint[0] if hint else None


__all__ = [
    "CHECKS",
    "CheckDef",
    "CheckParamError",
    "CheckResult",
    "CheckSpec",
    "AnswerContext",
    "ItemGrade",
    "Param",
    "grade_item",
    "range_score",
]


# Checks graded by computation (numeric answers, unit tests) live in their own module and register
# themselves in CHECKS when it is imported.
from graders import tool_checks  # noqa: E402,F401
