"""Linear paths chosen per CPU, precision and device: each exact path keeps the engine's contracts."""

from __future__ import annotations

import pytest
import torch
from test_generate import byte_prompts, greedy_requests
from test_generate_helpers import make_checkpoint, tiny_loaded

from hessgpt import kernels
from hessgpt.cli import main
from hessgpt.errors import HessError
from hessgpt.generate import Engine
from hessgpt.inference import InferenceModel, Segment

pytestmark = pytest.mark.usefixtures("one_thread")

NO_GPU = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def near_uniform():
    """Logits almost tied: the hardest case for bit-for-bit batch invariance."""
    return tiny_loaded("llama", scale=1.0, seed=1)


def exact_paths() -> list[str]:
    return [p for p in kernels.EXACT_CPU_PATHS if kernels.is_batch_invariant(p)]


def test_the_default_path_is_an_exact_one_for_this_cpu():
    from hessgpt.machine import describe_machine

    chosen = kernels.choose_linear_path(describe_machine()["isa"])
    assert chosen in exact_paths()  # an exact path exists on every machine these tests run on
    preferred = kernels.PREFERRED_BY_ISA[describe_machine()["isa"]]
    assert preferred.index(chosen) == min(preferred.index(p) for p in exact_paths() if p in preferred)


@pytest.mark.parametrize("path", kernels.EXACT_CPU_PATHS)
def test_each_exact_path_gives_a_row_the_same_logits_in_any_batch(near_uniform, path):
    if not kernels.is_batch_invariant(path):
        pytest.skip(f"{path} is not exact on this machine (the engine never picks it here)")
    model = InferenceModel(near_uniform.model, linear=path)
    prompts = byte_prompts()[:6]
    alone = []
    for p in prompts:
        alone.append(model.forward(torch.tensor(p), [Segment(0, 0, len(p))], model.new_cache(1, 64))[-1])
    tokens = torch.tensor([t for p in prompts for t in p])
    ends = torch.tensor([len(p) for p in prompts]).cumsum(0) - 1
    segments, start = [], 0
    for slot, p in enumerate(prompts):
        segments.append(Segment(slot, 0, len(p)))
        start += len(p)
    together = model.forward(tokens, segments, model.new_cache(len(prompts), 64), ends)
    for i in range(len(prompts)):
        assert torch.equal(together[i], alone[i])


@pytest.mark.parametrize("path", kernels.EXACT_CPU_PATHS)
def test_greedy_outputs_do_not_depend_on_the_batch_size_on_each_exact_path(near_uniform, path):
    if not kernels.is_batch_invariant(path):
        pytest.skip(f"{path} is not exact on this machine")
    outputs = [[r.token_ids for r in Engine(near_uniform, batch_size=b, linear=path).generate(greedy_requests(12))]
               for b in (1, 5, 16)]
    assert outputs[0] == outputs[1] == outputs[2]


def test_the_device_generic_path_on_cpu_gives_the_same_greedy_tokens_as_the_packed_one():
    decisive = tiny_loaded("llama", scale=4.0)
    packed = Engine(decisive, batch_size=1).generate(greedy_requests(16))
    generic = Engine(decisive, batch_size=1, linear="torch").generate(greedy_requests(16))
    assert [r.token_ids for r in generic] == [r.token_ids for r in packed]
    assert Engine(decisive, linear="torch").model.linear_path == "torch"


def test_the_path_precision_and_device_are_part_of_a_bench_run(tmp_path, monkeypatch):
    """Paths round differently: answers stored under one path are never reused under another."""
    from benchmarks.backends.local import LocalBackend

    checkpoint = str(make_checkpoint(tmp_path / "tiny.pt"))
    default = LocalBackend(checkpoint)
    assert not {"precision", "device"} & set(default.identity())
    # The default path adds no key; where fma cannot run, the fallback is named.
    fallback = default.engine.model.linear_path != "fma"
    assert ("linear" in default.identity()) == fallback
    assert default.describe()["backend"]["linear"] == default.engine.model.linear_path
    monkeypatch.setenv(kernels.LINEAR_ENV, "torch")
    assert LocalBackend(checkpoint).identity()["linear"] == "torch"
    monkeypatch.delenv(kernels.LINEAR_ENV)
    bf16 = LocalBackend(checkpoint, precision="bf16")
    assert bf16.identity()["precision"] == "bf16"
    assert bf16.describe()["backend"]["precision"] == "bf16"


def test_override_by_environment_and_refusals(monkeypatch):
    monkeypatch.setenv(kernels.LINEAR_ENV, "torch")
    assert kernels.choose_linear_path("avx2") == "torch"
    monkeypatch.setenv(kernels.LINEAR_ENV, "fast")
    with pytest.raises(HessError, match="HESSGPT_LINEAR: unknown linear path 'fast'"):
        kernels.choose_linear_path("avx2")
    monkeypatch.delenv(kernels.LINEAR_ENV)
    # A path that fails the self-check is never used, even when asked for.
    monkeypatch.setattr(kernels, "is_batch_invariant", lambda path, precision="fp32": path == "mkl-pad4")
    assert kernels.choose_linear_path("avx2") == "mkl-pad4"
    with pytest.raises(HessError, match="not batch-invariant on this machine"):
        kernels.choose_linear_path("avx2", requested="onednn")
    monkeypatch.setattr(kernels, "is_batch_invariant", lambda path, precision="fp32": False)
    assert kernels.choose_linear_path("amx") == "torch"
    assert kernels.choose_linear_path("avx2", device="cuda") == "torch"
    with pytest.raises(HessError, match="only the torch path runs on cuda"):
        kernels.choose_linear_path("avx2", device="cuda", requested="onednn")


def test_bf16_is_close_to_fp32_but_not_equal(near_uniform):
    engine = Engine(near_uniform, precision="bf16")
    assert engine.precision == "bf16"
    fp32 = InferenceModel(near_uniform.model)
    bf16 = engine.model
    tokens, segs = torch.tensor([5, 6, 7, 8]), [Segment(0, 0, 4)]
    a = fp32.forward(tokens, segs, fp32.new_cache(1, 8))
    b = bf16.forward(tokens, segs, bf16.new_cache(1, 8))
    assert not torch.equal(a, b)
    torch.testing.assert_close(a, b, rtol=0.05, atol=0.05)
    assert bf16.weight_bytes() < fp32.weight_bytes()  # the blocks' weights take half the bytes


def test_bad_precision_device_and_combinations_are_one_line_errors(near_uniform):
    with pytest.raises(HessError, match="--precision: must be one of fp32, bf16"):
        Engine(near_uniform, precision="fp16")
    with pytest.raises(HessError, match="--int8: runs on the CPU in fp32 only"):
        Engine(near_uniform, int8=True, precision="bf16")
    assert kernels.resolve_device("auto") == ("cpu" if NO_GPU else "cuda")
    with pytest.raises(HessError, match="--device: must be one of"):
        kernels.resolve_device("tpu")


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU")
def test_device_cuda_without_a_gpu_exits_2_with_one_line(tmp_path, capsys):
    checkpoint = make_checkpoint(tmp_path / "tiny.pt")
    code = main(["generate", "--checkpoint", str(checkpoint), "--prompt", "hi", "--device", "cuda"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["error: --device cuda: torch sees no CUDA GPU on this machine (use --device cpu or auto)"]
    with pytest.raises(HessError, match="--device cuda"):
        Engine(tiny_loaded(), device="cuda")


def test_bench_settings_record_precision_and_device_only_away_from_the_defaults():
    from benchmarks.runner import BenchSettings

    assert not {"precision", "device"} & set(BenchSettings().generation_dict())
    recorded = BenchSettings(precision="bf16", device="cuda").generation_dict()
    assert recorded["precision"] == "bf16" and recorded["device"] == "cuda"


def test_row_buckets_are_few_and_waste_at_most_a_quarter_of_the_rows():
    sizes = kernels.row_buckets(kernels.ROW_CHUNK)
    assert len(sizes) == 28 and sizes[:8] == [1, 2, 3, 4, 6, 8, 12, 16] and sizes[-1] == kernels.ROW_CHUNK
    for n in range(1, kernels.ROW_CHUNK + 1):
        bucket = kernels.row_bucket(n)
        assert bucket in sizes and n <= bucket and bucket - n <= bucket // 4
    assert kernels.row_buckets(16) == [1, 2, 3, 4, 6, 8, 12, 16]


@pytest.mark.parametrize("out_features, in_features", [(96, 64), (960, 576)])
def test_padded_and_chunked_onednn_calls_give_the_bits_of_the_exact_size_call(out_features, in_features):
    """Zero rows added to reach a bucket, and chunks of ROW_CHUNK rows, change no bit of the real rows
    (plain and with the residual add fused), against oneDNN called at the exact row count."""
    if not kernels.is_batch_invariant("onednn"):
        pytest.skip("the oneDNN path is not exact on this machine (the engine never picks it here)")
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(out_features, in_features, generator=generator) / in_features**0.5
    linear = kernels.OneDNNLinear(weight, torch.randn(out_features, generator=generator), torch.float32)
    sizes = [*range(1, 42), 100, 129, 255, 513, 1100] if out_features < 500 else [5, 9, 17, 33, 130, 513]
    for n in sizes:
        x = torch.randn(n, in_features, generator=generator)
        residual = torch.randn(n, out_features, generator=generator)
        exact = torch.ops.mkldnn._linear_pointwise(x, linear.weight, linear.bias, "none", [], "")
        exact_add = torch.ops.mkldnn._linear_pointwise.binary(x, residual, linear.weight, linear.bias, "add")
        assert torch.equal(linear(x), exact), n
        assert torch.equal(linear.add_to(x, residual), exact_add), n


class _Library:
    def __init__(self, widest: int) -> None:
        self.widest = widest

    def fma_linear_widest_panel(self) -> int:
        return self.widest


def test_the_default_batch_size_is_32_only_for_fp32_fma_kernels_on_avx512_with_memory_to_spare(monkeypatch):
    from hessgpt import exact_kernels, memory_budget

    monkeypatch.setattr(kernels, "choose_linear_path", lambda isa: "fma")
    monkeypatch.setattr(memory_budget, "available_bytes", lambda: 16 << 30)
    monkeypatch.setattr(exact_kernels, "load_library", lambda: _Library(32))
    assert kernels.default_batch_size() == kernels.WIDE_BATCH_SIZE == 32
    for other in ({"device": "cuda"}, {"precision": "bf16"}, {"int8": True}):
        assert kernels.default_batch_size(**other) == kernels.BATCH_SIZE == 16, other
    monkeypatch.setattr(exact_kernels, "load_library", lambda: _Library(16))  # AVX2 tiles
    assert kernels.default_batch_size() == 16
    monkeypatch.setattr(exact_kernels, "load_library", lambda: _Library(32))
    monkeypatch.setattr(memory_budget, "available_bytes", lambda: kernels.WIDE_BATCH_MIN_MEMORY - 1)
    assert kernels.default_batch_size() == 16
    monkeypatch.setattr(memory_budget, "available_bytes", lambda: 16 << 30)
    monkeypatch.setattr(kernels, "choose_linear_path", lambda isa: "onednn")
    assert kernels.default_batch_size() == 16


def test_the_bench_resolves_its_batch_size_once_and_keeps_a_chosen_one(monkeypatch, tmp_path):
    from benchmarks.cli import _settings, build_parser

    monkeypatch.setattr(kernels, "default_batch_size", lambda device, precision, int8: 32)
    parse = build_parser().parse_args
    assert _settings(parse(["--checkpoint", "ck.pt"])).batch_size == 32
    assert _settings(parse(["--checkpoint", "ck.pt", "--batch-size", "8"])).batch_size == 8
    # No local model: answers read from a file or asked of a server keep the plain default.
    assert _settings(parse(["--responses", str(tmp_path / "r.jsonl")])).batch_size == kernels.BATCH_SIZE
