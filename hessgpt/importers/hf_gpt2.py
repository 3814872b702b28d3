"""Hugging Face GPT-2 weights (``pytorch_model.bin`` or ``model.safetensors`` + ``config.json``).

GPT-2 stores its projections as ``Conv1D`` with (in, out) weights; ours are ``nn.Linear`` (out, in),
so those four matrices are transposed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from hessgpt.config import ModelConfig
from hessgpt.errors import HessError
from hessgpt.importers import Imported, expected_shapes, place_tensors
from hessgpt.memory_budget import check_config_fits

_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
_SKIP = (".attn.bias", ".attn.masked_bias")


def looks_like_hf_gpt2(state: Any) -> bool:
    if not isinstance(state, dict) or not state:
        return False
    keys = [k for k in state if isinstance(k, str)]
    return any(k.endswith("wte.weight") for k in keys) and any(".attn.c_attn." in k for k in keys) \
        and not any(k.startswith("_orig_mod.") for k in keys)


def hf_config(path: Path) -> dict:
    folder = path if path.is_dir() else path.parent
    cfg_path = folder / "config.json"
    if not cfg_path.exists():
        raise HessError(f"{path}: Hugging Face GPT-2 weights need the config.json that came with them "
                        f"(not found in {folder})")
    try:
        return json.loads(cfg_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HessError(f"{cfg_path}: not valid JSON ({exc})") from None


def read_hf_gpt2(state: dict, path: Path) -> Imported:
    from hessgpt.tokenizer import gpt2_tokenizer

    cfg = hf_config(path)
    try:
        config = ModelConfig(
            arch="gpt2", name=str(cfg.get("_name_or_path") or cfg.get("model_type", "gpt2")),
            vocab_size=int(cfg["vocab_size"]), n_layer=int(cfg["n_layer"]), n_head=int(cfg["n_head"]),
            n_embd=int(cfg["n_embd"]), block_size=int(cfg.get("n_positions", cfg.get("n_ctx", 1024))),
            norm_eps=float(cfg.get("layer_norm_epsilon", 1e-5)), bias=True, tie_embeddings=True,
        )
    except KeyError as exc:
        raise HessError(f"{path}: config.json lacks {exc.args[0]!r}") from None
    except (HessError, TypeError, ValueError, OverflowError) as exc:
        raise HessError(f"{path}: config.json: {exc}") from None
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        name = key if key.startswith(("transformer.", "lm_head.")) else f"transformer.{key}"
        if name.endswith(_SKIP):
            continue
        if name.endswith(_CONV1D):
            tensor = tensor.t()
        mapped[name] = tensor.contiguous().float()
    head = mapped.pop("lm_head.weight", None)
    if head is not None and not torch.equal(head, mapped.get("transformer.wte.weight", head)):
        config = ModelConfig.from_dict({**config.to_dict(), "tie_embeddings": False})
        mapped["lm_head.weight"] = head
    check_config_fits(config, mapped, str(path))  # before any module is built for its shapes
    shapes = expected_shapes(config)
    unplaced = [k for k in mapped if k not in shapes]
    for k in unplaced:
        mapped.pop(k)
    place_tensors(shapes, mapped, str(path), unplaced)
    meta = {"source": str(path), "source_format": "hf-gpt2"}
    return Imported(config, mapped, gpt2_tokenizer(), None, meta)
