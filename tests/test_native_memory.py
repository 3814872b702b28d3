"""glibc policy of a long-running server: freed memory goes back, and one heap holds all threads'."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hessgpt.native_memory import _glibc

ROOT = Path(__file__).resolve().parents[1]
THREAD_ALLOCATES = """
import ctypes, sys, threading
from hessgpt.native_memory import return_freed_memory, use_one_malloc_arena
if sys.argv[1] == "one":
    assert use_one_malloc_arena()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
def work():
    blocks = [libc.malloc(4096) for _ in range(100)]
    for block in blocks:
        libc.free(ctypes.c_void_p(block))
thread = threading.Thread(target=work)
thread.start()
thread.join()
assert return_freed_memory()
libc.malloc_stats()  # one "Arena N:" paragraph per heap, on stderr
"""


@pytest.mark.skipif(_glibc() is None, reason="glibc only")
@pytest.mark.parametrize("mode", ["one", "default"])
def test_threads_started_after_use_one_malloc_arena_allocate_from_the_main_heap(mode):
    run = subprocess.run([sys.executable, "-c", THREAD_ALLOCATES, mode], capture_output=True, text=True, timeout=60,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert "Arena 0:" in run.stderr
    # Without the setting a new thread gets a heap of its own, whose top malloc_trim never returns.
    assert ("Arena 1:" in run.stderr) == (mode == "default")
