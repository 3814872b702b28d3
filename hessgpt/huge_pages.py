"""Anonymous mappings for the engine's large buffers: the packed weights on transparent huge pages, the
KV cache on ordinary pages.

A decoding step reads the weights once, in long runs; on 4 KB pages it also needs a page translation
every 4 KB. Linux backs a private anonymous mapping advised with ``MADV_HUGEPAGE`` by 2 MB pages in its
default ``madvise`` mode. Where it does not (transparent huge pages disabled, another OS), the mapping is
ordinary zeroed memory. The KV cache is the opposite case: it is sized for the longest sequence, most
slots hold far fewer positions, and a 2 MB page is taken whole as soon as one position in it is written.
So it asks for ordinary pages (``MADV_NOHUGEPAGE``), and only the pages written take memory. Measured
gains of both: docs/performance.md.
"""

from __future__ import annotations

import mmap

import torch

HUGE_PAGE = 2 << 20


def zeros(floats: int, huge: bool = True) -> torch.Tensor:
    """A flat float32 CPU tensor of ``floats`` zeros that starts on a huge-page boundary, in its own
    mapping: on 2 MB pages where Linux allows with ``huge``, else on 4 KB pages.

    Memory is taken as pages are first written, and the mapping is freed with the last tensor that
    views it."""
    if not hasattr(mmap, "MAP_ANONYMOUS"):  # no anonymous mappings here: ordinary memory
        return torch.zeros(floats)
    mapping = mmap.mmap(-1, floats * 4 + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    advice = getattr(mmap, "MADV_HUGEPAGE" if huge else "MADV_NOHUGEPAGE", None)
    if advice is not None:
        mapping.madvise(advice)
    whole = torch.frombuffer(mapping, dtype=torch.float32)  # keeps the mapping alive
    start = (-whole.data_ptr() % HUGE_PAGE) // 4
    return whole[start : start + floats]
