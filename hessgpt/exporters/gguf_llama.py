"""A GGUF file of a Llama-architecture model (llama.cpp's layout, written with the ``gguf`` package).

The reverse of :mod:`hessgpt.importers.gguf_llama`: tensor names as llama.cpp names them, Q/K rows
interleaved as llama.cpp's converter does, the hyper-parameters under ``llama.*`` and the byte-level
BPE (tokens, types, merges) under ``tokenizer.ggml.*``. Weights are written as F32 by default, so
reading the file back gives the same numbers; F16 halves the file, Q8_0 (llama.cpp's 8-bit blocks)
quarters it, norms staying F32 as llama.cpp expects. GPT-2-architecture models and tokenizers that are
not a byte-level BPE (character, word) are refused with the format to use instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hessgpt.errors import HessError
from hessgpt.importers.gguf_llama import _GLOBAL_NAMES, _LAYER_NAMES
from hessgpt.tokenizer import BYTE_SPELLING, BPETokenizer

_TO_GGUF_LAYER = {ours: theirs for theirs, ours in _LAYER_NAMES.items()}
_TO_GGUF_GLOBAL = {ours: theirs for theirs, ours in _GLOBAL_NAMES.items()}
# llama.cpp's names (tokenizer.ggml.pre) for our pre-tokenizers.
_GGUF_PRE = {"gpt2": "gpt-2", "smollm": "smollm"}
_NORMAL, _CONTROL = 1, 3  # tokenizer.ggml.token_type values
_FILE_TYPE = {"f32": 0, "f16": 1, "q8_0": 7}  # general.file_type (llama.cpp's LlamaFileType)


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's interleaving of the rotary halves in Q/K rows (our layout is rotate-half)."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_name(key: str) -> str:
    if key in _TO_GGUF_GLOBAL:
        return _TO_GGUF_GLOBAL[key]
    parts = key.split(".", 3)  # transformer.h.N.rest
    if len(parts) == 4 and parts[:2] == ["transformer", "h"] and parts[3] in _TO_GGUF_LAYER:
        return f"blk.{int(parts[2])}.{_TO_GGUF_LAYER[parts[3]]}"
    raise HessError(f"--format gguf: tensor {key} has no llama.cpp name")


def byte_level_spelling(data: bytes) -> str:
    return "".join(BYTE_SPELLING[b] for b in data)


def bpe_vocabulary(tokenizer: BPETokenizer) -> tuple[list[str], list[int], list[str]]:
    """(tokens, token types, merges) of a byte-level BPE, in GGUF's (and Hugging Face's) spelling.

    Merges are derived from the ranks as transformers' tiktoken converter does: for each token made
    of several bytes, every split into two tokens of the vocabulary is a merge, ordered by the rank
    of the token it makes, so a merge-ranked BPE reproduces tiktoken's choice of pair at each step."""
    specials = {i for i in range(tokenizer.vocab_size) if tokenizer.is_special(i)}
    raw = [tokenizer.token_bytes(i) for i in range(tokenizer.vocab_size)]
    tokens = [raw[i].decode("utf-8", "replace") if i in specials else byte_level_spelling(raw[i])
              for i in range(tokenizer.vocab_size)]
    types = [_CONTROL if i in specials else _NORMAL for i in range(tokenizer.vocab_size)]
    rank: dict[bytes, int] = {}
    for k, i in enumerate(tokenizer.merge_order):
        rank.setdefault(raw[i], k)
    merges: list[str] = []
    for token in rank:  # in rank order (inserted so)
        splits = [(token[:cut], token[cut:]) for cut in range(1, len(token))
                  if token[:cut] in rank and token[cut:] in rank]
        splits.sort(key=lambda pair: (rank[pair[0]], rank[pair[1]]))
        merges.extend(f"{byte_level_spelling(a)} {byte_level_spelling(b)}" for a, b in splits)
    return tokens, types, merges


def check_exportable(loaded: Any) -> BPETokenizer:
    """The model's tokenizer, once the model is one GGUF's llama layout can hold."""
    cfg, tok = loaded.config, loaded.tokenizer
    if cfg.arch != "llama":
        raise HessError(f"--format gguf: writes Llama-architecture models; this one is {cfg.arch!r}: "
                        "use --format hf (transformers) or --format safetensors")
    if cfg.bias:
        raise HessError("--format gguf: a Llama model with biases has no llama.cpp layout here; "
                        "use --format safetensors")
    if not isinstance(tok, BPETokenizer) or getattr(tok, "pre", None) not in _GGUF_PRE:
        raise HessError(f"--format gguf: GGUF holds a byte-level BPE vocabulary; the {tok.kind} tokenizer "
                        f"{tok.name!r} cannot be written there: use --format safetensors")
    if tok.vocab_size != cfg.vocab_size:
        raise HessError(f"--format gguf: GGUF needs one token per embedding row; the model has "
                        f"{cfg.vocab_size} rows, its tokenizer {tok.vocab_size} ids: use --format safetensors")
    return tok


def _encoded(array: np.ndarray, dtype: str) -> tuple[np.ndarray, Any]:
    """The tensor as written (raw bytes for Q8_0) and its GGML type (None: numpy's dtype says it)."""
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize

    if array.ndim < 2 or dtype == "f32":  # norms stay F32, as llama.cpp reads them
        return array, None
    if dtype == "q8_0" and array.shape[-1] % 32 == 0:  # Q8_0 packs rows in blocks of 32
        return quantize(array, GGMLQuantizationType.Q8_0), GGMLQuantizationType.Q8_0
    return array.astype(np.float16), None  # f16, or a Q8_0 row that does not fill whole blocks


def export_gguf(loaded: Any, out: Path, dtype: str = "f32") -> list[Path]:
    from gguf import GGUFWriter

    from hessgpt.exporters.atomic import replace_with
    from hessgpt.exporters.native_safetensors import native_state

    tok = check_exportable(loaded)
    cfg = loaded.config
    tokens, types, merges = bpe_vocabulary(tok)
    with replace_with(out) as tmp:
        writer = GGUFWriter(tmp, "llama")
        writer.add_name(cfg.name)
        writer.add_file_type(_FILE_TYPE[dtype])
        writer.add_vocab_size(cfg.vocab_size)
        writer.add_context_length(cfg.block_size)
        writer.add_embedding_length(cfg.n_embd)
        writer.add_block_count(cfg.n_layer)
        writer.add_feed_forward_length(cfg.mlp_hidden)
        writer.add_head_count(cfg.n_head)
        writer.add_head_count_kv(cfg.kv_heads)
        writer.add_rope_dimension_count(cfg.head_dim)
        writer.add_rope_freq_base(float(cfg.rope_theta))
        writer.add_layer_norm_rms_eps(float(cfg.norm_eps))
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(_GGUF_PRE[tok.pre])
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(merges)
        for set_id, value in ((writer.add_bos_token_id, tok.bos_id), (writer.add_eos_token_id, tok.eos_id),
                              (writer.add_pad_token_id, tok.pad_id)):
            if value is not None:
                set_id(value)
        writer.add_add_bos_token(False)  # our tokenizer never prepends one
        writer.add_chat_template(loaded.chat_template.source)
        for key, tensor in native_state(loaded).items():
            array = tensor.float().numpy()
            if key.endswith("attn.q_proj.weight"):
                array = _permute(array, cfg.n_head)
            elif key.endswith("attn.k_proj.weight"):
                array = _permute(array, cfg.kv_heads)
            data, raw_dtype = _encoded(np.ascontiguousarray(array, dtype=np.float32), dtype)
            writer.add_tensor(gguf_name(key), data, raw_dtype=raw_dtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return [out]
