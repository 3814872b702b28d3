"""Our GPT against transformers' GPT2LMHeadModel and LlamaForCausalLM on the same random weights."""

from __future__ import annotations

import pytest
import torch

from hessgpt.config import ModelConfig
from hessgpt.importers.hf_gpt2 import _CONV1D
from hessgpt.loading import build_model

transformers = pytest.importorskip("transformers")


def _greedy(model_fn, ids: torch.Tensor, steps: int) -> list[int]:
    out = ids
    for _ in range(steps):
        logits = model_fn(out)
        out = torch.cat([out, logits[:, -1:].argmax(-1)], dim=1)
    return out[0, ids.shape[1]:].tolist()


def test_gpt2_blocks_match_transformers():
    torch.manual_seed(0)
    hf_cfg = transformers.GPT2Config(vocab_size=320, n_positions=64, n_embd=48, n_layer=3, n_head=4,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    hf = transformers.GPT2LMHeadModel(hf_cfg).eval()
    state = {}
    for key, value in hf.state_dict().items():
        if key.endswith((".attn.bias", ".attn.masked_bias")) or key == "lm_head.weight":
            continue
        state[key] = value.t().contiguous() if key.endswith(_CONV1D) else value
    ours = build_model(ModelConfig(arch="gpt2", vocab_size=320, n_layer=3, n_head=4, n_embd=48, block_size=64),
                       state, "test")
    ids = torch.randint(0, 320, (2, 17))
    with torch.no_grad():
        ref = hf(ids).logits
        got, _ = ours(ids)
        assert torch.allclose(got, ref, atol=1e-5), (got - ref).abs().max()
        assert _greedy(lambda x: ours(x)[0], ids[:1], 12) == _greedy(lambda x: hf(x).logits, ids[:1], 12)


def test_llama_blocks_match_transformers():
    torch.manual_seed(0)
    hf_cfg = transformers.LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                                      num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=128,
                                      rope_theta=1000.0, rms_norm_eps=1e-5, tie_word_embeddings=True)
    hf = transformers.LlamaForCausalLM(hf_cfg).eval()
    rename = {"model.embed_tokens.": "transformer.wte.", "model.norm.": "transformer.ln_f.",
              ".self_attn.": ".attn.", ".input_layernorm.": ".ln_1.", ".post_attention_layernorm.": ".ln_2.",
              "model.layers.": "transformer.h."}
    state = {}
    for key, value in hf.state_dict().items():
        if key == "lm_head.weight":
            continue
        for a, b in rename.items():
            key = key.replace(a, b)
        state[key] = value
    cfg = ModelConfig(arch="llama", vocab_size=300, n_layer=3, n_head=8, n_kv_head=2, n_embd=64,
                      intermediate_size=96, block_size=128, rope_theta=1000.0, bias=False)
    ours = build_model(cfg, state, "test")
    ids = torch.randint(0, 300, (2, 19))
    with torch.no_grad():
        ref = hf(ids).logits
        got, _ = ours(ids)
        assert torch.allclose(got, ref, atol=1e-5), (got - ref).abs().max()
        assert _greedy(lambda x: ours(x)[0], ids[:1], 12) == _greedy(lambda x: hf(x).logits, ids[:1], 12)


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
