"""One ``.safetensors`` file with our own tensor names, and the config, tokenizer and chat template in
its metadata: everything ``hessgpt import`` / ``load_model`` needs, with no pickle anywhere.

The header's ``hessgpt.format`` marks the layout; :mod:`hessgpt.importers.native_safetensors` reads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from hessgpt.checkpoint import _plain

FORMAT = "hessgpt-safetensors"
VERSION = "1"
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def native_state(loaded: Any) -> dict[str, torch.Tensor]:
    """The parameters as a native checkpoint stores them (a tied head is the embedding: left out)."""
    state = {k: v.detach().contiguous() for k, v in loaded.model.state_dict().items()}
    if loaded.config.tie_embeddings:
        state.pop("lm_head.weight", None)
    return state


def export_safetensors(loaded: Any, out: Path, dtype: str = "f32") -> list[Path]:
    from safetensors.torch import save_file

    from hessgpt.exporters.atomic import replace_with

    metadata = {
        "format": "pt",
        "hessgpt.format": FORMAT,
        "hessgpt.version": VERSION,
        "hessgpt.config": json.dumps(loaded.config.to_dict()),
        "hessgpt.tokenizer": json.dumps(loaded.tokenizer.to_dict()),
        "hessgpt.chat_template": loaded.chat_template.source,
        "hessgpt.meta": json.dumps(_plain(loaded.meta)),
    }
    with replace_with(out) as tmp:
        state = {k: v.to(DTYPES[dtype]) if v.is_floating_point() else v for k, v in native_state(loaded).items()}
        save_file(state, str(tmp), metadata=metadata)
    return [out]
