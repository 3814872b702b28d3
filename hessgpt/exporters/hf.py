"""A Hugging Face folder (``config.json`` + ``model.safetensors``) that ``transformers`` loads as
``GPT2LMHeadModel`` (our ``gpt2`` architecture) or ``LlamaForCausalLM`` (``llama``).

GPT-2 keeps its projections as ``Conv1D`` with (in, out) weights, so those four matrices are
transposed; Llama names map one to one (our Q/K rows already use transformers' RoPE layout).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from hessgpt.errors import HessError

_GPT2_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
_LLAMA_NAMES = (
    (r"^transformer\.wte\.", "model.embed_tokens."),
    (r"^transformer\.ln_f\.", "model.norm."),
    (r"^transformer\.h\.(\d+)\.ln_1\.", r"model.layers.\1.input_layernorm."),
    (r"^transformer\.h\.(\d+)\.ln_2\.", r"model.layers.\1.post_attention_layernorm."),
    (r"^transformer\.h\.(\d+)\.attn\.", r"model.layers.\1.self_attn."),
    (r"^transformer\.h\.(\d+)\.mlp\.", r"model.layers.\1.mlp."),
)


def hf_state_and_config(loaded: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors under transformers' names and the config.json that goes with them."""
    cfg = loaded.config
    state = {k: v.detach().float().contiguous() for k, v in loaded.model.state_dict().items()
             if not k.endswith(".attn.bias") and k != "inv_freq"}
    if cfg.tie_embeddings:
        state.pop("lm_head.weight", None)
    if cfg.arch == "gpt2":
        if not cfg.bias:
            raise HessError("--format hf: a GPT-2 model without biases has no transformers equivalent")
        out = {k: (v.t().contiguous() if k.endswith(_GPT2_CONV1D) else v) for k, v in state.items()}
        config = {
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": cfg.vocab_size,
            "n_positions": cfg.block_size, "n_ctx": cfg.block_size, "n_embd": cfg.n_embd, "n_layer": cfg.n_layer,
            "n_head": cfg.n_head, "layer_norm_epsilon": cfg.norm_eps, "activation_function": "gelu_new",
            "tie_word_embeddings": cfg.tie_embeddings, "torch_dtype": "float32",
        }
    elif cfg.arch == "llama":
        out = {}
        for key, tensor in state.items():
            name = key
            for pattern, repl in _LLAMA_NAMES:
                name = re.sub(pattern, repl, name)
            out[name] = tensor
        config = {
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.n_embd, "num_hidden_layers": cfg.n_layer, "num_attention_heads": cfg.n_head,
            "num_key_value_heads": cfg.n_kv_head or cfg.n_head,
            "intermediate_size": int(out["model.layers.0.mlp.gate_proj.weight"].shape[0]),
            "max_position_embeddings": cfg.block_size, "rms_norm_eps": cfg.norm_eps, "rope_theta": cfg.rope_theta,
            "hidden_act": "silu", "tie_word_embeddings": cfg.tie_embeddings, "attention_bias": False,
            "mlp_bias": False, "torch_dtype": "float32",
        }
    else:
        raise HessError(f"--format hf: architecture {cfg.arch!r} has no transformers equivalent here")
    tok = loaded.tokenizer
    for key, value in (("eos_token_id", tok.eos_id), ("bos_token_id", tok.bos_id)):
        if value is not None:
            config[key] = value
    return out, config


def export_hf(loaded: Any, out: Path) -> list[Path]:
    from safetensors.torch import save_file

    state, config = hf_state_and_config(loaded)
    if out.exists() and not out.is_dir():
        raise HessError(f"--out: {out} is a file; --format hf writes a folder")
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    # Our own tokenizer file travels along: `hessgpt import` / tokenizer_from_dict read it back.
    (out / "hessgpt_tokenizer.json").write_text(json.dumps(loaded.tokenizer.to_dict()) + "\n", encoding="utf-8")
    return [out / "config.json", out / "model.safetensors", out / "hessgpt_tokenizer.json"]
