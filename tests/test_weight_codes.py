"""Weights kept as codes: a model imported from a quantized file runs from its 4- and 8-bit codes with
the same bits as from fp32 panels, and every other weight stays fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, dequantize, quantize
from test_exact_kernels import PANEL_WIDTHS, needs_kernel, sequential_fma
from test_generate_helpers import tiny_loaded

from hessgpt.exact_kernels import FmaLinear
from hessgpt.generate import Engine, GenerationRequest, GenerationSettings
from hessgpt.inference import InferenceModel

pytestmark = [needs_kernel, pytest.mark.usefixtures("one_thread")]

Q4_0, Q4_1, Q8_0 = GGMLQuantizationType.Q4_0, GGMLQuantizationType.Q4_1, GGMLQuantizationType.Q8_0


def gguf_round_trip(w: torch.Tensor, kind: GGMLQuantizationType) -> torch.Tensor:
    """w as the GGUF importer hands it over after a quantizer stored it as ``kind``."""
    data = quantize(w.detach().float().numpy(), kind)
    return torch.from_numpy(np.array(dequantize(data, kind), dtype=np.float32)).view(w.shape)


def quantized_weight(rows: int, cols: int, kind: GGMLQuantizationType, seed: int) -> torch.Tensor:
    return gguf_round_trip(torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)), kind)


# -- the linear ------------------------------------------------------------------------------------


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(a.view(torch.int32), b.view(torch.int32))


@pytest.mark.parametrize("width", PANEL_WIDTHS)
@pytest.mark.parametrize(("kind", "bits"), [(Q4_1, 4), (Q4_0, 4), (Q8_0, 8)])
def test_a_linear_from_codes_gives_the_bits_of_the_fp32_panels(width, kind, bits):
    w = quantized_weight(37, 96, kind, seed=bits)  # 37 outputs: a partial last panel
    if kind == Q4_0:  # d < 0 makes d * (8 - 8) a -0, which the codes rebuild as +0
        assert torch.signbit(w[w == 0]).any()
    g = torch.Generator().manual_seed(3)
    bias = torch.randn(37, generator=g)
    coded, plain = FmaLinear(w, bias, width), FmaLinear(w, bias, width, codes=False)
    assert (coded.bits, plain.bits) == (bits, 0)
    for rows in (1, 2, 4, 5, 7, 13, 33, 97):  # one row, a few, one and several row groups, past 96 rows
        x, residual = torch.randn(rows, 96, generator=g), torch.randn(rows, 37, generator=g)
        assert same_bits(coded(x), plain(x))
        assert same_bits(coded.add_to(x, residual), plain.add_to(x, residual))
    x = torch.randn(3, 96, generator=g)
    assert same_bits(FmaLinear(w, None, width)(x), sequential_fma(x, w))


@pytest.mark.parametrize("width", PANEL_WIDTHS)
def test_codes_are_laid_out_as_documented(width):
    """Each block: nr fp16 d, nr fp16 m, then one row of nibbles per input (output j low, j + nr/2 high)."""
    q = torch.tensor(list(range(16)) * 2, dtype=torch.float32)
    w = (0.25 * q - 1.5).repeat(width, 1)  # every output: d = 0.25, m = -1.5, q = 0..15, 0..15
    linear = FmaLinear(w, None, width)
    assert linear.bits == 4
    block = linear.packed.numpy()
    assert linear.nbytes() == block.size == 4 * width + 32 * width // 2  # one block of 32 inputs
    halves = block[: 4 * width].view(np.float16)
    assert halves[:width].tolist() == [0.25] * width and halves[width:].tolist() == [-1.5] * width
    rows = block[4 * width :].reshape(32, width // 2)
    assert rows[:, 0].tolist() == [k % 16 * 0x11 for k in range(32)]  # the same q in both nibbles


def test_a_coded_weight_reads_five_bits_or_nine_per_weight():
    n, k = 64, 128  # 4 blocks of 32 inputs per output, each with an fp16 d and m (4 bytes)
    assert FmaLinear(quantized_weight(n, k, Q4_1, 1), None).nbytes() == n * k // 2 + n * 4 * 4
    assert FmaLinear(quantized_weight(n, k, Q8_0, 1), None).nbytes() == n * k + n * 4 * 4
    assert FmaLinear(quantized_weight(n, k, Q8_0, 1), None, codes=False).nbytes() == n * k * 4


def test_weights_that_codes_do_not_rebuild_exactly_stay_fp32():
    w = quantized_weight(32, 64, Q4_1, 2)
    nudged = w.clone()
    nudged[5, 40] = torch.nextafter(nudged[5, 40], torch.tensor(1.0))  # one weight, one unit in the last place
    with_nan = w.clone()
    with_nan[0, 0] = float("nan")
    no_whole_blocks = w[:, :48].contiguous()
    for weight in (torch.randn(32, 64), nudged, with_nan, no_whole_blocks):
        linear = FmaLinear(weight, None)
        assert linear.bits == 0 and linear.nbytes() == weight.numel() * 4
    assert FmaLinear(w, None).bits == 4
    assert FmaLinear(w, None, codes=False).bits == 0


# -- the engine ------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def imported(request):
    """A tiny model as if imported from a GGUF: layers in Q4_1, the embedding and output head in Q8_0."""
    loaded = tiny_loaded(request.param, scale=4.0, block_size=128)
    with torch.no_grad():
        for name, p in loaded.model.named_parameters():
            if p.dim() == 2 and "wpe" not in name:
                p.copy_(gguf_round_trip(p, Q8_0 if "wte" in name or "lm_head" in name else Q4_1))
    return loaded


def test_an_imported_model_runs_every_linear_from_codes(imported):
    model = InferenceModel(imported.model, linear="fma")
    linears = [lin for layer in model.layers for lin in (layer.qkv, layer.out, layer.fc, layer.proj)]
    assert [lin.bits for lin in linears] == [4] * len(linears) and model.lm_head.bits == 8
    assert model.stack is not None and model.rows_exact
    plain = InferenceModel(imported.model, linear="fma-fp32")
    assert plain.lm_head.bits == 0 and model.weight_bytes() < plain.weight_bytes() / 3


SETTINGS = [
    GenerationSettings(max_new_tokens=30, ignore_eos=True),
    GenerationSettings(max_new_tokens=30, ignore_eos=True, repetition_penalty=1.3, no_repeat_ngram_size=3),
    GenerationSettings(max_new_tokens=30, temperature=0.8, top_k=40, seed=5),
]
PROMPTS = ["the cat, the cat, the", "abcabcab", "Hello", "1 2 3 1 2", "a much longer prompt than the others, "
           "so that its rows run as several row groups in one pass"]


@pytest.mark.parametrize("settings", SETTINGS, ids=["greedy", "penalties", "sampled"])
def test_answers_from_codes_are_the_answers_from_fp32_panels(imported, settings):
    """Every result field, logprobs included, at batch sizes 1, 3 and 16, guesses on."""
    def answers(linear: str, batch: int) -> list:
        requests = [GenerationRequest(list(p.encode()), settings, request_id=str(i), logprobs=3)
                    for i, p in enumerate(PROMPTS)]
        return Engine(imported, batch_size=batch, linear=linear).generate(requests)

    plain = answers("fma-fp32", 1)
    for batch in (1, 3, 16):
        assert answers("fma", batch) == plain
