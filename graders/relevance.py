"""Relevance: does an answer speak to its prompt, even when it misses the task?

Careful readers separate a wrong but relevant attempt ("It ended in the mid-1940s", "I am a
program, so I do not have feelings") from text that has nothing to do with the question (a
random model's junk, a story about a zoo). Both miss the item's content checks, so both would
score 0 and tie, although humans give the first a little credit and the second none. The
measure here is lexical and cheap: the distinct content words (stemmed) an answer shares with
everything the model was shown and with the item's reference answers. Echoing the prompt is
not rewarded here: the hygiene echo defect scales such an answer down afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from graders.text import content_words, crude_stem, words

# Shared content words for full relevance: one shared word is often chance ('day', 'time').
FULL_RELEVANCE_WORDS = 2


@dataclass(frozen=True)
class Relevance:
    score: float  # in [0, 1]
    shared: tuple[str, ...]  # the shared content words, as they appear in the answer


def _stems(text: str) -> dict[str, str]:
    """Stem -> first surface form, for the content words of ``text``."""
    found: dict[str, str] = {}
    for word in content_words(words(text)):
        found.setdefault(crude_stem(word), word)
    return found


def relevance(answer: str, context: Iterable[str]) -> Relevance:
    """How much of the prompt's and references' vocabulary the answer uses (see module doc)."""
    known: set[str] = set()
    for text in context:
        known.update(_stems(text))
    shared = tuple(surface for stem, surface in _stems(answer).items() if stem in known)
    return Relevance(min(1.0, len(shared) / FULL_RELEVANCE_WORDS), shared)
