"""GGUF files with the Llama architecture (e.g. SmolLM2), dequantised with the ``gguf`` package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hessgpt.config import ModelConfig
from hessgpt.errors import HessError
from hessgpt.importers import Imported, expected_shapes, place_tensors
from hessgpt.memory_budget import check_config_fits

GGUF_MAGIC = b"GGUF"

_LAYER_NAMES = {
    "attn_norm.weight": "ln_1.weight",
    "ffn_norm.weight": "ln_2.weight",
    "attn_q.weight": "attn.q_proj.weight",
    "attn_k.weight": "attn.k_proj.weight",
    "attn_v.weight": "attn.v_proj.weight",
    "attn_output.weight": "attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
_GLOBAL_NAMES = {
    "token_embd.weight": "transformer.wte.weight",
    "output_norm.weight": "transformer.ln_f.weight",
    "output.weight": "lm_head.weight",
}


def is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == GGUF_MAGIC
    except OSError:
        return False


def _field(reader: Any, key: str, default: Any = None) -> Any:
    field = reader.fields.get(key)
    if field is None:
        return default
    return field.contents()


def _f32_decimal(value: Any) -> float:
    """A float32 field as the shortest decimal it stands for (1e-05, not 9.99999974e-06), so a model
    exported to GGUF and read back has the config it had."""
    return float(str(np.float32(value)))


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's interleaving of the rotary halves in Q/K rows (back to the rotate-half layout)."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def read_gguf(path: Path) -> Imported:
    from gguf import GGUFReader
    from gguf.quants import dequantize

    from hessgpt.tokenizer import gguf_tokenizer

    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # the gguf package raises plain ValueError/struct errors on bad files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise HessError(f"{path}: corrupted or truncated GGUF file ({first}); copy or download it again") from None
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise HessError(f"{path}: GGUF architecture {arch!r} is not supported; give a GGUF of a Llama-architecture model")

    def need(key: str) -> Any:
        value = _field(reader, f"llama.{key}")
        if value is None:
            raise HessError(f"{path}: GGUF metadata field 'llama.{key}' is missing; give a complete model GGUF")
        return value

    names = {t.name for t in reader.tensors}
    tokenizer = gguf_tokenizer(reader)
    try:
        n_embd, n_head = int(need("embedding_length")), int(need("attention.head_count"))
        config = ModelConfig(
            arch="llama",
            name=str(_field(reader, "general.name", path.stem)),
            vocab_size=int(_field(reader, "llama.vocab_size", tokenizer.vocab_size)),
            n_layer=int(need("block_count")),
            n_head=n_head,
            n_kv_head=int(_field(reader, "llama.attention.head_count_kv", n_head)),
            n_embd=n_embd,
            block_size=int(need("context_length")),
            intermediate_size=int(need("feed_forward_length")),
            rope_theta=_f32_decimal(_field(reader, "llama.rope.freq_base", 10000.0)),
            norm_eps=_f32_decimal(_field(reader, "llama.attention.layer_norm_rms_epsilon", 1e-5)),
            bias=False,
            tie_embeddings="output.weight" not in names,
        )
    except HessError as exc:
        raise HessError(f"{path}: GGUF metadata: {str(exc).removeprefix(f'{path}: ')}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise HessError(f"{path}: GGUF metadata: a size field is not a number ({exc})") from None
    check_config_fits(config, None, str(path))  # before dequantising anything
    mapped: dict[str, torch.Tensor] = {}
    unplaced: list[str] = []
    for tensor in reader.tensors:
        target = _GLOBAL_NAMES.get(tensor.name)
        if target is None and tensor.name.startswith("blk."):
            _, layer, rest = tensor.name.split(".", 2)
            if rest in _LAYER_NAMES:
                target = f"transformer.h.{int(layer)}.{_LAYER_NAMES[rest]}"
        if target is None:
            if tensor.name.endswith("rope_freqs.weight"):
                continue  # only present for scaled RoPE variants, which we do not support silently
            unplaced.append(tensor.name)
            continue
        try:
            array = dequantize(tensor.data, tensor.tensor_type)
        except NotImplementedError:
            raise HessError(f"{path}: tensor {tensor.name} uses quantisation {tensor.tensor_type.name}, "
                            f"which the gguf package cannot dequantise; convert the model to F16, Q8_0 or Q4_0") from None
        # A writable float32 copy: torch must own memory it may later write to.
        array = np.array(array, dtype=np.float32, copy=True)
        if tensor.name.endswith("attn_q.weight"):
            array = _unpermute(array, n_head)
        elif tensor.name.endswith("attn_k.weight"):
            array = _unpermute(array, config.kv_heads)
        mapped[target] = torch.from_numpy(np.ascontiguousarray(array))
    mapped = place_tensors(expected_shapes(config), mapped, str(path), unplaced)
    meta = {
        "source": str(path),
        "source_format": "gguf",
        "gguf_name": _field(reader, "general.name"),
        "quantization": sorted({t.tensor_type.name for t in reader.tensors}),
    }
    template = _field(reader, "tokenizer.chat_template")
    return Imported(config, mapped, tokenizer, template, meta)
