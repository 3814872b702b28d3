"""Our own ``.safetensors`` export (``hessgpt export --format safetensors``): tensors under our names,
the config, tokenizer and chat template as JSON strings in the header's metadata.

The metadata is untrusted like the rest of the file: each field is parsed and validated, and the
tensors are checked against the config's names and shapes before any module is built.
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

FORMAT = "hessgpt-safetensors"
VERSIONS = ("1",)


def is_native_safetensors(metadata: dict[str, str] | None) -> bool:
    return bool(metadata) and metadata.get("hessgpt.format") == FORMAT


def _json_field(metadata: dict[str, str], key: str, path: Path) -> Any:
    text = metadata.get(key)
    if not isinstance(text, str):
        raise HessError(f"{path}: safetensors metadata field '{key}' is missing")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise HessError(f"{path}: safetensors metadata field '{key}' is not valid JSON ({exc})") from None


def read_config(metadata: dict[str, str], path: Path) -> ModelConfig:
    version = metadata.get("hessgpt.version")
    if version not in VERSIONS:
        raise HessError(f"{path}: hessgpt.version {version!r} is not supported (known: {', '.join(VERSIONS)}); "
                        "update hessgpt or export the model again")
    cfg = _json_field(metadata, "hessgpt.config", path)
    if not isinstance(cfg, dict):
        raise HessError(f"{path}: safetensors metadata field 'hessgpt.config' must be a JSON object")
    return ModelConfig.from_dict(cfg, source=f"{path}: hessgpt.config")


def check_names(config: ModelConfig, names: dict[str, tuple[int, ...]], path: Path) -> None:
    """Every tensor the config needs, with its shape, and nothing else (from the header alone)."""
    check_config_fits(config, None, str(path))
    shapes = expected_shapes(config)
    # Meta tensors carry a shape and allocate nothing, whatever the header claims.
    found = {k: torch.empty(shape, device="meta") for k, shape in names.items()}
    place_tensors(shapes, found, str(path), [k for k in names if k not in shapes])


def read_native_safetensors(state: dict[str, torch.Tensor], metadata: dict[str, str], path: Path) -> Imported:
    from hessgpt.tokenizer import tokenizer_from_dict

    config = read_config(metadata, path)
    check_names(config, {k: tuple(v.shape) for k, v in state.items()}, path)
    tok_spec = _json_field(metadata, "hessgpt.tokenizer", path)
    if not isinstance(tok_spec, dict):
        raise HessError(f"{path}: safetensors metadata field 'hessgpt.tokenizer' must be a JSON object")
    tokenizer = tokenizer_from_dict(tok_spec, source=f"{path}: hessgpt.tokenizer")
    meta = _json_field(metadata, "hessgpt.meta", path) if "hessgpt.meta" in metadata else {}
    if not isinstance(meta, dict):
        raise HessError(f"{path}: safetensors metadata field 'hessgpt.meta' must be a JSON object")
    template = metadata.get("hessgpt.chat_template") or None
    meta = {**meta, "source": str(path), "source_format": "hessgpt-safetensors"}
    return Imported(config, dict(state), tokenizer, template, meta)
