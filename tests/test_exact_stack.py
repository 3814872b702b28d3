"""The decoder layers in one kernel call: the per-op forward's bits, and what it refuses."""

from __future__ import annotations

import pytest
import torch

from hessgpt import exact_kernels
from hessgpt.config import get_preset
from hessgpt.exact_stack import DecoderStack
from hessgpt.inference import InferenceModel, Segment
from hessgpt.model import GPT

pytestmark = pytest.mark.skipif(exact_kernels.kernel_problem() is not None,
                                reason=f"{exact_kernels.kernel_problem()}")


def _model(preset: str, **overrides) -> GPT:
    """A tiny model with every parameter random (norm weights and biases included, so each one counts)."""
    torch.manual_seed(0)
    model = GPT(get_preset(preset, **overrides)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2 + (1.0 if p.dim() == 1 else 0.0))
    return model


def _passes(im: InferenceModel) -> list[torch.Tensor]:
    """Logits of two prompt passes (fresh prompts, one continuing its slot; the first long enough that the
    ops between the linears run in several blocks of rows) and then four decoding steps."""
    cache = im.new_cache(3, 100)
    g = torch.Generator().manual_seed(1)
    out = [im.forward(torch.randint(0, 500, (75,), generator=g), [Segment(0, 0, 41), Segment(2, 0, 34)], cache)]
    out.append(im.forward(torch.randint(0, 500, (6,), generator=g), [Segment(1, 0, 1), Segment(2, 34, 5)], cache))
    for step in range(4):
        segments = [Segment(0, 41 + step, 1), Segment(1, 1 + step, 1), Segment(2, 39 + step, 1)]
        out.append(im.forward(torch.randint(0, 500, (3,), generator=g), segments, cache, torch.arange(3)))
    return out


@pytest.mark.parametrize(("preset", "overrides"), [
    ("tiny-gpt2", {}), ("tiny-llama", {}), ("tiny-llama", {"bias": True}),
])
@pytest.mark.parametrize("threads", [1, 2])
def test_one_call_gives_the_bits_of_the_per_op_forward(preset, overrides, threads):
    im = InferenceModel(_model(preset, **overrides), linear="fma")
    assert im.stack is not None  # fp32 fma linears: the default forward is the one call
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        fused = _passes(im)
        im.stack = None
        per_op = _passes(im)
    finally:
        torch.set_num_threads(saved)
    assert all(torch.equal(a, b) for a, b in zip(fused, per_op, strict=True))


def test_int8_linears_keep_the_per_op_forward():
    assert InferenceModel(_model("tiny-llama"), int8=True, linear="fma").stack is None


def test_layers_that_are_not_all_fma_linears_are_refused():
    im = InferenceModel(_model("tiny-llama"), int8=True, linear="fma")
    with pytest.raises(ValueError, match="every linear must be an FmaLinear"):
        DecoderStack(im.layers, "llama", 4, 2, 16, 1e-5, im.rope)


def test_layers_of_other_shapes_than_the_model_says_are_refused():
    im = InferenceModel(_model("tiny-llama"), linear="fma")  # 4 query heads, 2 key heads of 16
    with pytest.raises(ValueError, match="decoder stack: unsupported shapes"):
        DecoderStack(im.layers, "llama", 4, 4, 16, 1e-5, im.rope)
    with pytest.raises(ValueError, match="decoder stack: unsupported shapes"):  # GPT-2 blocks have no gate
        DecoderStack(im.layers, "gpt2", 4, 2, 16, 1e-5, None)


def test_bad_inputs_are_refused_before_the_kernel_reads_memory():
    im = InferenceModel(_model("tiny-llama"), linear="fma")
    cache = im.new_cache(2, 40)
    plan = exact_kernels.RowPlan([0, 1], [0, 0], 2, cache.k[0].shape[2])
    x = torch.randn(2, 64)
    with pytest.raises(ValueError, match=r"decoder stack: unexpected shapes x \(2, 32\)"):
        im.stack.run(x[:, :32].contiguous(), plan, cache.k, cache.v)
    with pytest.raises(ValueError, match="decoder stack: unexpected shapes"):  # one layer's caches missing
        im.stack.run(x, plan, cache.k[:1], cache.v[:1])
    other = im.new_cache(3, 40)  # the plan was made for a 2-slot cache
    with pytest.raises(ValueError, match="decoder stack: unexpected shapes"):
        im.stack.run(x, plan, other.k, other.v)
    # Positions the cache holds but the rotary tables (block_size 256) do not.
    long_cache = im.new_cache(2, 300)
    beyond = exact_kernels.RowPlan([0, 1], [0, 299], 2, long_cache.k[0].shape[2])
    with pytest.raises(ValueError, match="decoder stack: unexpected shapes"):
        im.stack.run(x, beyond, long_cache.k, long_cache.v)
