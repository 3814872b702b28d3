"""The fma kernels: what it computes, bit for bit, and what it refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hessgpt import exact_kernels, kernels
from hessgpt.errors import HessError

needs_kernel = pytest.mark.skipif(
    exact_kernels.kernel_problem() is not None, reason=f"{exact_kernels.kernel_problem()}"
)


def _widest_panel() -> int:
    return exact_kernels.load_library().fma_linear_widest_panel() if exact_kernels.kernel_problem() is None else 16


# Both tile widths, each checked against the same arithmetic; 32 (AVX-512) only where the CPU has it.
PANEL_WIDTHS = [16, pytest.param(32, marks=pytest.mark.skipif(_widest_panel() < 32, reason="no AVX-512 here"))]


def sequential_fma(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The kernel's arithmetic written out: per output, acc = fma(x[k], w[k], acc) for k ascending.

    fp32 x fp32 is exact in fp64, so fp64 product + sum rounded once to fp32 is the fused operation
    (up to a double rounding that needs an exact fp32 midpoint: never hit by these random inputs)."""
    acc = torch.zeros(x.shape[0], w.shape[0], dtype=torch.float32)
    for k in range(x.shape[1]):
        acc = (x[:, k : k + 1].double() * w[:, k].double() + acc.double()).float()
    return acc


@needs_kernel
@pytest.mark.parametrize("width", PANEL_WIDTHS)
def test_each_output_is_one_fma_chain_in_input_order(width):
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(14, 45, generator=g), torch.randn(37, 45, generator=g)  # 37: a partial last panel
    assert torch.equal(exact_kernels.FmaLinear(w, None, width)(x), sequential_fma(x, w))


@needs_kernel
@pytest.mark.parametrize("width", PANEL_WIDTHS)
@pytest.mark.parametrize("inputs", [1, 45])  # one input: the panels' transpose is already contiguous
def test_a_packed_linear_keeps_its_own_copy_of_the_weight(width, inputs):
    # Whole panels need no padding, so packing starts from the weight itself: training the model
    # afterwards must not change an engine built from it.
    g = torch.Generator().manual_seed(3)
    x, w = torch.randn(6, inputs, generator=g), torch.randn(2 * width, inputs, generator=g)
    linear, expected = exact_kernels.FmaLinear(w, None, width, codes=False), sequential_fma(x, w)
    w.mul_(2.0)
    assert torch.equal(linear(x), expected)


@needs_kernel
@pytest.mark.parametrize("width", PANEL_WIDTHS)
def test_bias_then_residual_are_added_after_the_chain(width):
    g = torch.Generator().manual_seed(2)
    x, w = torch.randn(5, 33, generator=g), torch.randn(20, 33, generator=g)
    bias, residual = torch.randn(20, generator=g), torch.randn(5, 20, generator=g)
    linear = exact_kernels.FmaLinear(w, bias, width)
    assert torch.equal(linear(x), sequential_fma(x, w) + bias)
    assert torch.equal(linear.add_to(x, residual), residual + (sequential_fma(x, w) + bias))


@needs_kernel
@pytest.mark.parametrize("width", PANEL_WIDTHS)
def test_one_row_is_the_same_chain_when_panels_go_in_pairs(width):
    """At one row the AVX-512 tiles take two panels at a time; 330 outputs make chunks of an odd
    number of panels with 1 and 2 threads, so both the pairs and a panel left alone are checked."""
    g = torch.Generator().manual_seed(5)
    x, w = torch.randn(1, 33, generator=g), torch.randn(330, 33, generator=g)
    bias, residual = torch.randn(330, generator=g), torch.randn(1, 330, generator=g)
    linear = exact_kernels.FmaLinear(w, bias, width)
    threads = torch.get_num_threads()
    try:
        for t in (1, 2):
            torch.set_num_threads(t)
            assert torch.equal(linear.add_to(x, residual), residual + (sequential_fma(x, w) + bias)), t
    finally:
        torch.set_num_threads(threads)


@needs_kernel
@pytest.mark.parametrize("width", PANEL_WIDTHS)
def test_a_row_has_the_same_bits_alone_in_any_batch_and_any_thread_count(width):
    g = torch.Generator().manual_seed(3)
    x, w = torch.randn(200, 96, generator=g), torch.randn(130, 96, generator=g)
    linear = exact_kernels.FmaLinear(w, torch.randn(130, generator=g), width)
    alone = torch.cat([linear(x[i : i + 1]) for i in range(len(x))])
    threads = torch.get_num_threads()
    try:
        # tiles of 1-6 (AVX2) and 1-12 (AVX-512) rows; 97 and 200 cross a row block
        for n in (2, 5, 6, 7, 11, 12, 13, 16, 25, 97, 200):
            for t in (1, 2):
                torch.set_num_threads(t)
                assert torch.equal(linear(x[:n]), alone[:n]), (n, t)
    finally:
        torch.set_num_threads(threads)


@needs_kernel
def test_both_tile_widths_give_the_same_bits_on_a_model_sized_weight():
    if _widest_panel() < 32:
        pytest.skip("no AVX-512 here")
    g = torch.Generator().manual_seed(4)
    x, w = torch.randn(40, 576, generator=g), torch.randn(1536, 576, generator=g)
    narrow, wide = exact_kernels.FmaLinear(w, None, 16), exact_kernels.FmaLinear(w, None, 32)
    # one row; 8 rows, split into two groups on AVX-512; two groups; several, the panel cut into pieces
    for rows in (1, 8, 16, 40):
        assert torch.equal(wide(x[:rows]), narrow(x[:rows])), rows


@needs_kernel
def test_a_panel_width_the_cpu_cannot_run_is_refused():
    with pytest.raises(HessError, match="panel width 8 cannot run on this CPU"):
        exact_kernels.FmaLinear(torch.ones(8, 4), None, 8)
    if _widest_panel() < 32:
        with pytest.raises(HessError, match="panel width 32 cannot run on this CPU"):
            exact_kernels.FmaLinear(torch.ones(8, 4), None, 32)


@needs_kernel
def test_bad_inputs_are_refused_before_the_kernel_reads_memory():
    linear = exact_kernels.FmaLinear(torch.ones(8, 4), None)
    with pytest.raises(ValueError, match=r"expected float32 \(rows, 4\)"):
        linear(torch.ones(2, 5))
    with pytest.raises(ValueError, match="expected float32"):
        linear(torch.ones(2, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"residual must be float32 \(2, 8\)"):
        linear.add_to(torch.ones(2, 4), torch.ones(3, 8))
    assert linear(torch.ones(0, 4)).shape == (0, 8)
    assert torch.equal(linear(torch.ones(3, 8)[:, ::2]), torch.full((3, 8), 4.0))  # strided input


def test_without_a_compiler_the_reason_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("HESSGPT_NATIVE_CACHE", str(tmp_path / "cache"))
    exact_kernels.load_library.cache_clear()
    kernels.is_batch_invariant.cache_clear()
    try:
        problem = exact_kernels.kernel_problem()
        fallback = kernels.choose_linear_path("avx2")
        with pytest.raises(HessError, match="^HESSGPT_LINEAR=fma: fma kernels: "):
            kernels.choose_linear_path("avx2", requested="fma")
    finally:
        exact_kernels.load_library.cache_clear()
        kernels.is_batch_invariant.cache_clear()
    assert problem is not None and "\n" not in problem
    assert problem.startswith("fma kernels:")
    assert fallback == "onednn"  # the engine still runs, on the next exact path


@needs_kernel
def test_a_build_is_reused_and_written_atomically(monkeypatch, tmp_path):
    monkeypatch.setenv("HESSGPT_NATIVE_CACHE", str(tmp_path))
    cc = exact_kernels._compiler()
    first = exact_kernels._build(cc)
    mtime = first.stat().st_mtime_ns
    assert exact_kernels._build(cc) == first and first.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary file left behind


def cache_with_keys(slots: int, kv_heads: int, capacity: int, head_dim: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    shape = (slots, kv_heads, capacity, head_dim)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g), g


@needs_kernel
def test_attention_is_softmax_attention_over_each_rows_own_keys():
    k, v, g = cache_with_keys(3, 2, 16, 8, seed=4)
    q = torch.randn(4, 4, 8, generator=g)  # 4 heads share 2 kv heads
    slots, positions = [2, 0, 1, 1], [15, 0, 8, 3]
    out = exact_kernels.attention(q, k, v, exact_kernels.RowPlan(slots, positions, 3, 16))
    for r, (slot, position) in enumerate(zip(slots, positions, strict=True)):
        n = position + 1
        keys, values = k[slot].repeat_interleave(2, dim=0)[:, :n], v[slot].repeat_interleave(2, dim=0)[:, :n]
        weights = torch.softmax(torch.einsum("hd,hjd->hj", q[r].double(), keys.double()), dim=-1)
        expected = torch.einsum("hj,hjd->hd", weights, values.double())
        torch.testing.assert_close(out[r].double(), expected, rtol=1e-5, atol=1e-6)


@needs_kernel
def test_attention_rows_are_independent_of_each_other_and_of_threads():
    k, v, g = cache_with_keys(6, 2, 40, 16, seed=5)
    q = torch.randn(6, 4, 16, generator=g)
    positions = [39, 2, 16, 0, 27, 8]

    def attend(rows: list[int]) -> torch.Tensor:
        plan = exact_kernels.RowPlan(rows, [positions[r] for r in rows], 6, 40)
        return exact_kernels.attention(q[rows].contiguous(), k, v, plan)

    alone = torch.cat([attend([r]) for r in range(6)])
    threads = torch.get_num_threads()
    try:
        for t in (1, 2):
            torch.set_num_threads(t)
            assert torch.equal(attend(list(range(6))), alone)
            assert torch.equal(attend([5, 2, 0]), alone[[5, 2, 0]])
    finally:
        torch.set_num_threads(threads)


@needs_kernel
@pytest.mark.parametrize("capacity, head_dim, first", [(80, 72, 0), (5000, 8, 4970)])
def test_a_prompt_computed_at_once_gives_each_row_the_bits_it_has_alone(capacity, head_dim, first):
    """Prompt rows are attended in blocks that share keys from cache; no row's arithmetic may change:
    across block edges, head sizes that are not a multiple of 64, and blocks cut by the score budget."""
    k, v, g = cache_with_keys(2, 1, capacity, head_dim, seed=9)
    rows = [(0, p) for p in range(first, capacity)] + [(1, capacity - 1), (1, first + 3)]
    q = torch.randn(len(rows), 3, head_dim, generator=g)  # 3 query heads share the key head

    def attend(indices: list[int]) -> torch.Tensor:
        plan = exact_kernels.RowPlan([rows[i][0] for i in indices], [rows[i][1] for i in indices], 2, capacity)
        return exact_kernels.attention(q[indices].contiguous(), k, v, plan)

    alone = torch.cat([attend([i]) for i in range(len(rows))])
    threads = torch.get_num_threads()
    try:
        for t in (1, 2):
            torch.set_num_threads(t)
            assert torch.equal(attend(list(range(len(rows)))), alone)
    finally:
        torch.set_num_threads(threads)
    slot, position = rows[-3]
    weights = torch.softmax(q[-3].double() @ k[slot, 0, : position + 1].double().T, dim=-1)
    torch.testing.assert_close(alone[-3].double(), weights @ v[slot, 0, : position + 1].double(), rtol=1e-5, atol=1e-6)


@needs_kernel
def test_the_kernels_exponential_is_within_one_ulp_and_handles_the_edges():
    x = torch.linspace(-87.3, 88.7, 1_000_001)
    got, exact = exact_kernels.exp(x).double(), torch.exp(x.double())
    assert ((got - exact).abs() / exact).max() < 2**-23  # under one unit in the last place of a float
    edges = torch.tensor([float("-inf"), -100.0, 0.0, 100.0, float("inf"), float("nan")])
    assert exact_kernels.exp(edges)[:5].tolist() == [0.0, 0.0, 1.0, float("inf"), float("inf")]
    assert exact_kernels.exp(edges)[5].isnan()


def test_rows_outside_the_cache_are_refused():
    with pytest.raises(ValueError, match="slot 4, position 3 outside the cache"):
        exact_kernels.RowPlan([4], [3], 4, 16)
    with pytest.raises(ValueError, match="position 16 outside the cache"):
        exact_kernels.RowPlan([0], [16], 4, 16)
    with pytest.raises(ValueError, match="position -1 outside"):
        exact_kernels.RowPlan([0], [-1], 4, 16)


@needs_kernel
def test_activations_rotary_and_layer_norm_match_their_definitions():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(5, 32, generator=g) * 2
    gate, up = x[:, :16].double(), x[:, 16:].double()
    torch.testing.assert_close(exact_kernels.silu_mul(x).double(), gate * torch.sigmoid(gate) * up)
    odd = x[:, :26].contiguous()  # 13 columns: one block of 8, then 5 through the padded tail
    torch.testing.assert_close(exact_kernels.silu_mul(odd).double(),
                               gate[:, :13] * torch.sigmoid(gate[:, :13]) * odd[:, 13:].double())
    xd = x.double()
    gelu = 0.5 * xd * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (xd + 0.044715 * xd**3)))
    torch.testing.assert_close(exact_kernels.gelu_tanh_(x.clone()).double(), gelu)
    w, b = torch.randn(32, generator=g), torch.randn(32, generator=g)
    expected = torch.nn.functional.layer_norm(xd, (32,), w.double(), b.double(), 1e-5)
    torch.testing.assert_close(exact_kernels.layer_norm(x, w, b, 1e-5).double(), expected)
    cos, sin = exact_kernels.rope_tables(10000.0, 8, 50)
    angles = torch.arange(50, dtype=torch.float64)[:, None] / 10000.0 ** (torch.arange(0, 8, 2) / 8)
    torch.testing.assert_close(cos.double(), torch.cos(angles), rtol=0, atol=2e-5)  # float32 angles
    rows = exact_kernels.RowPlan([0, 0], [3, 49], 1, 64)
    pairs = x[:2, :16].double().view(2, 2, 4, 2)
    rotated = exact_kernels.rotary(x[:2], 2, 8, (cos, sin), rows).double().view(2, 2, 4, 2)
    c, s = cos[[3, 49]].double()[:, None], sin[[3, 49]].double()[:, None]
    torch.testing.assert_close(rotated[..., 0], pairs[..., 0] * c - pairs[..., 1] * s)
    torch.testing.assert_close(rotated[..., 1], pairs[..., 0] * s + pairs[..., 1] * c)
    with pytest.raises(ValueError, match="rotary: unexpected shapes"):
        exact_kernels.rotary(x[:2], 2, 8, (cos, sin), exact_kernels.RowPlan([0, 0], [3, 60], 1, 64))


@needs_kernel
def test_rms_norm_matches_its_definition_and_each_row_stands_alone():
    g = torch.Generator().manual_seed(6)
    x, w = torch.randn(9, 40, generator=g) * 3, torch.randn(40, generator=g)
    y = exact_kernels.rms_norm(x, w, 1e-5)
    xd = x.double()
    torch.testing.assert_close(y.double(), xd * torch.rsqrt(xd.pow(2).mean(-1, keepdim=True) + 1e-5) * w.double(),
                               rtol=1e-6, atol=1e-6)
    assert torch.equal(torch.cat([exact_kernels.rms_norm(x[i : i + 1], w, 1e-5) for i in range(9)]), y)
    with pytest.raises(ValueError, match=r"rms norm: unexpected shapes x \(2, 12\)"):
        exact_kernels.rms_norm(torch.ones(2, 12), torch.ones(12), 1e-5)


def probe(capability: str, linear: str) -> str:
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "HESSGPT_LINEAR": linear, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("isa_probe.py"))], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@needs_kernel
def test_logits_do_not_depend_on_the_vector_kernels_torch_picks_for_the_cpu():
    """torch runs different code per ISA (scalar, AVX2, AVX-512); the fma path computes nothing there,
    so its logits are the same bits under each, which is what makes answers match across machines."""
    assert probe("default", "fma") == probe("avx2", "fma")
    # The control: on the oneDNN path torch's own ops (norms, activations, attention) do change.
    assert probe("default", "onednn") != probe("avx2", "onednn")


@needs_kernel
def test_many_small_calls_on_two_threads_give_the_one_thread_bits():
    """The work-sharing pool under churn: thousands of short calls, each must finish with every chunk
    done exactly once (a lost or doubled chunk would change the output or hang)."""
    g = torch.Generator().manual_seed(8)
    linear = exact_kernels.FmaLinear(torch.randn(256, 32, generator=g), None)
    x = torch.randn(3, 32, generator=g)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        expected = linear(x)
        torch.set_num_threads(2)
        assert all(torch.equal(linear(x), expected) for _ in range(3000))
    finally:
        torch.set_num_threads(threads)


@needs_kernel
def test_weights_packed_in_an_arena_give_the_same_bits_in_read_order():
    g = torch.Generator().manual_seed(12)
    weights = [torch.randn(n, k, generator=g) for n, k in ((40, 24), (17, 24), (24, 56))]
    arena = exact_kernels.PackedArena(5000)
    packed = [exact_kernels.FmaLinear(w, None, arena=arena) for w in weights]
    starts = [lin.packed.data_ptr() for lin in packed]
    assert starts == sorted(starts) and all(s % 64 == 0 for s in starts)  # one range, in packing order
    for w, lin in zip(weights, packed, strict=True):
        x = torch.randn(5, w.shape[1], generator=g)
        assert torch.equal(lin(x), exact_kernels.FmaLinear(w, None)(x))


@needs_kernel
def test_an_arena_too_small_is_an_error_not_an_overrun():
    arena = exact_kernels.PackedArena(100)
    with pytest.raises(HessError, match="need more room than the .* bytes left for them"):
        exact_kernels.FmaLinear(torch.randn(40, 24), None, arena=arena)


@needs_kernel
def test_the_engine_packs_every_linear_in_one_arena_in_forward_order():
    from hessgpt.config import get_preset
    from hessgpt.inference import InferenceModel
    from hessgpt.model import GPT

    for preset in ("tiny-gpt2", "tiny-llama"):
        im = InferenceModel(GPT(get_preset(preset)), linear="fma")
        order = [lin for layer in im.layers for lin in (layer.qkv, layer.out, layer.fc, layer.proj)] + [im.lm_head]
        starts = [lin.packed.data_ptr() for lin in order]
        assert starts == sorted(starts)
        assert starts[-1] - starts[0] < sum(lin.packed.numel() * 4 + 64 for lin in order)  # back to back


@needs_kernel
def test_argmax_rows_picks_what_torch_argmax_picks():
    g = torch.Generator().manual_seed(13)
    x = torch.randn(40, 1000, generator=g)
    x[3, 10] = x[3, 500] = 100.0  # equal maxima: the first
    x[4, 7], x[4, 8], x[4, 9] = float("nan"), 1e9, float("nan")  # a NaN wins, the first one
    x[5] = float("-inf")
    x[6] = 0.0
    x[7, 950] = 1e9  # past the columns asked for
    for cols in (1000, 900, 1):
        assert exact_kernels.argmax_rows(x, cols) == x[:, :cols].argmax(dim=-1).tolist()
    assert exact_kernels.argmax_rows(x[:0], 5) == []
    with pytest.raises(ValueError, match="argmax_rows"):
        exact_kernels.argmax_rows(x.double(), 10)
    with pytest.raises(ValueError, match="argmax_rows"):
        exact_kernels.argmax_rows(x, 1001)
