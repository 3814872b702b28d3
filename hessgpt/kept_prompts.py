"""Prompts whose computation a generation keeps for a later scoring of the same context.

A bench generates an answer to each item's prompt and then scores the item's reference and choices
after that same prompt (``Engine.loglikelihood``). Both passes compute the prompt's keys, values and
last logits; on the row-exact paths a row's results do not depend on what shares its pass, so the
scoring can copy what the generation computed and get the same bits. The caller names the prompts it
will score (``Engine.keep_prompts``); a generation keeps those it computes, up to a memory budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from hessgpt.memory_budget import available_bytes

# Room for the kept prompts, at most a quarter of the memory available when they are named: SmolLM2's
# full bench keeps 220 prompts, 659 MB (keys and values: 46 KB a token; logits: 196 KB a prompt).
KEPT_PROMPT_BYTES = 1 << 30


@dataclass
class KeptPrompt:
    keys: list[torch.Tensor]  # per layer (kv_heads, length, head_dim)
    values: list[torch.Tensor]
    logits: torch.Tensor  # the last position's logits: they predict the first scored token


class KeptPrompts:
    """The prompts wanted, and those kept so far, within ``max_bytes`` (and a quarter of the memory
    available when they are named)."""

    def __init__(self, max_bytes: int = KEPT_PROMPT_BYTES) -> None:
        self.max_bytes = self.budget = max_bytes
        self._wanted: set[tuple[int, ...]] = set()
        self._kept: dict[tuple[int, ...], KeptPrompt] = {}
        self._bytes = 0

    def want(self, prompts: Iterable[Sequence[int]]) -> None:
        """Keep these prompts from now on (replacing any earlier set, and dropping what was kept)."""
        self._wanted = {tuple(int(t) for t in p) for p in prompts}
        self._kept.clear()
        self._bytes = 0
        self.budget = min(self.max_bytes, available_bytes() // 4) if self._wanted else self.max_bytes

    def wants(self, prompt: Sequence[int]) -> bool:
        key = tuple(prompt)
        return key in self._wanted and key not in self._kept

    def keep(self, prompt: Sequence[int], keys: list[torch.Tensor], values: list[torch.Tensor],
             logits: torch.Tensor) -> None:
        """Keep copies of a wanted prompt's keys and values (per layer, the slot's first positions)
        and its last logits, if they fit in what is left of the budget."""
        size = sum(t.numel() * t.element_size() for t in (*keys, *values)) + logits.numel() * logits.element_size()
        if self._bytes + size > self.budget:
            return
        self._kept[tuple(prompt)] = KeptPrompt([k.clone() for k in keys], [v.clone() for v in values],
                                               logits.clone())
        self._bytes += size

    def get(self, prompt: Sequence[int]) -> KeptPrompt | None:
        return self._kept.get(tuple(prompt))

    def drop(self, prompt: Sequence[int]) -> None:
        """Forget a prompt once it has been scored (its memory goes back)."""
        key = tuple(prompt)
        self._wanted.discard(key)
        kept = self._kept.pop(key, None)
        if kept is not None:
            self._bytes -= sum(t.numel() * t.element_size() for t in (*kept.keys, *kept.values, kept.logits))

    def __len__(self) -> int:
        return len(self._kept)
