"""Importers turn files from other tools into (config, state dict, tokenizer, template, meta).

Each importer returns an :class:`Imported`; :func:`hessgpt.loading.load_model` picks the importer
from the file's content, never from its name alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from hessgpt.config import ModelConfig
from hessgpt.errors import HessError


@dataclass
class Imported:
    config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    tokenizer: Any  # hessgpt.tokenizer.Tokenizer
    chat_template: str | None
    meta: dict[str, Any] = field(default_factory=dict)


def place_tensors(model_keys: dict[str, tuple[int, ...]], mapped: dict[str, torch.Tensor],
                  source: str, unplaced: list[str], optional: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Check a renamed state dict against the model's keys and shapes, naming what does not fit."""
    problems = []
    if unplaced:
        shown = ", ".join(unplaced[:8]) + (f" (+{len(unplaced) - 8} more)" if len(unplaced) > 8 else "")
        problems.append(f"could not place key(s): {shown}")
    missing = [k for k in model_keys if k not in mapped and k not in optional]
    if missing:
        shown = ", ".join(missing[:6]) + (f" (+{len(missing) - 6} more)" if len(missing) > 6 else "")
        problems.append(f"missing weight(s): {shown}")
    for key, tensor in mapped.items():
        expected = model_keys.get(key)
        if expected is not None and tuple(tensor.shape) != tuple(expected):
            problems.append(f"{key} has shape {tuple(tensor.shape)}, the config expects {tuple(expected)}")
            break
    if problems:
        raise HessError(f"{source}: {'; '.join(problems)}")
    return mapped


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of a GPT built from ``config`` (on the meta device: no memory)."""
    from hessgpt.model import GPT

    with torch.device("meta"):
        model = GPT(config)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if config.tie_embeddings:
        shapes.pop("lm_head.weight", None)
    return shapes
