"""Resident memory of the server's engine alone: a LiveBatch driven in this process, no HTTP.

    python scripts/probe_live_memory.py --requests 400 --max-tokens 12
    ONEDNN_PRIMITIVE_CACHE_CAPACITY=0 python scripts/probe_live_memory.py --exact-rows   # one variable

Feeds the prompts of ``bench_serve.py`` to a ``LiveBatch`` the way the server's scheduler does
(kernels built first, ``--clients`` requests in flight, ``--slots`` rows decoding, freed memory
handed back after each batch's worth of ended requests and whenever the batch runs empty), pauses at
0, 1/8, 1/4, 1/2 and all of the requests and prints there the RSS, glibc's account of its heaps
(bytes in use, free, mmapped; resident heap, anonymous and file-backed memory) and the number of
distinct shapes oneDNN was called with. Environment variables (``ONEDNN_PRIMITIVE_CACHE_CAPACITY``,
``LRU_CACHE_CAPACITY``, ``MALLOC_*``), ``--exact-rows`` and ``--no-build`` change one thing at a time.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_serve import DEFAULT_CHECKPOINT, prompts, resident_by_kind, rss_bytes  # noqa: E402


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_state() -> str:
    """glibc's own account: bytes in use from its heaps, free in its heaps, and in mmapped chunks."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    mb = 1 << 20
    regions = resident_by_kind(os.getpid())
    return (f"malloc in use {info.uordblks / mb:6.1f} free {info.fordblks / mb:6.1f} mmapped {info.hblkhd / mb:6.1f} | "
            + " ".join(f"{k} {v / mb:6.1f}" for k, v in regions.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=64, help="requests in flight (default 64)")
    parser.add_argument("--slots", type=int, default=16, help="rows decoding together (default 16)")
    parser.add_argument("--max-tokens", type=int, default=12)
    parser.add_argument("--exact-rows", action="store_true",
                        help="no row buckets: oneDNN sees every call's own row count")
    parser.add_argument("--no-build", action="store_true",
                        help="no kernels built up front: each is built when a step first needs it")
    args = parser.parse_args()

    import torch

    from hessgpt import kernels
    from hessgpt.generate import Engine, GenerationSettings, LiveBatch
    from hessgpt.loading import load_model
    from hessgpt.native_memory import return_freed_memory

    if args.exact_rows:  # every call at its own row count, as before the buckets
        kernels.row_bucket, kernels.ROW_CHUNK = (lambda n: n), sys.maxsize
    shapes_seen: set[tuple[int, int, bool, int]] = set()  # (in, out, fused add, rows) run by oneDNN
    product = kernels.OneDNNLinear._product

    def counted(self, x, residual):
        shapes_seen.add((self.in_features, self.out_features, residual is not None, x.shape[0]))
        return product(self, x, residual)

    kernels.OneDNNLinear._product = counted
    engine = Engine(load_model(args.checkpoint), batch_size=args.slots, release_model_weights=True)
    settings = GenerationSettings(max_new_tokens=args.max_tokens, temperature=0.0)
    questions = prompts(args.requests)
    requests = [engine.chat_request([{"role": "user", "content": q}], settings) for q in questions]
    live = LiveBatch(engine, args.slots)
    if not (args.exact_rows or args.no_build):
        built = time.perf_counter()
        with torch.inference_mode():
            live.build_kernels()  # as the server's scheduler does before its first step
        print(f"kernels built in {time.perf_counter() - built:.1f} s", flush=True)
    marks = sorted({0, args.requests // 8, args.requests // 4, args.requests // 2, args.requests})
    mb = 1 << 20
    next_request, ended, ended_since_trim = 0, 0, 0
    start = time.perf_counter()
    with torch.inference_mode():
        for mark in marks:
            while ended < mark:
                while next_request < mark and len(live) < args.clients:
                    live.add(next_request, requests[next_request])
                    next_request += 1
                for update in live.step():
                    if update.result is not None:
                        ended += 1
                        ended_since_trim += 1
                if ended_since_trim >= args.slots or not len(live):
                    return_freed_memory()
                    ended_since_trim = 0
            live.step()  # the batch is empty: it lets its cache go, as the scheduler's idle step does
            return_freed_memory()
            print(f"{mark:6d} requests  RSS {rss_bytes(os.getpid()) / mb:7.1f} MB  "
                  f"oneDNN shapes {len(shapes_seen):4d}  {time.perf_counter() - start:6.0f} s", flush=True)
            print("        " + malloc_state(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
