"""Giving memory that the process has freed back to the system.

glibc keeps freed blocks in its heaps for reuse and returns a heap's pages only from its top. A
long-running engine allocates and frees tensors of another size at every step (prompts of every
length join a live batch), so the free space ends up scattered below blocks still in use and the
resident size climbs although nothing leaks. ``malloc_trim(0)`` hands every free page of every
heap back (madvise), whatever lies above it.

That holds for the main heap only. A thread's first allocation gives it a heap of its own (an
"arena"), and for those ``malloc_trim`` returns the free blocks but not the heap's top, which glibc
keeps while it is below its trim threshold (up to 64 MB once big blocks have been freed). A server's
engine thread left ~57 MB there for hundreds of requests (SmolLM2). ``use_one_malloc_arena`` makes
every thread allocate from the main heap, so the trim reaches all of it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

M_ARENA_MAX = -8  # mallopt parameter (glibc's malloc.h)


@lru_cache(maxsize=1)
def _glibc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    # Both are glibc's own: elsewhere (musl, macOS) there is nothing to tune.
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def use_one_malloc_arena() -> bool:
    """Threads that allocate for the first time from now on share the main heap (one lock, which a
    server's two busy threads hardly contend for). Call it before other threads start, else they
    may have made heaps of their own that later threads reuse; False where the C library cannot."""
    libc = _glibc()
    return libc is not None and libc.mallopt(M_ARENA_MAX, 1) == 1


def return_freed_memory() -> bool:
    """Release the freed pages of every malloc heap; False where the C library cannot."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
