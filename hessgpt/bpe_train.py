"""Byte-level BPE training in pure Python, fast enough for ~10 MB of text and 8k merges on 2 cores.

The text is split into pre-tokens once with the GPT-2 regex and counted (``word -> count``); the
merges are then learned on the distinct words only. Each merge updates the pair counts locally
(only the words that contain the pair, found through a ``pair -> words`` index) and a heap with lazy
deletion gives the most frequent pair, so no step recounts the whole corpus.

Ids: the 256 bytes are ids 0..255 (id = byte value), merge ``k`` creates id ``256 + k``. Ties between
equally frequent pairs are broken like Hugging Face ``tokenizers`` does (smallest pair first, single
bytes ordered by their GPT-2 byte-level spelling, merged tokens by creation), so training is
deterministic and learns the same merges as that reference on the same pre-tokens.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import regex

from hessgpt.errors import HessError
from hessgpt.tokenizer import (
    BYTE_SPELLING,
    ENDOFTEXT,
    GPT2_PATTERN,
    PRE_TOKENIZERS,
    BPETokenizer,
    clean_text,
    read_texts,
)

_PAIR_SHIFT = 21  # ids < 2**21: a pair (a, b) is packed into one int, which hashes faster than a tuple
_RIGHT_MASK = (1 << _PAIR_SHIFT) - 1
CHUNK_CHARS = 1 << 20

Progress = Callable[[int, int], None]


@dataclass
class BPEModel:
    """What training learns: the bytes of every id and the merges in the order they were learned."""

    tokens: list[bytes]  # id -> bytes; ids 0..255 are the single bytes
    merges: list[tuple[int, int]]  # merge k joins (left, right) into id 256 + k

    def ranks(self) -> dict[bytes, int]:
        """tiktoken's mergeable ranks: the id is the rank, since ids follow the merge order."""
        return {token: i for i, token in enumerate(self.tokens)}


def _safe_cut(text: str, start: int, target: int) -> int:
    """An index near ``target`` where cutting ``text`` cannot change the pre-tokens.

    A cut right after "\\n" that has a non-space on both sides is safe for the GPT-2 regex: the
    newline is a pre-token of its own either way. Returns len(text) when no such place exists.
    """
    if target >= len(text):
        return len(text)
    for match in re.finditer(r"(?<=\S\n)(?=\S)", text[target:]):
        return target + match.start()
    return len(text)


def iter_chunks(text: str, size: int = CHUNK_CHARS) -> Iterable[str]:
    """``text`` in pieces of about ``size`` characters, cut only where pre-tokenization is unaffected."""
    start = 0
    while start < len(text):
        end = _safe_cut(text, start, start + size)
        yield text[start:end]
        start = end


def count_pretokens(
    texts: Iterable[str], pattern: str = GPT2_PATTERN, special_tokens: Sequence[str] = ()
) -> Counter[str]:
    """How often each pre-token occurs. Special-token spellings separate text and are never counted."""
    splitter = regex.compile(pattern)
    specials = (
        re.compile("|".join(map(re.escape, sorted(special_tokens, key=len, reverse=True))))
        if special_tokens
        else None
    )
    counts: Counter[str] = Counter()
    for text in texts:
        parts = specials.split(text) if specials else [text]
        for part in parts:
            for chunk in iter_chunks(part):
                counts.update(splitter.findall(chunk))
    return counts


def learn_merges(
    word_counts: dict[bytes, int],
    n_merges: int,
    min_frequency: int = 2,
    progress: Progress | None = None,
) -> BPEModel:
    """Learn up to ``n_merges`` merges from distinct words (as bytes) and their counts.

    Stops early when no pair occurs at least ``min_frequency`` times. A pair whose joined bytes
    already exist as a token reuses that id and does not count as a merge (ids stay unique bytes).
    """
    # Internally single bytes get ids in the order of their byte-level spelling, so the heap's
    # (count, pair) order breaks ties as the reference does; they are renumbered at the end.
    inner_to_byte = sorted(range(256), key=BYTE_SPELLING.__getitem__)
    byte_to_inner = bytes(sorted(range(256), key=inner_to_byte.__getitem__))
    tokens = [bytes([b]) for b in inner_to_byte]
    token_ids = {token: i for i, token in enumerate(tokens)}
    merges: list[tuple[int, int]] = []
    words: list[list[int]] = []
    freqs: list[int] = []
    for word, count in word_counts.items():
        if len(word) >= 2 and count > 0:
            words.append(list(word.translate(byte_to_inner)))
            freqs.append(count)

    pair_counts: dict[int, int] = {}
    where: dict[int, set[int]] = {}
    for wi, word in enumerate(words):
        f = freqs[wi]
        for i in range(len(word) - 1):
            key = (word[i] << _PAIR_SHIFT) | word[i + 1]
            pair_counts[key] = pair_counts.get(key, 0) + f
            bucket = where.get(key)
            if bucket is None:
                where[key] = {wi}
            else:
                bucket.add(wi)
    heap = [(-count, key) for key, count in pair_counts.items()]
    heapq.heapify(heap)

    steps = 0
    report_every = max(1, n_merges // 100)
    while len(merges) < n_merges and heap:
        neg, key = heapq.heappop(heap)
        count = pair_counts.get(key, 0)
        if count != -neg:
            continue  # stale entry: the pair's count changed after it was pushed
        if count < min_frequency:
            break
        a, b = key >> _PAIR_SHIFT, key & _RIGHT_MASK
        joined = tokens[a] + tokens[b]
        z = token_ids.get(joined)
        if z is None:
            z = len(tokens)
            tokens.append(joined)
            token_ids[joined] = z
            merges.append((a, b))
        delta: dict[int, int] = {}
        for wi in where.pop(key, ()):
            word = words[wi]
            n = len(word)
            if n < 2:
                continue
            f = freqs[wi]
            out: list[int] = []
            i = 0
            found = False
            while i < n:
                if i + 1 < n and word[i] == a and word[i + 1] == b:
                    found = True
                    if out:
                        prev = out[-1]
                        k_old = (prev << _PAIR_SHIFT) | a
                        k_new = (prev << _PAIR_SHIFT) | z
                        delta[k_old] = delta.get(k_old, 0) - f
                        delta[k_new] = delta.get(k_new, 0) + f
                        where.setdefault(k_new, set()).add(wi)
                    if i + 2 < n:
                        # If the next pair merges too, its left update cancels this (z, a) again.
                        nxt = word[i + 2]
                        k_old = (b << _PAIR_SHIFT) | nxt
                        k_new = (z << _PAIR_SHIFT) | nxt
                        delta[k_old] = delta.get(k_old, 0) - f
                        delta[k_new] = delta.get(k_new, 0) + f
                        where.setdefault(k_new, set()).add(wi)
                    out.append(z)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            if found:
                words[wi] = out
        pair_counts.pop(key, None)
        for k, d in delta.items():
            if d == 0 or k == key:
                continue
            c = pair_counts.get(k, 0) + d
            if c > 0:
                pair_counts[k] = c
                heapq.heappush(heap, (-c, k))
            else:
                pair_counts.pop(k, None)
        steps += 1
        if progress is not None and steps % report_every == 0:
            progress(len(merges), n_merges)
    if progress is not None:
        progress(len(merges), n_merges)
    outer = list(inner_to_byte) + list(range(256, len(tokens)))
    return BPEModel(
        [bytes([b]) for b in range(256)] + tokens[256:],
        [(outer[a], outer[b]) for a, b in merges],
    )


def train_bpe_model(
    texts: Iterable[str],
    n_merges: int,
    special_tokens: Sequence[str] = (),
    pattern: str = GPT2_PATTERN,
    min_frequency: int = 2,
    progress: Progress | None = None,
) -> BPEModel:
    """Count pre-tokens of ``texts`` and learn ``n_merges`` byte-level merges on them."""
    counts = count_pretokens(texts, pattern, special_tokens)
    word_counts: dict[bytes, int] = {}
    for word, count in counts.items():
        data = word.encode("utf-8", "surrogatepass")
        word_counts[data] = word_counts.get(data, 0) + count
    return learn_merges(word_counts, n_merges, min_frequency, progress)


def train_bpe(
    text_or_paths: Any,
    vocab_size: int,
    special_tokens: Sequence[str] = (ENDOFTEXT,),
    progress: Callable[[int, int], None] | None = None,
    min_frequency: int = 2,
    pre: str = "gpt2",
) -> BPETokenizer:
    """Train a byte-level BPE whose base vocabulary has ``vocab_size`` ids.

    ``pre`` names the pre-tokenizer: ``gpt2`` (GPT-2's regex) or ``smollm`` (the same, with every
    digit its own piece: a number is spelled the same way wherever it appears, which makes copying
    numbers easy to learn).

    Ids 0..255 are the bytes, then the merges (``vocab_size - 256`` of them, fewer if the text runs
    out of pairs seen ``min_frequency`` times), then ``special_tokens`` above the base vocabulary;
    ``Tokenizer.vocab_size`` counts them all. ``progress(done, total)`` is called during the merges.
    """
    if not isinstance(vocab_size, int) or vocab_size < 256:
        raise HessError(
            f"vocab_size: must be an integer of at least 256 (one id per byte), got {vocab_size!r}"
        )
    if pre not in PRE_TOKENIZERS:
        raise HessError(f"pre-tokenizer {pre!r}: unknown (known: {', '.join(sorted(PRE_TOKENIZERS))})")
    specials = list(dict.fromkeys(special_tokens))
    texts = [clean_text(t) for t in read_texts(text_or_paths)]
    if not any(texts):
        raise HessError("train_bpe: the training text is empty")
    model = train_bpe_model(texts, vocab_size - 256, specials, PRE_TOKENIZERS[pre], min_frequency, progress)
    id_bytes = list(model.tokens)
    special_map = {}
    for spelling in specials:
        special_map[spelling] = len(id_bytes)
        id_bytes.append(spelling.encode("utf-8"))
    return BPETokenizer(
        f"bpe-{vocab_size}", id_bytes, special_map, pre=pre, eos_id=special_map.get(ENDOFTEXT)
    )
