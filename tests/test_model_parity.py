"""Our GPT against transformers' GPT2LMHeadModel and LlamaForCausalLM, the weights moved through our
importers; and the model's own KV cache against a plain forward."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hessgpt.config import ModelConfig
from hessgpt.loading import build_model, load_model
from hessgpt.model import KVCache

transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest

GREEDY_STEPS = 20


def _greedy(model_fn, ids: torch.Tensor, steps: int) -> list[int]:
    out = ids
    for _ in range(steps):
        logits = model_fn(out)
        out = torch.cat([out, logits[:, -1:].argmax(-1)], dim=1)
    return out[0, ids.shape[1] :].tolist()


def _assert_parity(ours: torch.nn.Module, hf: torch.nn.Module, ids: torch.Tensor) -> None:
    with torch.no_grad():
        ref = hf(ids).logits
        got, _ = ours(ids)
        assert torch.allclose(got, ref, atol=1e-5), (got - ref).abs().max()
        mine = _greedy(lambda x: ours(x)[0], ids[:1], GREEDY_STEPS)
        theirs = _greedy(lambda x: hf(x).logits, ids[:1], GREEDY_STEPS)
    assert mine == theirs and len(mine) == GREEDY_STEPS


def _tiny_hf_gpt2():
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=50257, n_positions=64, n_embd=48, n_layer=3, n_head=4,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return transformers.GPT2LMHeadModel(cfg).eval()


def save_hf_gpt2(hf, folder: Path, safe: bool) -> None:
    """``save_pretrained``; transformers >= 5 writes only safetensors, so the ``.bin`` is written as
    transformers 4 wrote it: ``torch.save`` of the state dict, beside the same config.json."""
    hf.save_pretrained(folder)
    if not safe:
        (folder / "model.safetensors").unlink()
        torch.save(hf.state_dict(), folder / "pytorch_model.bin")


@pytest.mark.parametrize("safe", [False, True], ids=["pytorch_model.bin", "model.safetensors"])
def test_gpt2_blocks_match_transformers_through_our_importer(tmp_path, safe):
    hf = _tiny_hf_gpt2()
    save_hf_gpt2(hf, tmp_path, safe)
    weights = tmp_path / ("model.safetensors" if safe else "pytorch_model.bin")
    ids = torch.randint(0, 50257, (2, 17), generator=torch.Generator().manual_seed(1))
    for target in (tmp_path, weights):  # the folder, and the weights file beside its config.json
        loaded = load_model(target)
        assert loaded.meta["source_format"] == "hf-gpt2"
        _assert_parity(loaded.model, hf, ids)


# There is no Hugging Face Llama importer: the Llama weights travel the path our code supports for
# Llama blocks, a GGUF. The test writes it the way llama.cpp's convert_hf_to_gguf.py does (Q and K rows
# permuted for interleaved RoPE), so our GGUF importer must undo that permutation to match transformers;
# transformers reading the same GGUF back checks that the writer, not only our reader, is right.


def _llama_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_llama_gguf(path: Path, hf_model, template: str | None = None) -> Path:
    """A GGUF (all tensors F32) of a ``LlamaForCausalLM`` whose vocabulary is 256 byte tokens, a few
    merges and ``<|endoftext|>`` last; ``llama_tokens()`` gives that vocabulary."""
    import gguf

    cfg = hf_model.config
    tokens = llama_tokens()
    assert cfg.vocab_size == len(tokens)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama-gguf")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    rope = getattr(cfg, "rope_parameters", None) or {"rope_theta": cfg.rope_theta}  # transformers 5 / 4
    writer.add_rope_freq_base(float(rope["rope_theta"]))
    writer.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t.startswith("<|") else 1 for t in tokens])
    writer.add_token_merges(LLAMA_MERGES)
    writer.add_eos_token_id(len(tokens) - 1)
    if template:
        writer.add_chat_template(template)
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    for key, value in hf_model.state_dict().items():
        array = value.detach().float().numpy().copy()
        if key == "model.embed_tokens.weight":
            name = "token_embd.weight"
        elif key == "model.norm.weight":
            name = "output_norm.weight"
        elif key == "lm_head.weight":
            if cfg.tie_word_embeddings:
                continue
            name = "output.weight"
        else:
            _, _, layer, rest = key.split(".", 3)
            module = rest.removesuffix(".weight")
            name = f"blk.{layer}.{names[module]}.weight"
            if module == "self_attn.q_proj":
                array = _llama_permute(array, cfg.num_attention_heads)
            elif module == "self_attn.k_proj":
                array = _llama_permute(array, cfg.num_key_value_heads)
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


LLAMA_MERGES = ["Ġ t", "h e", "Ġt he"]


def llama_tokens() -> list[str]:
    from hessgpt.tokenizer import BYTE_SPELLING

    return [*BYTE_SPELLING, "Ġt", "he", "Ġthe", "<|endoftext|>"]


def tiny_hf_llama(tie: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(vocab_size=len(llama_tokens()), hidden_size=64, intermediate_size=96,
                                   num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=2,
                                   max_position_embeddings=128, rope_theta=1000.0, rms_norm_eps=1e-5,
                                   tie_word_embeddings=tie)
    return transformers.LlamaForCausalLM(cfg).eval()


@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
def test_llama_blocks_match_transformers_through_our_gguf_importer(tmp_path, tie):
    hf = tiny_hf_llama(tie=tie)
    loaded = load_model(write_llama_gguf(tmp_path / "tiny.gguf", hf))
    assert loaded.config.arch == "llama" and loaded.config.kv_heads == 2
    assert loaded.config.tie_embeddings == tie and loaded.config.rope_theta == 1000.0
    ids = torch.randint(0, hf.config.vocab_size, (2, 19), generator=torch.Generator().manual_seed(1))
    _assert_parity(loaded.model, hf, ids)
    again = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file="tiny.gguf",
                                                              dtype=torch.float32).eval()
    with torch.no_grad():
        assert torch.allclose(again(ids).logits, hf(ids).logits, atol=1e-6)
    # and the tokenizer stored in that GGUF gives the model its own ids
    assert loaded.tokenizer.encode(" the") == [llama_tokens().index("Ġthe")]


def test_loss_ignores_minus_100():
    torch.manual_seed(0)
    cfg = ModelConfig(arch="gpt2", vocab_size=50, n_layer=1, n_head=2, n_embd=16, block_size=16)
    model = build_model(cfg, None, "test")
    ids = torch.randint(0, 50, (1, 8))
    targets = ids.clone()
    targets[0, :4] = -100
    logits, loss = model(ids, targets)
    manual = torch.nn.functional.cross_entropy(logits[0, 4:], ids[0, 4:])
    assert torch.allclose(loss, manual)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_kv_cache_chunks_match_full_forward(arch):
    torch.manual_seed(0)
    cfg = ModelConfig(arch=arch, vocab_size=97, n_layer=2, n_head=4, n_kv_head=2 if arch == "llama" else None,
                      n_embd=32, block_size=64, bias=arch == "gpt2")
    model = build_model(cfg, None, "test")
    ids = torch.randint(0, 97, (2, 13))
    with torch.no_grad():
        full, _ = model(ids)
        cache = KVCache(cfg, batch_size=2, max_len=32)
        pieces, start = [], 0
        for size in (5, 1, 4, 1, 2):  # a prefill, single decode steps, and chunks after a cached prefix
            logits, _ = model(ids[:, start : start + size], kv_cache=cache)
            pieces.append(logits)
            start += size
    assert start == ids.shape[1] and cache.length == start
    chunked = torch.cat(pieces, dim=1)
    assert torch.allclose(chunked[:, -1], full[:, -1], atol=1e-5), (chunked - full).abs().max()
    assert torch.allclose(chunked, full, atol=1e-5)
