"""Giving memory that the process has freed back to the system.

glibc keeps freed blocks in its heaps for reuse and returns a heap's pages only from its top. A
long-running engine allocates and frees tensors of another size at every step (prompts of every
length join a live batch), so the free space ends up scattered below blocks still in use and the
resident size climbs although nothing leaks. ``malloc_trim(0)`` hands every free page of every
heap back (madvise), whatever lies above it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache


@lru_cache(maxsize=1)
def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def return_freed_memory() -> bool:
    """Release the freed pages of every malloc heap; False where the C library cannot."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
