"""The one door: ``load_model(path_or_name)``.

It recognises, from the file's content: native HessGPT checkpoints, nanoGPT ``ckpt.pt``, Hugging Face
GPT-2 weights (``.bin`` / ``.safetensors`` + ``config.json``), GGUF files with the Llama architecture,
and a plain ``{"config": ..., "model_state_dict": ...}`` file written by a user's own HessGPT script.
It also accepts ``preset:NAME`` (a randomly initialised model, seeded) and the name of an imported
checkpoint under ``checkpoints/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hessgpt.chat import ChatTemplate, make_chat_template
from hessgpt.checkpoint import (
    atomic_torch_save,
    build_native,
    is_native,
    read_native,
    safe_torch_load,
    sha256_file,
    sniff,
)
from hessgpt.config import ModelConfig, get_preset
from hessgpt.errors import HessError
from hessgpt.importers import Imported, expected_shapes, place_tensors
from hessgpt.memory_budget import check_config_fits
from hessgpt.model import GPT, rope_inverse_frequencies
from hessgpt.safe_io import check_input_file
from hessgpt.weights_check import check_weights

CHECKPOINT_DIR = Path(os.environ.get("HESSGPT_CHECKPOINTS", "checkpoints"))

SUPPORTED = ("native HessGPT .pt, nanoGPT ckpt.pt, Hugging Face GPT-2 .bin/.safetensors/folder, "
             "GGUF (Llama), a hessgpt .safetensors export, or a .pt holding {'config': ..., 'model_state_dict': ...}")

# Field names a user's own training script may use (seed 002's configs), mapped to ours.
_CONFIG_ALIASES = {
    "embed_dim": "n_embd", "d_model": "n_embd", "num_heads": "n_head", "n_heads": "n_head",
    "num_layers": "n_layer", "n_layers": "n_layer", "max_seq_len": "block_size", "context_length": "block_size",
    "n_kv_heads": "n_kv_head", "num_kv_heads": "n_kv_head", "hidden_dim": "intermediate_size",
}


@dataclass
class LoadedModel:
    model: GPT
    tokenizer: Any
    chat_template: ChatTemplate
    config: ModelConfig
    meta: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    sha256: str | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        """Write a native checkpoint (atomically)."""
        state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        if self.config.tie_embeddings:
            state.pop("lm_head.weight", None)
        merged = {**self.meta, **(meta or {})}
        obj = build_native(self.config.to_dict(), self.tokenizer.to_dict(), self.chat_template.source,
                           state, merged)
        return atomic_torch_save(obj, path)


def build_model(config: ModelConfig, state_dict: dict[str, torch.Tensor] | None, source: str) -> GPT:
    """Create the module and load weights, checking every name and shape first."""
    check_config_fits(config, state_dict, source)
    if state_dict is not None:
        check_weights(state_dict, source)
        shapes = expected_shapes(config)
        place_tensors(shapes, dict(state_dict), source, [k for k in state_dict if k not in shapes])
        with torch.device("meta"):
            model = GPT(config)
        # assign=True adopts the loaded tensors instead of copying them: one copy of the weights in memory.
        # Every weight is there (place_tensors checked); the tied head and the buffers are set below.
        weights = {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
        model.load_state_dict(weights, strict=False, assign=True)
        if config.tie_embeddings:
            model.lm_head.weight = model.transformer.wte.weight
        if config.arch == "llama":
            # Buffers are not in the state dict: recompute them on the real device.
            model.inv_freq = rope_inverse_frequencies(config)
    else:
        model = GPT(config)
    model.eval()
    return model


def _check_vocab(config: ModelConfig, tokenizer: Any, source: str) -> None:
    # Ids above the model's rows are allowed only for special tokens (a char tokenizer's <unk>):
    # generation never samples them and encoding one fails with the id named.
    extra = range(config.vocab_size, tokenizer.vocab_size)
    if extra and not all(tokenizer.is_special(i) for i in extra):
        raise HessError(
            f"{source}: tokenizer/model vocabulary mismatch: the tokenizer has {tokenizer.vocab_size} ids "
            f"but the model only {config.vocab_size} embedding rows; save the checkpoint with the tokenizer "
            f"it was trained with, or set vocab_size to at least {tokenizer.vocab_size}"
        )


def _from_imported(imp: Imported, path: str, sha: str | None, tokenizer: Any = None) -> LoadedModel:
    if tokenizer is not None:
        imp.tokenizer = tokenizer
    _check_vocab(imp.config, imp.tokenizer, path)
    model = build_model(imp.config, imp.state_dict, path)
    template = make_chat_template(imp.chat_template, imp.tokenizer, origin=path)
    return LoadedModel(model, imp.tokenizer, template, imp.config, imp.meta, path, sha)


def _plain_state_dict(obj: dict, path: str) -> Imported:
    """``{"config": {...}, "model_state_dict" | "state_dict" | "model": {...}}`` with our parameter names."""
    from hessgpt.tokenizer import gpt2_tokenizer, tokenizer_from_dict

    cfg = _first_present(obj, ("config", "model_config"))
    key = next(k for k in _STATE_KEYS if isinstance(obj.get(k), dict))
    state = obj[key]
    if not state:
        raise HessError(f"{path}: field '{key}' is empty: the file holds no weights")
    cfg = {_CONFIG_ALIASES.get(k, k): v for k, v in cfg.items()}
    known = set(ModelConfig.__dataclass_fields__)
    config = ModelConfig.from_dict({k: v for k, v in cfg.items() if k in known}, source=path)
    state = {k.removeprefix("_orig_mod.").removeprefix("module."): v for k, v in state.items()}
    if config.tie_embeddings and "lm_head.weight" in state and "transformer.wte.weight" in state:
        if torch.equal(state["lm_head.weight"], state["transformer.wte.weight"]):
            state.pop("lm_head.weight")
        else:
            config = ModelConfig.from_dict({**config.to_dict(), "tie_embeddings": False}, source=path)
    tok_spec = obj.get("tokenizer")
    tokenizer = tokenizer_from_dict(tok_spec, source=path) if isinstance(tok_spec, dict) else gpt2_tokenizer()
    return Imported(config, state, tokenizer, obj.get("chat_template"), {"source": path, "source_format": "state-dict"})


def resolve(path_or_name: str | Path) -> Path:
    """A path, or the name of a checkpoint under checkpoints/ (with or without .pt)."""
    path = Path(path_or_name)
    if path.exists():
        return path
    if os.path.lexists(path):
        check_input_file(path, "checkpoint")  # a dangling link or a loop, named as such
    for candidate in (CHECKPOINT_DIR / str(path_or_name), CHECKPOINT_DIR / f"{path_or_name}.pt"):
        if candidate.exists():
            return candidate
    if str(path_or_name) in ("smollm2", "smollm2-135m-instruct", "reference"):
        raise HessError(f"{path_or_name}: the reference model is not imported yet; run `hessgpt reference`")
    raise HessError(f"{path_or_name}: no such checkpoint file; check the path "
                    f"(a bare name is also looked up in {CHECKPOINT_DIR}/)")


def load_model(path_or_name: str | Path, seed: int = 0, tokenizer: Any = None) -> LoadedModel:
    """Load any supported model file (or ``preset:NAME``) as a :class:`LoadedModel` in eval mode.

    ``tokenizer`` replaces the one the file holds or implies (``hessgpt import --tokenizer``)."""
    text = str(path_or_name)
    if text.startswith("preset:"):
        from hessgpt.tokenizer import gpt2_tokenizer

        config = get_preset(text.removeprefix("preset:"), source=text)
        tokenizer = gpt2_tokenizer()
        _check_vocab(config, tokenizer, text)
        torch.manual_seed(seed)
        model = GPT(config).eval()
        return LoadedModel(model, tokenizer, make_chat_template(None, tokenizer), config,
                           {"source": text, "random_init_seed": seed}, text, None)

    from hessgpt.importers.gguf_llama import read_gguf

    path, kind = _model_file(path_or_name)
    sha = sha256_file(path)
    if kind == "gguf":
        return _from_imported(read_gguf(path), str(path), sha, tokenizer)
    if kind == "safetensors":
        return _load_safetensors(path, sha, tokenizer)
    obj = safe_torch_load(path)
    return _load_object(obj, path, sha, tokenizer)


def probe_model(path_or_name: str | Path) -> tuple[Path | None, dict[str, Any]]:
    """Check cheaply that :func:`load_model` can open this, without building the model.

    Reads what recognising the format needs (torch files are memory-mapped, GGUF and safetensors
    headers only) and checks a native file's tensor names and shapes against its config. Returns
    the file (None for ``preset:NAME``) and its training metadata; fails with load_model's errors.
    """
    text = str(path_or_name)
    if text.startswith("preset:"):
        get_preset(text.removeprefix("preset:"), source=text)
        return None, {}
    path, kind = _model_file(path_or_name)
    if kind == "gguf":
        from gguf import GGUFReader

        try:
            GGUFReader(str(path))  # memory-mapped: parses the header and tensor table only
        except Exception as exc:  # the reader fails in many ways on a damaged file
            first = str(exc)[:160] or type(exc).__name__
            raise HessError(f"{path}: corrupted or truncated GGUF file ({first}); copy or save it again") from None
        return path, {}
    if kind == "safetensors":
        from safetensors import SafetensorError, safe_open

        from hessgpt.importers.native_safetensors import check_names, is_native_safetensors, read_config

        try:
            with safe_open(str(path), framework="pt") as fh:
                names = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
                metadata = fh.metadata()
        except (SafetensorError, OSError) as exc:
            raise HessError(f"{path}: corrupted or truncated safetensors file ({exc}); copy or save it again") \
                from None
        if is_native_safetensors(metadata):
            check_names(read_config(metadata, path), names, path)
            return path, {}
        _check_safetensors_names(dict.fromkeys(names), path)
        return path, {}
    obj = safe_torch_load(path)
    layout = _layout(obj)
    if layout is None:
        raise _unrecognised(obj, path)
    return path, check_native(obj, path) if layout == "native" else {}


def check_native(obj: dict[str, Any], path: Path) -> dict[str, Any]:
    """A native checkpoint's metadata, once its tensor names and shapes match its config."""
    cfg, _tokenizer, _template, meta, state = read_native(obj, path)
    config = ModelConfig.from_dict(cfg, source=f"{path}: config")
    check_config_fits(config, state, str(path))
    shapes = expected_shapes(config)
    place_tensors(shapes, state, str(path), [k for k in state if k not in shapes])
    return dict(meta)


def _model_file(path_or_name: str | Path) -> tuple[Path, str]:
    """The file a path or checkpoint name stands for, and its format read from its first bytes."""
    path = resolve(path_or_name)
    if path.is_dir():
        path = _hf_folder_file(path)
    check_input_file(path, "checkpoint")
    if path.stat().st_size == 0:
        raise HessError(f"{path}: the file is empty (0 bytes); copy or save it again")
    kind = sniff(path)
    if kind is None and path.suffix == ".safetensors":
        raise HessError(f"{path}: not a valid safetensors file (its header is damaged); "
                        "copy or save it again")
    if kind is None:
        raise HessError(f"{path}: file format not recognised; supported: {SUPPORTED}")
    return path, kind


def _layout(obj: Any) -> str | None:
    """Which kind of torch.save content this is: native, nanogpt, hf_gpt2, state_dict, or None."""
    from hessgpt.importers.hf_gpt2 import looks_like_hf_gpt2
    from hessgpt.importers.nanogpt import looks_like_nanogpt

    if is_native(obj):
        return "native"
    if looks_like_nanogpt(obj):
        return "nanogpt"
    if looks_like_hf_gpt2(obj):
        return "hf_gpt2"
    if (isinstance(obj, dict) and isinstance(_first_present(obj, ("config", "model_config")), dict)
            and any(isinstance(obj.get(k), dict) for k in _STATE_KEYS)):
        return "state_dict"
    return None


_STATE_KEYS = ("model_state_dict", "state_dict", "model")


def _first_present(obj: dict, keys: tuple[str, ...]) -> Any:
    """The value of the first of ``keys`` the dict holds (even when it is empty)."""
    return next((obj[k] for k in keys if k in obj), None)


def _unrecognised(obj: Any, path: Path) -> HessError:
    if isinstance(obj, dict) and obj.get("format") == "hessgpt-lora":
        return HessError(f"{path}: a LoRA adapter, not a model; merge it first with `hessgpt lora merge`")
    if isinstance(obj, dict):
        keys = ", ".join(list(map(str, obj))[:8])
        return HessError(f"{path}: unrecognised checkpoint layout (top-level keys: {keys}); supported: {SUPPORTED}")
    return HessError(f"{path}: unrecognised checkpoint content (a {type(obj).__name__}); supported: {SUPPORTED}")


def _load_object(obj: Any, path: Path, sha: str, tokenizer: Any = None) -> LoadedModel:
    from hessgpt.importers.hf_gpt2 import read_hf_gpt2
    from hessgpt.importers.nanogpt import read_nanogpt
    from hessgpt.tokenizer import tokenizer_from_dict

    source = str(path)
    layout = _layout(obj)
    if layout == "native":
        cfg, tok_spec, template, meta, state = read_native(obj, path)
        config = ModelConfig.from_dict(cfg, source=f"{path}: config")
        own = tokenizer_from_dict(tok_spec, source=f"{path}: tokenizer")
        return _from_imported(Imported(config, state, own, template or None, meta), source, sha, tokenizer)
    if layout == "nanogpt":
        return _from_imported(read_nanogpt(obj, source, tokenizer), source, sha)
    if layout == "hf_gpt2":
        return _from_imported(read_hf_gpt2(obj, path), source, sha, tokenizer)
    if layout == "state_dict":
        return _from_imported(_plain_state_dict(obj, source), source, sha, tokenizer)
    raise _unrecognised(obj, path)


def _check_safetensors_names(state: dict[str, Any], path: Path) -> None:
    from hessgpt.importers.hf_gpt2 import looks_like_hf_gpt2

    if not looks_like_hf_gpt2(state):
        raise HessError(f"{path}: safetensors file with unrecognised tensor names (e.g. {', '.join(list(state)[:4])}); "
                        "only Hugging Face GPT-2 weights and `hessgpt export --format safetensors` files are read from safetensors")


def _load_safetensors(path: Path, sha: str, tokenizer: Any = None) -> LoadedModel:
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    from hessgpt.importers.hf_gpt2 import read_hf_gpt2
    from hessgpt.importers.native_safetensors import is_native_safetensors, read_native_safetensors

    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata()
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise HessError(f"{path}: corrupted or truncated safetensors file ({first}); copy or save it again") from None
    if is_native_safetensors(metadata):
        return _from_imported(read_native_safetensors(state, metadata, path), str(path), sha, tokenizer)
    _check_safetensors_names(state, path)
    return _from_imported(read_hf_gpt2(state, path), str(path), sha, tokenizer)


def _hf_folder_file(path: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (path / name).exists():
            return path / name
    raise HessError(f"{path}: folder has neither model.safetensors nor pytorch_model.bin; "
                    "give a Hugging Face GPT-2 folder or a model file")
