"""Text helpers shared by the graders: folding, word tokens, n-grams, stop words.

Matching in checks is case-, accent- and punctuation-insensitive, so every
comparison goes through :func:`fold` and :func:`words`. All helpers accept any
Unicode string (including lone surrogates and control characters) without raising.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

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


def clip(text: str) -> str:
    """The part of an output that graders look at."""
    return text[:MAX_CHARS]


def fold(text: str) -> str:
    """Lower-case and strip accents: 'Élève' -> 'eleve', 'Straße' -> 'strasse'."""
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
    return "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cc", "Cs") or c in "\n\t")


def is_blank(text: str) -> bool:
    """True when there is no letter or digit to read once special tokens are removed."""
    return not has_word(visible_text(text))


def _joined(tokens: Sequence[str]) -> str:
    return " " + " ".join(tokens) + " "


class WordIndex:
    """An output prepared once for many whole-word phrase look-ups."""

    def __init__(self, text: str) -> None:
        self.folded = fold(clip(text))
        self.joined = _joined(_WORD_RE.findall(self.folded))

    def contains(self, phrase: str) -> bool:
        phrase_tokens = words(phrase)
        if not phrase_tokens:
            return False
        if _NO_SPACE_SCRIPT_RE.search(phrase):
            # No word boundaries to rely on: fall back to substring search on folded text.
            return "".join(phrase_tokens) in "".join(_WORD_RE.findall(self.folded))
        return _joined(phrase_tokens) in self.joined


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
