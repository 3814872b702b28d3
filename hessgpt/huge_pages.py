"""Memory on transparent huge pages for the engine's large streams: the packed weights and the KV cache.

A decoding step reads the weights, then each row's keys and values, once, in long runs; on 4 KB pages
it also needs a page translation every 4 KB. Linux backs a private anonymous mapping advised with
``MADV_HUGEPAGE`` by 2 MB pages in its default ``madvise`` mode. Where it does not (transparent huge
pages disabled, another OS), the mapping is ordinary zeroed memory. Measured gains: docs/performance.md.
"""

from __future__ import annotations

import mmap

import torch

HUGE_PAGE = 2 << 20


def zeros(floats: int) -> torch.Tensor:
    """A flat float32 CPU tensor of ``floats`` zeros that starts on a huge page, in its own mapping.

    The mapping is freed with the last tensor that views it; pages never written cost no memory."""
    if not hasattr(mmap, "MAP_ANONYMOUS"):  # no anonymous mappings here: ordinary memory
        return torch.zeros(floats)
    mapping = mmap.mmap(-1, floats * 4 + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        mapping.madvise(mmap.MADV_HUGEPAGE)
    whole = torch.frombuffer(mapping, dtype=torch.float32)  # keeps the mapping alive
    start = (-whole.data_ptr() % HUGE_PAGE) // 4
    return whole[start : start + floats]
