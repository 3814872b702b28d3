"""Defects that ruin any answer, measured the same way for every item.

An item's own guard checks say what its task needs (a length, no forbidden word); the defects
here are failures whatever the task: an answer cut mid-sentence, a loop (of words, or of
characters without spaces), a copy of the prompt, a number recited to dozens of digits, junk
that is not language, and words without grammar (word salad). Careful readers score such
answers low even when the right keywords are in them, so each defect gives a factor that
multiplies the item score (1 = no defect). Every function is pure and reads at most
``text.MAX_CHARS`` characters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from graders.text import (
    ENGLISH_STOPWORDS,
    FRENCH_STOPWORDS,
    answer_words,
    clip,
    content_words,
    crude_stem,
    fold,
    ngrams,
    repeated_ngram_stats,
    strip_list_markers,
    visible_text,
    words,
)

TRUNCATED, LOOP, ECHO, DIGIT_RUN, JUNK, WORD_SALAD = (
    "truncated", "loop", "echo", "digit_run", "junk", "word_salad")


@dataclass(frozen=True)
class Defect:
    type: str
    factor: float
    explanation: str


# ---------------------------------------------------------------- truncation

_FINAL = set(".!?…。！？")
_CLOSERS = set(")]}\"'”’»`")
# A sentence, a list line or a verse does not end on these: an answer that does was cut.
_DANGLING = frozenset(
    """the a an of and to in with for is are was were that which by on at from as or but his her
    their its my your our this these those be been will would can could than into about who whose
    has have had do does did should may might must make makes get gets give gives take takes use uses
    le la les de des du un une et est dans pour que qui sur avec par au aux mais ou donc il elle ils
    elles je tu nous vous ce cette ces son sa ses""".split()
)
TRUNCATED_FACTOR = 0.6
_MIN_WORDS_CUT = 8  # a short reply without a full stop ('Paris', 'Hi there') is not cut
_PROSE_LINE_WORDS = 10
_LONG_ANSWER_WORDS = 40


def truncation(text: str) -> Defect | None:
    """An answer that stops mid-sentence: it ends on a dangling word or a comma, or a long answer's
    last prose line ends without final punctuation. Short answers, lists and verse lines may end
    without a full stop."""
    shown = visible_text(text[-3000:] if len(text) > 3000 else text).rstrip().rstrip("*_~ \t\n\u200d\ufe0f")
    if not shown:
        return None
    last = shown[-1]
    if last in _FINAL or last in _CLOSERS or unicodedata.category(last) in ("So", "Sk"):
        return None
    if len(words(text)) < _MIN_WORDS_CUT:
        return None
    line = strip_list_markers(shown.splitlines()[-1])
    line_words = words(line)
    if not line_words:
        return None
    # Without a dangling word, only a long answer (one the length limit may have cut) whose last
    # line is prose counts: a short reply that just lacks its full stop is complete.
    long_answer = len(words(text)) >= _LONG_ANSWER_WORDS
    # A reply whose earlier sentences end properly but whose last one does not was cut.
    earlier_ended = any(c in _FINAL for c in shown[:-1]) and len(line_words) >= 5
    if (line_words[-1] in _DANGLING or last == "," or earlier_ended
            or (long_answer and len(line_words) >= _PROSE_LINE_WORDS)):
        tail = " ".join(line.split()[-4:])
        return Defect(TRUNCATED, TRUNCATED_FACTOR, f"cut mid-sentence ('…{tail[-40:]}'): item score "
                                                   f"multiplied by {TRUNCATED_FACTOR:g}")
    return None


# ---------------------------------------------------------------- loops

LOOP_START, LOOP_FULL, LOOP_FLOOR = 0.3, 0.75, 0.1
_MIN_LOOP_NGRAMS = 10
_LONG_TOKEN = 24  # a 'word' this long is a run of characters: cut it into pieces
_PIECE = 4


def _loop_tokens(text: str) -> list[str]:
    tokens = []
    for token in words(strip_list_markers(text)):
        if len(token) > _LONG_TOKEN:
            tokens.extend(token[i:i + _PIECE] for i in range(0, len(token), _PIECE))
        else:
            tokens.append(token)
    return tokens


def loop_ratio(text: str) -> tuple[float, int]:
    """(share of token 3-grams repeating an earlier one, 3-grams); over-long tokens ('iaoiaoiao…',
    digits without spaces) are cut into 4-character pieces so that character loops count too."""
    repeated, total = repeated_ngram_stats(_loop_tokens(text), 3)
    return (repeated / total if total else 0.0), total


def loop(text: str) -> Defect | None:
    """A loop: 1 up to LOOP_START repeated 3-grams, then down linearly to LOOP_FLOOR at LOOP_FULL."""
    ratio, total = loop_ratio(text)
    if total < _MIN_LOOP_NGRAMS or ratio <= LOOP_START:
        return None
    share = min(1.0, (ratio - LOOP_START) / (LOOP_FULL - LOOP_START))
    factor = round(1.0 - share * (1.0 - LOOP_FLOOR), 4)
    return Defect(LOOP, factor, f"loop: {ratio:.0%} of 3-grams repeat an earlier one; item score multiplied "
                                f"by {factor:.2f}")


# ---------------------------------------------------------------- echo

ECHO_START = 0.6
_MIN_ECHO_WORDS = 6


def echo(text: str, prompt: str, has_input: bool) -> Defect | None:
    """A copy of what the model was shown. For tasks on an input passage (summaries), quoting is
    normal: only a copy of most of the passage counts."""
    answer = answer_words(text)
    if len(answer) < _MIN_ECHO_WORDS:
        return None
    shown = answer_words(prompt)
    grams = ngrams(answer, 3)
    prompt_grams = set(ngrams(shown, 3))
    overlap = sum(1 for g in grams if g in prompt_grams) / len(grams)
    if has_input and len(answer) < 0.6 * len(shown):
        return None
    start = 0.8 if has_input else ECHO_START
    if overlap <= start:
        return None
    # Restating the question around the answer ('Jupiter is the largest planet in our solar
    # system') copies it too: an echo adds (next to) nothing of its own.
    prompt_stems = {crude_stem(w) for w in shown}
    new = [w for w in content_words(answer) if crude_stem(w) not in prompt_stems]
    if new and (len(answer) < 20 or len(new) >= 0.15 * len(answer)):
        return None
    factor = round(max(0.05, (1.0 - overlap) / (1.0 - start)), 4)
    return Defect(ECHO, factor, f"copies the prompt: {overlap:.0%} of word 3-grams; item score multiplied by "
                                f"{factor:.2f}")


# ---------------------------------------------------------------- digit runs

_DIGITS_RE = re.compile(r"\d(?:[\d ,]?\d)*")
DIGIT_RUN_START = 16


def digit_run(text: str, prompt: str) -> Defect | None:
    """A number recited far past any use (pi to 200 digits): the longest run of digits."""
    runs = [re.sub(r"\D", "", m.group(0)) for m in _DIGITS_RE.finditer(clip(text))]
    longest = max((len(r) for r in runs), default=0)
    if longest < DIGIT_RUN_START:
        return None
    asked = max((len(re.sub(r"\D", "", m.group(0))) for m in _DIGITS_RE.finditer(prompt)), default=0)
    if longest <= asked + 2:  # the prompt itself holds such a number
        return None
    factor = round(max(0.1, 12 / longest), 4)
    return Defect(DIGIT_RUN, factor, f"a run of {longest} digits; item score multiplied by {factor:.2f}")


# ---------------------------------------------------------------- junk and word salad

_MIN_JUNK_CHARS = 20
JUNK_START = 0.25


def _junk_share(text: str) -> float:
    """Share of the answer's non-space characters that are not letters, digits or ordinary
    punctuation, plus the share of its words that are not word-like (mixed case inside a word,
    letters glued to digits, runs of one letter)."""
    shown = visible_text(text)
    chars = [c for c in shown if not c.isspace()]
    if not chars:
        return 0.0
    odd_chars = sum(1 for c in chars if not (c.isalnum() or c in ".,;:!?'\"()-–—’“”‘*#/&%$€£+=<>[]{}_@°…«»`~|\\^"))
    tokens = re.findall(r"\w+", shown)
    odd_tokens = sum(1 for t in tokens if _odd_token(t))
    return max(odd_chars / len(chars), odd_tokens / len(tokens) if tokens else 0.0)


_ODD_TOKEN_RE = re.compile(r"[a-z]{2,}[A-Z]|[A-Za-z]\d|\d[A-Za-z]{3,}|(.)\1\1\1|_")


def _odd_token(token: str) -> bool:
    if token.isdigit() or len(token) <= 2:
        return False
    if not token.isascii():
        # Accented Latin is language; mixed scripts inside one word are not.
        scripts = {unicodedata.name(c, "?").split()[0] for c in token if c.isalpha()}
        return len(scripts) > 1
    return bool(_ODD_TOKEN_RE.search(token))


def junk(text: str) -> Defect | None:
    """Text that is not language: symbols, glued tokens, character soup."""
    if len(visible_text(text).strip()) < _MIN_JUNK_CHARS:
        return None
    share = _junk_share(text)
    if share <= JUNK_START:
        return None
    factor = round(max(0.05, 1.0 - (share - JUNK_START) / (0.6 - JUNK_START)), 4)
    return Defect(JUNK, factor, f"{share:.0%} of the text is not word-like; item score multiplied by {factor:.2f}")


SALAD_MIN_WORDS = 8
SALAD_STOPWORD_SHARE = 0.12
SALAD_ODD_SHARE = 0.05
SALAD_REPEAT_SHARE = 0.4  # of content words that repeat an earlier one ('dawn … dawn … dawn')
_FUNCTION_WORDS = ENGLISH_STOPWORDS | FRENCH_STOPWORDS | frozenset("a on or as me en".split())
# After an article comes a noun or an adjective, never one of these (English, then French;
# kept apart because the French 'à' folds to 'a').
_NOT_AFTER_ARTICLE = {
    **dict.fromkeys("the a an".split(), frozenset("the a an of and to in is was for with by at from on".split())),
    **dict.fromkeys("le la les un une des".split(), frozenset("le la les un une de des du et".split())),
}


def _prose_lines(text: str) -> list[list[str]]:
    """Word lists of the lines that read as prose: not list items of a few words, not comma lists."""
    lines = []
    for line in strip_list_markers(visible_text(text)).splitlines():
        tokens = [t for t in words(line) if not t.isdigit()]  # '1.1.2: Budgeting' is a heading
        if len(tokens) < 5:
            continue
        if line.count(",") + 1 >= len(tokens) / 2:  # 'apples, pears, plums, figs'
            continue
        lines.append(tokens)
    return lines


def _odd_pairs(tokens: list[str], doubled: bool = True) -> int:
    """Word pairs no grammatical sentence has: a word said twice in a row ('the the', 'dawn dawn';
    unless ``doubled`` is false) or an article followed by a function word ('the of', 'a the')."""
    odd = 0
    for first, second in zip(tokens, tokens[1:], strict=False):
        if doubled and first == second and not first.isdigit() and first not in ("that", "had", "very", "so", "ha", "no"):
            odd += 1
        elif second in _NOT_AFTER_ARTICLE.get(first, ()):
            odd += 1
    return odd


def word_salad(text: str) -> Defect | None:
    """Words without grammar: prose with almost no function words ('moon silver whisper night
    dream ocean light …'; English and French prose has about 40%), or with word pairs no
    sentence has ('station dawn empty train the the platform')."""
    lines = _prose_lines(text)
    tokens = [t for line in lines for t in line]
    if len(tokens) < SALAD_MIN_WORDS:
        # Too short to judge by shares; an article before a function word still tells ('A the
        # zoo.'), while a word said twice may be emphasis ('Yes, yes.').
        short = [t for t in words(visible_text(text)) if not t.isdigit()]
        if 2 <= len(short) < SALAD_MIN_WORDS and _odd_pairs(short, doubled=False):
            return Defect(WORD_SALAD, 0.3, "words without grammar (an impossible word pair); item score "
                                           "multiplied by 0.3")
        return None
    share = sum(1 for t in tokens if fold(t) in _FUNCTION_WORDS) / len(tokens)
    odd = sum(_odd_pairs(line) for line in lines) / len(tokens)
    content = [t for t in tokens if t not in _FUNCTION_WORDS and not t.isdigit()]
    # Repeated content words tell salad only where grammar is thin: a long, grammatical but
    # repetitive answer is not salad.
    repeats = 1.0 - len(set(content)) / len(content) if len(content) >= SALAD_MIN_WORDS and share < 0.35 else 0.0
    if share >= SALAD_STOPWORD_SHARE and odd < SALAD_ODD_SHARE and repeats < SALAD_REPEAT_SHARE:
        return None
    badness = max(1.0 - share / SALAD_STOPWORD_SHARE if share < SALAD_STOPWORD_SHARE else 0.0,
                  min(1.0, odd / (2 * SALAD_ODD_SHARE)),
                  min(1.0, (repeats - SALAD_REPEAT_SHARE) / 0.3) if repeats >= SALAD_REPEAT_SHARE else 0.0)
    factor = round(max(0.1, 0.6 - 0.5 * badness), 4)
    return Defect(WORD_SALAD, factor, f"words without grammar ({share:.0%} function words, {odd:.0%} impossible "
                                      f"word pairs, {repeats:.0%} repeated content words); item score multiplied "
                                      f"by {factor:.2f}")


def defects(text: str, prompt: str, has_input: bool) -> list[Defect]:
    """Every defect found in an answer (an empty answer has none: it already scores 0)."""
    looping = loop(text)
    found = [truncation(text), looping, echo(text, prompt, has_input), digit_run(text, prompt), junk(text),
             # a loop repeats its words: that is not also word salad
             None if looping else word_salad(text)]
    return [d for d in found if d is not None]
