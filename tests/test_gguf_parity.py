"""SmolLM2-135M-Instruct from its GGUF: our importer against transformers loading the same file.

In the default run (about 30 s on two cores): `make setup` installs the GGUF, and this is the parity
check of the reference model every grade depends on."""

from __future__ import annotations

import inspect

import pytest
import torch

from hessgpt.model import KVCache

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "Bonjour, je m'appelle Marie et j'habite à",
    "In 1945, the Second World War",
]
STEPS = 32

pytestmark = pytest.mark.usefixtures("one_thread")  # ten times faster when the other core is busy


@pytest.fixture(scope="module")
def hf_model(smollm2_gguf):
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name, dtype=torch.float32)
    return model.eval()


def test_smollm2_config(smollm2):
    cfg = smollm2.config
    assert (cfg.arch, cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.kv_heads) == ("llama", 30, 576, 9, 3)
    assert cfg.rope_theta == 100000.0 and cfg.vocab_size == 49152 and cfg.tie_embeddings
    assert smollm2.model.num_parameters() == 134_515_008
    assert "<|im_start|>" in smollm2.chat_template.source


def _ours_greedy(model, ids: torch.Tensor) -> list[int]:
    """Greedy through our model's own KV cache; EOS is not a stop (the raw argmax, STEPS times)."""
    cache = KVCache(model.config, batch_size=1, max_len=ids.shape[1] + STEPS)
    logits = model(ids, kv_cache=cache)[0]
    out: list[int] = []
    for _ in range(STEPS):
        out.append(int(logits[0, -1].argmax()))
        logits = model(torch.tensor([[out[-1]]]), kv_cache=cache)[0]
    return out


def _hf_greedy(model, ids: torch.Tensor) -> list[int]:
    """The same in transformers (its generate() would stop at EOS, which we want to compare past)."""
    # transformers 5 names the cache `cache`; 4.x named it `past_key_values`.
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    result = model(ids, use_cache=True)
    out: list[int] = []
    for _ in range(STEPS):
        out.append(int(result.logits[0, -1].argmax()))
        result = model(torch.tensor([[out[-1]]]), use_cache=True, **{name: getattr(result, name)})
    return out


@pytest.mark.parametrize("prompt", PROMPTS)
def test_smollm2_logits_and_greedy_match_transformers(smollm2, hf_model, prompt):
    ids = torch.tensor([smollm2.tokenizer.encode(prompt)])
    with torch.inference_mode():
        ours = _ours_greedy(smollm2.model, ids)
        theirs = _hf_greedy(hf_model, ids)
        assert ours == theirs, (prompt, smollm2.tokenizer.decode(ours), smollm2.tokenizer.decode(theirs))
        # Logits on the prompt and along the whole continuation, full forward on both sides.
        full = torch.cat([ids, torch.tensor([ours])], dim=1)
        diff = (smollm2.model(full)[0] - hf_model(full).logits).abs().max().item()
    assert diff < 1e-3, (prompt, diff)
    assert len(ours) == STEPS
