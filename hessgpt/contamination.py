"""Does the training data contain the bench's items?

Two signals, both on normalised text (lower case, accents and punctuation removed, whitespace words):

- a long shared word n-gram (13 by default, the length used by GPT-3's and later contamination
  studies) between a training example and any text of a suite item (prompt, input, messages,
  references, choices);
- an exact match between a training example's user turn and an item's prompt (``prompt``, or
  ``prompt`` + input, or its last user message), which catches short prompts no 13-gram can.

Suites are read with the safe YAML loader only, aliases bounded: they are data.
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hessgpt.data import Example
from hessgpt.errors import HessError
from hessgpt.safe_yaml import parse_yaml

MAX_SUITE_CHARS = 5 * 1024 * 1024  # expanded size of one suite, as the bench allows

DEFAULT_NGRAM = 13
_NON_WORD = re.compile(r"[^0-9a-z]+")


def normalise_words(text: str) -> list[str]:
    """Lower-cased, accent-free, punctuation-free words."""
    plain = text.lower()
    if not plain.isascii():  # most text is ASCII: skip the slow per-character pass
        plain = "".join(c for c in unicodedata.normalize("NFKD", plain) if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", plain).split()


def normalise(text: str) -> str:
    return " ".join(normalise_words(text))


def ngrams(words: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    return (tuple(words[i : i + n]) for i in range(len(words) - n + 1))


@dataclass
class SuiteItem:
    id: str
    suite: str
    prompts: list[str]  # the user-visible prompt texts, for exact matching
    texts: list[str]  # everything the item says, for n-gram matching


@dataclass
class Finding:
    example: int  # index in the checked list
    source: str  # file:line
    item: str  # suite item id
    kind: str  # "exact_prompt" or "ngram"
    evidence: str  # the shared text

    def line(self) -> str:
        return f'{self.source}: overlaps {self.item} ({self.kind}: "{self.evidence[:120]}")'


@dataclass
class ContaminationReport:
    n_examples: int
    n_items: int
    ngram: int
    suites: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def flagged_examples(self) -> list[int]:
        return sorted({f.example for f in self.findings})

    @property
    def flagged_items(self) -> list[str]:
        return sorted({f.item for f in self.findings})

    def summary(self) -> str:
        if not self.findings:
            return (
                f"no overlap: {self.n_examples} examples against {self.n_items} items of "
                f"{len(self.suites)} suite(s) ({self.ngram}-gram and exact prompt)"
            )
        return (
            f"{len(self.flagged_examples)} of {self.n_examples} examples overlap "
            f"{len(self.flagged_items)} suite item(s): {', '.join(self.flagged_items[:8])}"
            + (" ..." if len(self.flagged_items) > 8 else "")
        )

    def to_meta(self) -> dict[str, Any]:
        return {
            "ngram": self.ngram,
            "suites": self.suites,
            "n_items": self.n_items,
            "flagged_examples": len(self.flagged_examples),
            "flagged_items": self.flagged_items[:50],
        }


def shipped_suites_dir() -> Path | None:
    """The suites installed beside the bench's code (``benchmarks/suites``), found from the package
    rather than the current directory, as ``benchmarks.suite`` does; None when they are not there."""
    spec = importlib.util.find_spec("benchmarks")  # finds the package without importing it
    locations = (spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        folder = Path(location) / "suites"
        if folder.is_dir():
            return folder
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def load_suite_items(folder: str | Path) -> tuple[list[SuiteItem], list[str]]:
    """Every item of every ``*.yaml`` suite in ``folder`` (read as data, validated loosely: the
    bench validates suites; this only needs their text)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HessError(f"--against: {folder} is not a folder of suite files")
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise HessError(f"--against: {folder} has no *.yaml suite files")
    items: list[SuiteItem] = []
    for path in files:
        try:
            doc = parse_yaml(path, path.read_text(encoding="utf-8"), MAX_SUITE_CHARS)
        except (OSError, UnicodeDecodeError) as exc:
            raise HessError(f"{path}: not a readable YAML suite ({str(exc).splitlines()[0]})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
            raise HessError(f"{path}: a suite needs an 'items' list")
        for index, raw in enumerate(doc["items"]):
            if not isinstance(raw, dict):
                continue
            items.append(_suite_item(raw, path.stem, index))
    return items, [p.stem for p in files]


def _suite_item(raw: dict, suite: str, index: int) -> SuiteItem:
    item_id = str(raw.get("id") or f"{suite}#{index}")
    prompt = raw.get("prompt") if isinstance(raw.get("prompt"), str) else None
    extra = raw.get("input") if isinstance(raw.get("input"), str) else None
    messages = [
        m for m in raw.get("messages") or [] if isinstance(m, dict) and isinstance(m.get("content"), str)
    ]
    prompts: list[str] = []
    if prompt:
        prompts.append(prompt)
        if extra:
            prompts.append(f"{prompt}\n\n{extra}")
    user_turns = [m["content"] for m in messages if m.get("role") == "user"]
    if user_turns:
        prompts.append(user_turns[-1])
    texts = [t for t in [prompt, extra] if t] + [m["content"] for m in messages]
    texts += _strings(raw.get("references")) + _strings(raw.get("choices"))
    return SuiteItem(item_id, suite, prompts, texts)


class ContaminationIndex:
    """N-gram and prompt tables of the suites, built once and queried per example."""

    def __init__(
        self, items: Sequence[SuiteItem], suites: Sequence[str] = (), n: int = DEFAULT_NGRAM
    ) -> None:
        if n < 1:
            raise HessError(f"--ngram: must be at least 1, got {n}")
        self.n = n
        self.items = list(items)
        self.suites = list(suites)
        self.prompts: dict[str, str] = {}
        self.grams: dict[tuple[str, ...], str] = {}
        for item in self.items:
            for prompt in item.prompts:
                key = normalise(prompt)
                if key:
                    self.prompts.setdefault(key, item.id)
            for text in item.texts:
                for gram in ngrams(normalise_words(text), n):
                    self.grams.setdefault(gram, item.id)

    @classmethod
    def from_folder(cls, folder: str | Path, n: int = DEFAULT_NGRAM) -> ContaminationIndex:
        items, suites = load_suite_items(folder)
        return cls(items, suites, n)

    def check_example(self, index: int, example: Example) -> list[Finding]:
        findings: list[Finding] = []
        if example.messages is not None:
            texts = [m["content"] for m in example.messages]
            for message in example.messages:
                if message["role"] != "user":
                    continue
                hit = self.prompts.get(normalise(message["content"]))
                if hit:
                    findings.append(Finding(index, example.source, hit, "exact_prompt", message["content"]))
        else:
            texts = [example.text or ""]
        seen = {f.item for f in findings}
        for text in texts:
            for gram in ngrams(normalise_words(text), self.n):
                hit = self.grams.get(gram)
                if hit and hit not in seen:
                    seen.add(hit)
                    findings.append(Finding(index, example.source, hit, "ngram", " ".join(gram)))
        return findings

    def check(self, examples: Sequence[Example]) -> ContaminationReport:
        report = ContaminationReport(len(examples), len(self.items), self.n, self.suites)
        for index, example in enumerate(examples):
            report.findings.extend(self.check_example(index, example))
        return report


def check_examples(
    examples: Sequence[Example], suites_folder: str | Path, n: int = DEFAULT_NGRAM
) -> ContaminationReport:
    return ContaminationIndex.from_folder(suites_folder, n).check(examples)
