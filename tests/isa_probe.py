"""Prints a hash of a tiny model's logits (a prompt, then decoding steps), per architecture.

Run in a subprocess by tests/test_exact_kernels.py under different ATEN_CPU_CAPABILITY values."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hessgpt.inference import InferenceModel, Segment  # noqa: E402
from tests.test_generate_helpers import tiny_loaded  # noqa: E402


def logits_hash(arch: str) -> str:
    loaded = tiny_loaded(arch, seed=3)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # weights from integers: torch's randn itself differs between ISAs
        for p in loaded.model.parameters():
            p.copy_(torch.randint(-4096, 4096, p.shape, generator=g).float() / 8192)
    model = InferenceModel(loaded.model)
    cache = model.new_cache(2, 64)
    tokens = torch.randint(0, 256, (30,), generator=g)
    digest = hashlib.sha256(model.forward(tokens, [Segment(0, 0, 20), Segment(1, 0, 10)], cache).numpy().tobytes())
    for step in range(5):
        segments = [Segment(0, 20 + step, 1), Segment(1, 10 + step, 1)]
        digest.update(model.forward(tokens[step : step + 2], segments, cache).numpy().tobytes())
    return digest.hexdigest()[:16]


if __name__ == "__main__":
    print(" ".join(logits_hash(arch) for arch in ("llama", "gpt2")))
