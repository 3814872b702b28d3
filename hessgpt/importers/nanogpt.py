"""nanoGPT ``ckpt.pt`` files: ``model_args`` + ``model`` (possibly from ``torch.compile``)."""

from __future__ import annotations

from typing import Any

import torch

from hessgpt.config import ModelConfig
from hessgpt.errors import HessError
from hessgpt.importers import Imported, expected_shapes, place_tensors
from hessgpt.memory_budget import check_config_fits

GPT2_VOCAB = 50257


def looks_like_nanogpt(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("model_args"), dict) and isinstance(obj.get("model"), dict)


def read_nanogpt(obj: dict, source: str, tokenizer: Any = None) -> Imported:
    """``tokenizer`` overrides the one found for the checkpoint (GPT-2, or a ``meta.pkl`` nearby)."""
    args = obj["model_args"]
    try:
        config = ModelConfig(
            arch="gpt2", name="nanogpt", vocab_size=int(args["vocab_size"]), n_layer=int(args["n_layer"]),
            n_head=int(args["n_head"]), n_embd=int(args["n_embd"]), block_size=int(args["block_size"]),
            bias=bool(args.get("bias", True)), dropout=float(args.get("dropout", 0.0)), tie_embeddings=True,
        )
    except KeyError as exc:
        raise HessError(f"{source}: nanoGPT model_args lacks {exc.args[0]!r}") from None
    except (HessError, TypeError, ValueError, OverflowError) as exc:
        raise HessError(f"{source}: nanoGPT model_args: {exc}") from None
    state = {}
    for key, tensor in obj["model"].items():
        key = key.removeprefix("_orig_mod.")
        if key.endswith(".attn.bias") and tensor.dim() == 4:
            continue  # the causal-mask buffer of older nanoGPT versions
        state[key] = tensor
    meta: dict[str, Any] = {"source": source, "source_format": "nanogpt",
                            "step": obj.get("iter_num"), "val_loss": _float(obj.get("best_val_loss"))}
    # nanoGPT pads the GPT-2 vocabulary to 50,304 rows for speed; the extra rows are never produced
    # by the tokenizer, so they are dropped (and could never be decoded anyway).
    if config.vocab_size > GPT2_VOCAB and "transformer.wte.weight" in state:
        meta["vocab_trimmed_from"] = config.vocab_size
        state["transformer.wte.weight"] = state["transformer.wte.weight"][:GPT2_VOCAB].clone()
        if "lm_head.weight" in state:
            state["lm_head.weight"] = state["lm_head.weight"][:GPT2_VOCAB].clone()
        config = ModelConfig.from_dict({**config.to_dict(), "vocab_size": GPT2_VOCAB})
    if "lm_head.weight" in state and "transformer.wte.weight" in state:
        if not torch.equal(state["lm_head.weight"], state["transformer.wte.weight"]):
            config = ModelConfig.from_dict({**config.to_dict(), "tie_embeddings": False})
        else:
            state.pop("lm_head.weight")
    check_config_fits(config, state, source)  # before any module is built for its shapes
    shapes = expected_shapes(config)
    unplaced = [k for k in state if k not in shapes and k != "lm_head.weight"]
    for k in unplaced:
        state.pop(k)
    place_tensors(shapes, state, source, unplaced)
    if tokenizer is None:
        tokenizer = _find_tokenizer(obj, source, config.vocab_size, meta)
    return Imported(config, state, tokenizer, None, meta)


def _find_tokenizer(obj: dict, source: str, vocab_size: int, meta: dict[str, Any]) -> Any:
    """GPT-2 for GPT-2-sized vocabularies; otherwise nanoGPT's meta.pkl beside the checkpoint or in data/."""
    from hessgpt.importers.tokenizer_arg import find_meta_pkl, read_meta_pkl
    from hessgpt.tokenizer import gpt2_tokenizer

    if vocab_size == GPT2_VOCAB:
        return gpt2_tokenizer()
    config = obj.get("config")
    dataset = config.get("dataset") if isinstance(config, dict) else None
    found = find_meta_pkl(source, dataset)
    if found is None:
        raise HessError(f"{source}: a nanoGPT model with a {vocab_size}-id vocabulary (not GPT-2's); no meta.pkl "
                        "found beside it or in data/<dataset>/: pass --tokenizer PATH/meta.pkl")
    meta["tokenizer_from"] = str(found)
    return read_meta_pkl(found)


def _float(value: Any) -> float | None:
    if isinstance(value, torch.Tensor):
        return float(value.item())
    return float(value) if isinstance(value, (int, float)) else None
