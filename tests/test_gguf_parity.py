"""SmolLM2-135M-Instruct from its GGUF: our importer against transformers loading the same file."""

from __future__ import annotations

import pytest
import torch

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "Bonjour, je m'appelle Marie et j'habite à",
    "In 1945, the Second World War",
]


@pytest.fixture(scope="module")
def hf_model(smollm2_gguf):
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name, torch_dtype=torch.float32)
    return model.eval()


def test_smollm2_config(smollm2):
    cfg = smollm2.config
    assert (cfg.arch, cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.kv_heads) == ("llama", 30, 576, 9, 3)
    assert cfg.rope_theta == 100000.0 and cfg.vocab_size == 49152 and cfg.tie_embeddings
    assert smollm2.model.num_parameters() == 134_515_008
    assert "<|im_start|>" in smollm2.chat_template.source


def test_smollm2_logits_and_greedy_match_transformers(smollm2, hf_model):
    tok = smollm2.tokenizer
    for prompt in PROMPTS:
        ids = torch.tensor([tok.encode(prompt)])
        with torch.inference_mode():
            ours = smollm2.model(ids)[0]
            ref = hf_model(ids).logits
        assert (ours - ref).abs().max().item() < 1e-3, prompt
    ids = torch.tensor([tok.encode(PROMPTS[0])])
    with torch.inference_mode():
        ref = hf_model.generate(ids, max_new_tokens=32, do_sample=False)[0, ids.shape[1]:].tolist()
        out = ids
        for _ in range(32):
            nxt = smollm2.model(out)[0][:, -1].argmax(-1, keepdim=True)
            out = torch.cat([out, nxt], dim=1)
    # transformers stops at the end-of-sequence token; up to there both must agree token for token.
    assert out[0, ids.shape[1]:ids.shape[1] + len(ref)].tolist() == ref
    assert len(ref) == 32 or ref[-1] in smollm2.chat_template.end_of_turn_ids
