"""What an answer asserts, beyond which words it contains.

"The longest river in Africa is the Congo, which is longer than the Nile" contains "Nile" but
asserts "Congo". For items that know their wrong answers (multiple-choice distractors), the
answer's claim is found by looking at each mention of a right or wrong answer: a mention after
a negation ("not Sydney", "isn't Lyon"), after "than" ("longer than the Nile") or "rather than",
"instead of", or inside a question, is not asserted. Numbers written in words count as digits
("a dozen", "twelve" for 12).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from graders.numbers import numbers_as_digits
from graders.text import clip, fold

_TOKEN_RE = re.compile(r"\w+")

# ---------------------------------------------------------------- asserted mentions

_NEGATORS = frozenset("not no never isn aren wasn weren doesn don didn nor neither without".split())
# 'Many think it is Sydney': a belief reported, not the answer given. A belief verb alone
# ('it is believed that Michelangelo painted') still asserts; with a crowd before it, it reports.
_REPORTED = frozenset("mistakenly wrongly mistake misconception confuse confused myth".split())
_BELIEF = frozenset("think thinks thought believe believes believed assume assumed say says".split())
_CROWD = frozenset("many some people often commonly popularly widely others".split())
_NOT_CLAIMED_AFTER = (("than",), ("rather", "than"), ("instead", "of"), ("other", "than"), ("unlike",),
                      ("confused", "with"), ("mistaken", "for"), ("contrary", "to"), ("not", "to", "be",
                                                                                   "confused", "with"))
_WINDOW = 4  # words before a mention where a negation still applies to it


@dataclass(frozen=True)
class Mention:
    start: int  # index of the first token in the answer
    phrase: str
    asserted: bool
    why_not: str | None = None  # when not asserted: 'negated', 'reported', 'compared' or 'asked'


def _phrase_tokens(phrase: str) -> list[str]:
    return numbers_as_digits(_TOKEN_RE.findall(fold(phrase)))


def _find(tokens: Sequence[str], phrase: Sequence[str]) -> list[int]:
    n = len(phrase)
    return [i for i in range(len(tokens) - n + 1) if list(tokens[i:i + n]) == list(phrase)] if n else []


def _clause_start(tokens: Sequence[str], raw_breaks: set[int], index: int) -> int:
    start = index
    while start > 0 and start not in raw_breaks:
        start -= 1
    return start


def _why_not_asserted(tokens: Sequence[str], breaks: set[int], questions: set[int], index: int) -> str | None:
    """None when the mention at ``index`` is asserted, else why not: 'negated', 'reported',
    'compared' ('longer than X', 'instead of X') or 'asked'."""
    clause = _clause_start(tokens, breaks, index)
    before = tokens[max(clause, index - _WINDOW):index]
    if any(t in _NEGATORS for t in before):
        return "negated"
    lead = tokens[clause:index]
    if any(t in _REPORTED for t in lead):
        return "reported"
    beliefs = [i for i, t in enumerate(lead) if t in _BELIEF]
    if beliefs and any(t in _CROWD for t in lead[:beliefs[0]]):
        return "reported"
    for pattern in _NOT_CLAIMED_AFTER:
        n = len(pattern)
        window = tokens[max(clause, index - n - 2):index]
        for j in range(len(window) - n + 1):
            if tuple(window[j:j + n]) == pattern:
                return "compared"
    # 'X? No, ...' or 'Is it X?' ask rather than assert.
    return "asked" if index in questions else None


def _tokens_with_breaks(text: str) -> tuple[list[str], set[int], set[int], list[int]]:
    """Folded tokens; the token indices where a clause starts; indices of tokens inside a question;
    the token index where each sentence starts."""
    tokens: list[str] = []
    breaks: set[int] = {0}
    questions: set[int] = set()
    sentence_starts: list[int] = []
    for sentence in re.split(r"(?<=[.!?;:\n])\s*", fold(clip(text))):
        first = len(tokens)
        sentence_starts.append(first)
        for part in re.split(r"[,()\u2014\u2013]| - ", sentence):
            breaks.add(len(tokens))
            tokens.extend(numbers_as_digits(_TOKEN_RE.findall(part)))
        if sentence.rstrip().endswith("?"):
            questions.update(range(first, len(tokens)))
    return tokens, breaks, questions, sentence_starts


def mentions(text: str, phrases: Sequence[str]) -> list[Mention]:
    """Every mention of any of ``phrases`` in ``text``, in order, and whether it is asserted."""
    tokens, breaks, questions, _ = _tokens_with_breaks(text)
    found = []
    for phrase in phrases:
        target = _phrase_tokens(phrase)
        for start in _find(tokens, target):
            why_not = _why_not_asserted(tokens, breaks, questions, start)
            found.append(Mention(start, phrase, why_not is None, why_not))
    return sorted(found, key=lambda m: m.start)


@dataclass(frozen=True)
class Claim:
    """What the answer claims about an item with known right and wrong answers.

    ``answer``: 'right' or 'wrong', whichever is asserted first (the answer to the question comes
    first; 'Canberra is the capital; Sydney is the largest city' answers Canberra), None when
    neither is asserted. ``hedge``: a right and a wrong answer offered as alternatives in one
    sentence ('Paris, Lyon or Marseille'). ``wrong``: the wrong answers asserted.
    ``negated_right``: the right answer is mentioned under a negation, and never asserted.
    """

    answer: str | None
    hedge: bool
    wrong: list[str]
    negated_right: bool


def claim(text: str, right: Sequence[str], wrong: Sequence[str]) -> Claim:
    right_mentions = mentions(text, right)
    wrong_mentions = mentions(text, [w for w in wrong if _phrase_tokens(w)])
    asserted = sorted([(m.start, "right", m) for m in right_mentions if m.asserted]
                      + [(m.start, "wrong", m) for m in wrong_mentions if m.asserted], key=lambda t: t[0])
    answer = asserted[0][1] if asserted else None
    tokens, _, _, sentence_starts = _tokens_with_breaks(text)
    hedge = False
    for _, kind, m in asserted:
        if kind != "right":
            continue
        sentence = _sentence_index(sentence_starts, m.start)
        for _, other_kind, w in asserted:
            if other_kind == "wrong" and _sentence_index(sentence_starts, w.start) == sentence:
                low, high = sorted((m.start, w.start))
                between = tokens[low:high + 1]
                if "or" in between or "either" in tokens[max(0, low - 2):low + 1]:
                    hedge = True
    wrong_asserted = list(dict.fromkeys(m.phrase for _, kind, m in asserted if kind == "wrong"))
    asserted_right = any(kind == "right" for _, kind, _ in asserted)
    negated = any(m.why_not == "negated" for m in right_mentions)
    return Claim(answer, hedge, wrong_asserted, negated and not asserted_right)


def _sentence_index(starts: Sequence[int], index: int) -> int:
    return max(i for i, start in enumerate(starts) if start <= index)


_LEADING = frozenset("the a an".split())


def distinctive(wrong: str, right: str) -> str:
    """The words that tell a wrong choice from the right one: 'The Atlantic Ocean' vs 'The Pacific
    Ocean' -> 'atlantic' (the longest run of words not in the right choice)."""
    right_tokens = set(_TOKEN_RE.findall(fold(right)))
    tokens = _TOKEN_RE.findall(fold(wrong))
    runs, current = [], []
    for t in tokens:
        if t in right_tokens or (not current and t in _LEADING):
            if current:
                runs.append(current)
            current = []
        else:
            current.append(t)
    if current:
        runs.append(current)
    best = max(runs, key=lambda r: (sum(len(t) for t in r), -len(runs)), default=[])
    return " ".join(best)
