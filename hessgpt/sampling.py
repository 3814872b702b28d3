"""Choosing the next token from one row's logits: penalties, filters and the seeded draw.

Every function works on a single row (a 1-D tensor), so what a row gets never depends on the rows
beside it. The order follows Hugging Face's generate(): repetition penalty, no-repeat n-grams,
minimum length, then temperature, top-k, top-p, and the draw.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence

import torch


def request_seed(seed: int, request_id: str) -> int:
    """A 63-bit seed from (seed, request id): stable across runs, machines and batch layouts."""
    digest = hashlib.sha256(f"{int(seed)}\x00{request_id}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def make_generator(seed: int, request_id: str) -> torch.Generator:
    gen = torch.Generator(device="cpu")
    gen.manual_seed(request_seed(seed, request_id))
    return gen


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty (Keskar et al. 2019, as in transformers): a seen token's logit is divided by
    ``penalty`` when positive and multiplied by it when negative, so penalty > 1 always lowers it."""
    if penalty == 1.0 or seen.numel() == 0:
        return logits
    picked = logits[seen]
    logits = logits.clone()
    logits[seen] = torch.where(picked > 0, picked / penalty, picked * penalty)
    return logits


def banned_ngram_tokens(tokens: Sequence[int], n: int) -> list[int]:
    """Tokens that would complete an n-gram already present in ``tokens`` (no_repeat_ngram_size)."""
    if n <= 0 or len(tokens) < n:
        return []
    prefix = tuple(tokens[len(tokens) - n + 1 :]) if n > 1 else ()
    banned = []
    for i in range(len(tokens) - n + 1):
        if tuple(tokens[i : i + n - 1]) == prefix:
            banned.append(tokens[i + n - 1])
    return banned


class NgramIndex:
    """Incremental version of :func:`banned_ngram_tokens`: (n-1)-gram -> tokens that followed it."""

    def __init__(self, n: int, tokens: Iterable[int] = ()) -> None:
        self.n = n
        self.tokens: list[int] = []
        self.follow: dict[tuple[int, ...], set[int]] = {}
        for t in tokens:
            self.append(t)

    def append(self, token: int) -> None:
        self.tokens.append(token)
        if self.n > 0 and len(self.tokens) >= self.n:
            key = tuple(self.tokens[len(self.tokens) - self.n : -1])
            self.follow.setdefault(key, set()).add(token)

    def banned(self) -> list[int]:
        if self.n <= 0 or len(self.tokens) < self.n - 1:
            return []
        key = tuple(self.tokens[len(self.tokens) - self.n + 1 :]) if self.n > 1 else ()
        return sorted(self.follow.get(key, ()))


def ban(logits: torch.Tensor, tokens: Sequence[int]) -> torch.Tensor:
    if not tokens:
        return logits
    logits = logits.clone()
    logits[torch.tensor(list(tokens), dtype=torch.long)] = -math.inf
    return logits


def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the k largest logits (ties at the k-th value are kept, as in transformers)."""
    if not k or k >= logits.numel():
        return logits
    kth = torch.topk(logits, k).values[-1]
    return logits.masked_fill(logits < kth, -math.inf)


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability mass is >= p.

    Computed in float64 so the boundary case (mass exactly p) is decided by the numbers, not by
    float32 rounding of the cumulative sum."""
    if p >= 1.0:
        return logits
    probs = torch.softmax(logits.double(), dim=-1)
    sorted_probs, order = torch.sort(probs, descending=True, stable=True)
    cumulative = torch.cumsum(sorted_probs, dim=-1)
    # Number of tokens kept: the first index where the running mass reaches p, plus one.
    keep = int(torch.searchsorted(cumulative, torch.tensor([p], dtype=torch.float64) - 1e-12)[0]) + 1
    keep = min(max(keep, 1), logits.numel())
    mask = torch.ones_like(logits, dtype=torch.bool)
    mask[order[:keep]] = False
    return logits.masked_fill(mask, -math.inf)


def draw(logits: torch.Tensor, generator: torch.Generator) -> int:
    """One token from softmax(logits) by inverse CDF with a single uniform from ``generator``.

    Exactly one random number per token keeps a request's stream of draws independent of anything
    else (unlike ``torch.multinomial``, whose consumption of the generator is an implementation detail).
    """
    probs = torch.softmax(logits.double(), dim=-1)
    cumulative = torch.cumsum(probs, dim=-1)
    u = torch.rand((1,), generator=generator, dtype=torch.float64) * cumulative[-1]
    # The first index whose cumulative mass exceeds u; its own probability is then > 0.
    index = int(torch.searchsorted(cumulative, u, right=True)[0])
    if index >= logits.numel():  # u rounded up to the total: take the last possible token
        index = int(torch.nonzero(probs > 0)[-1, 0])
    return index


def choose(
    logits: torch.Tensor,
    *,
    temperature: float,
    top_k: int | None,
    top_p: float,
    generator: torch.Generator | None,
) -> int:
    """The next token from already penalised logits: argmax at temperature 0, else a seeded draw."""
    if temperature == 0.0:
        return int(torch.argmax(logits))
    scaled = logits.double() / temperature
    scaled = top_k_filter(scaled, top_k)
    scaled = top_p_filter(scaled, top_p)
    if generator is None:
        raise ValueError("sampling needs a generator")
    return draw(scaled, generator)
