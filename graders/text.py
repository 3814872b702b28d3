"""Text helpers shared by the graders: folding, word tokens, n-grams, stop words.

Matching in checks is case-, accent- and punctuation-insensitive, so every
comparison goes through :func:`fold` and :func:`words`. All helpers accept any
Unicode string (including lone surrogates and control characters) without raising.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from graders.numbers import numbers_as_digits

# Outputs can be huge when a model loops; no grader looks past this many characters.
MAX_CHARS = 20_000

# Letters that NFKD does not decompose but that readers treat as plain ASCII.
_LIGATURES = str.maketrans(
    {"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ø": "o", "Ø": "o", "ł": "l", "Ł": "l"}
)
_WORD_RE = re.compile(r"\w+")
# Scripts written without spaces between words: whole-word matching cannot work there.
_NO_SPACE_SCRIPT_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")

SPECIAL_TOKEN_RE = re.compile(r"<\|[^<>|\n]{0,40}\|>|</s>|<s>|<unk>|<pad>")
# The ASCII characters of categories Cc (controls) that visible_text drops: all but tab and newline.
_ASCII_INVISIBLE_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clip(text: str) -> str:
    """The part of an output that graders look at."""
    return text[:MAX_CHARS]


def fold(text: str) -> str:
    """Lower-case and strip accents: 'Élève' -> 'eleve', 'Straße' -> 'strasse'."""
    if text.isascii():  # nothing to decompose or strip, and most text a bench folds is ASCII
        return text.lower()
    text = text.translate(_LIGATURES)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    """Folded word tokens; punctuation separates words ("don't" -> ['don', 't'])."""
    return _WORD_RE.findall(fold(clip(text)))


def has_word(text: str) -> bool:
    return _WORD_RE.search(text) is not None


def visible_text(text: str) -> str:
    """The output without special-token spellings and invisible format characters."""
    text = SPECIAL_TOKEN_RE.sub(" ", clip(text))
    if text.isascii():
        return _ASCII_INVISIBLE_RE.sub("", text)
    return "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cc", "Cs") or c in "\n\t")


def is_blank(text: str) -> bool:
    """True when there is no letter or digit to read once special tokens are removed."""
    return not has_word(visible_text(text))


def _joined(tokens: Sequence[str]) -> str:
    return " " + " ".join(tokens) + " "


class WordIndex:
    """An output prepared once for many whole-word phrase look-ups.

    Numbers written in words match their digits both ways: '12' finds 'a dozen' and 'twelve'.
    """

    def __init__(self, text: str) -> None:
        self.folded = fold(clip(text))
        tokens = _WORD_RE.findall(self.folded)
        self.joined = _joined(tokens)
        self.joined_digits = _joined(numbers_as_digits(tokens))

    def contains(self, phrase: str) -> bool:
        phrase_tokens = words(phrase)
        if not phrase_tokens:
            return False
        if _NO_SPACE_SCRIPT_RE.search(phrase):
            # No word boundaries to rely on: fall back to substring search on folded text.
            return "".join(phrase_tokens) in "".join(_WORD_RE.findall(self.folded))
        return _joined(phrase_tokens) in self.joined or _joined(numbers_as_digits(phrase_tokens)) in self.joined_digits


# List markers. A numbered line: '1. x', '2) y', '(3) z', '**4.** w' (a digit right after the
# marker, as in '3.5 kg', is not one); an inline '1. a 2. b'; a bullet line: '- x', '* y', '• z'.
NUMBERED_LINE_RE = re.compile(r"^[ \t]*[*_>#]*[ \t]*\(?(\d{1,3})[.):\]][*_]*[ \t]*(?=[^\d\s])", re.M)
NUMBERED_INLINE_RE = re.compile(r"(?:^|\s)\(?(\d{1,2})[.)][ \t]+(?=\S)")
BULLET_LINE_RE = re.compile(r"^[ \t]*[-*•+‣◦▪●–][ \t]+(?=\S)", re.M)


def inline_numbers(text: str) -> list[re.Match[str]]:
    """Inline list numbers '1. a 2. b 3. c', kept only while they count 1, 2, 3... in order,
    so that '1945. Then' or 'version 2. Next' are not taken for list items."""
    found = []
    for match in NUMBERED_INLINE_RE.finditer(text):
        if int(match.group(1)) == len(found) + 1:
            found.append(match)
    return found


def _marker_free_lines(text: str) -> list[tuple[bool, str]]:
    """Each line of ``text`` with its list marker removed, and whether it had one."""
    lines = []
    for line in text.splitlines():
        marker = NUMBERED_LINE_RE.match(line) or BULLET_LINE_RE.match(line)
        lines.append((marker is not None, line[marker.end() :] if marker else line))
    return lines


def strip_list_markers(text: str) -> str:
    """The text without list numbers and bullets.

    List numbers make every word 3-gram of '1. Dragon 2. Dragon 3. Dragon' distinct; without
    them repetition and novelty measures see the five identical items for what they are.
    """
    text = clip(text)
    numbers = inline_numbers(text) if len(NUMBERED_LINE_RE.findall(text)) < 2 else []
    if len(numbers) >= 2:
        kept, start = [], 0
        for match in numbers:
            kept.append(text[start : match.start(1)])
            start = match.end(1)
        text = "".join(kept) + text[start:]
    return "\n".join(line for _, line in _marker_free_lines(text))


def list_items(text: str) -> list[str]:
    """The items of a list answer, markers removed.

    Items are the lines that start with a list marker when there are two or more of them
    (an introduction line is not an item), else the items of an inline list '1. a 2. b',
    else every line with a word in it (a poem's lines).
    """
    text = clip(text)
    marked = [line for has_marker, line in _marker_free_lines(text) if has_marker]
    if len(marked) >= 2:
        return marked
    numbers = inline_numbers(text)
    if len(numbers) >= 2:
        ends = [m.start() for m in numbers[1:]] + [len(text)]
        return [text[m.end() : end] for m, end in zip(numbers, ends, strict=True)]
    return [line for line in text.splitlines() if has_word(line)]


def repetition_words(text: str) -> list[str]:
    """The words repetition is measured on: list markers removed, special tokens kept
    (a model that loops on ``<|im_start|>assistant`` is looping)."""
    return words(strip_list_markers(text))


# A chat template's role header: the role name right after a special token, as in
# '<|im_start|>user' or '<|start_header_id|>assistant<|end_header_id|>'.
_ROLE_HEADER_RE = re.compile(r"(" + SPECIAL_TOKEN_RE.pattern + r")[ \t]*(?:system|user|assistant)\b", re.I)


def answer_words(text: str) -> list[str]:
    """The words overlap with a prompt is measured on: what a reader sees, list markers,
    special-token spellings and the role names they introduce removed (a leaked
    ``<|im_start|>user`` is neither new wording nor a difference from the prompt)."""
    return words(strip_list_markers(visible_text(_ROLE_HEADER_RE.sub(r"\1", clip(text)))))


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def repeated_ngram_stats(tokens: Sequence[str], n: int = 3) -> tuple[int, int]:
    """(n-grams that repeat an earlier one, total n-grams)."""
    grams = ngrams(tokens, n)
    return len(grams) - len(set(grams)), len(grams)


def quoted(value: str, limit: int = 40) -> str:
    """A short quoted excerpt for explanations."""
    value = " ".join(value.split())
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return f"'{value}'"


def quoted_list(values: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(quoted(v) for v in values[:limit])
    if len(values) > limit:
        shown += f" and {len(values) - limit} more"
    return shown


# Stop words used for language identification and to find content words.
# Words that are common in both languages ('a', 'on', 'me', 'or', 'as', 'en') are left out
# so they cannot tip the balance either way.
ENGLISH_STOPWORDS = frozenset(
    """the of and to in is was it for that with he be by at this are from his
    but have an not they which you were her she there been has their one all would will
    what so if about who when can no my more than them some into its your could do our
    we him these also only other then how any because should very just where why those
    did does i am is are isn being here too each many much most after before while""".split()
)
FRENCH_STOPWORDS = frozenset(
    """le la les de des du un une et est dans pour que qui ne pas au aux il elle ils elles
    nous vous je tu ce cette ces sur avec par plus sont mais ou leur leurs son sa ses mon
    ma mes ton ta tes notre nos votre vos y lui meme aussi tres bien comme etre avoir fait
    ete sont etait quand donc car si tout tous toutes alors parce quoi dont cela ca chez""".split()
)
STOPWORDS = ENGLISH_STOPWORDS | FRENCH_STOPWORDS
LANGUAGE_NAMES = {"en": "English", "fr": "French"}
_STOPWORDS_BY_LANG = {"en": ENGLISH_STOPWORDS, "fr": FRENCH_STOPWORDS}


def stopword_counts(tokens: Sequence[str]) -> dict[str, int]:
    """How many tokens are stop words of each supported language."""
    return {lang: sum(1 for t in tokens if t in stops) for lang, stops in _STOPWORDS_BY_LANG.items()}


def content_words(tokens: Sequence[str]) -> list[str]:
    """Words that carry meaning: not stop words, longer than three characters."""
    return [t for t in tokens if len(t) > 3 and t not in STOPWORDS and not t.isdigit()]


def crude_stem(word: str) -> str:
    """Enough stemming for overlap checks: 'cats' ~ 'cat', 'planets' ~ 'planet'."""
    if len(word) > 4 and word.endswith("s"):
        return word[:-1]
    return word


# Sentence ends: ., !, ?, ellipsis and CJK full stops, followed by space or the end.
_SENTENCE_END_RE = re.compile(r"(?<=[.!?…。！？])[\"'”’»)\]]*\s+")
_DOTTED_RE = re.compile(r"^(?:[a-z]\.)+[a-z]$")
_ABBREVIATIONS = frozenset("mr mrs ms dr prof st jr sr vs etc eg ie cf fig mme mlle".split())


def sentences(text: str) -> list[str]:
    """Split into sentences; line breaks also end a sentence (lists, headings)."""
    found: list[str] = []
    for line in clip(text).splitlines():
        start = 0
        for match in _SENTENCE_END_RE.finditer(line):
            candidate = line[start : match.start()]
            last_word = candidate.rstrip(".!?…。！？\"'”’»)] ").rsplit(maxsplit=1)[-1:] or [""]
            folded = fold(last_word[0])
            bare = folded.replace(".", "")
            # 'Dr. Smith', 'e.g. this', 'p.m. today', 'J. K. Rowling' do not end a sentence.
            if bare in _ABBREVIATIONS or (len(bare) == 1 and bare.isalpha()) or _DOTTED_RE.match(folded):
                continue
            found.append(candidate)
            start = match.end()
        found.append(line[start:])
    return [s.strip() for s in found if has_word(s)]
