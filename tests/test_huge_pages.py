"""Anonymous mappings: zeroed, aligned, alive as long as a view of it; the KV cache takes memory as written."""

from __future__ import annotations

import gc
import os

import pytest
import torch

from hessgpt import huge_pages
from hessgpt.config import get_preset
from hessgpt.inference import RaggedCache


def test_zeros_start_on_a_huge_page_and_live_as_long_as_a_view():
    flat = huge_pages.zeros(3_000_000)
    assert flat.dtype == torch.float32 and flat.shape == (3_000_000,) and not flat.any()
    assert flat.data_ptr() % huge_pages.HUGE_PAGE == 0
    flat[-1] = 7.0
    tail = flat[-4:]
    del flat
    gc.collect()
    assert tail.tolist() == [0.0, 0.0, 0.0, 7.0]  # the mapping is still there


def test_a_growing_cache_keeps_what_each_slot_holds():
    config = get_preset("tiny-llama")
    cache = RaggedCache(config, slots=2, max_len=100)
    g = torch.Generator().manual_seed(0)
    before = []
    for k, v in zip(cache.k, cache.v, strict=True):
        k[:, :, :100] = torch.randn(k[:, :, :100].shape, generator=g)
        v[:, :, :100] = torch.randn(v[:, :, :100].shape, generator=g)
        before.append((k[:, :, :100].clone(), v[:, :, :100].clone()))
    cache.grow(300)
    for (k0, v0), k, v in zip(before, cache.k, cache.v, strict=True):
        assert k.shape[2] >= 300 and k.is_contiguous() and v.is_contiguous()
        assert torch.equal(k[:, :, :100], k0) and torch.equal(v[:, :, :100], v0)
        assert not k[:, :, 100:].any() and not v[:, :, 100:].any()


def _resident_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux's /proc")
def test_a_cache_takes_memory_only_for_the_positions_written():
    """Sized for the longest sequence, a cache whose slots hold a few positions must not cost its full
    capacity: 64 slots x 16384 positions is 537 MB here, of which one position per slot is written."""
    config = get_preset("tiny-llama")
    before = _resident_bytes()
    cache = RaggedCache(config, slots=64, max_len=16384)
    full = sum(t.numel() * 4 for t in cache.k + cache.v)
    assert full > 500e6
    for k, v in zip(cache.k, cache.v, strict=True):
        k[:, :, 0] = 1.0
        v[:, :, 0] = 1.0
    assert _resident_bytes() - before < full / 10
    assert float(cache.k[0][:, :, 1:].abs().sum()) == 0.0
