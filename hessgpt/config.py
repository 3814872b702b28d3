"""Model configuration and the named presets.

One dataclass describes every model the project can build. ``arch`` picks the block
family: ``"gpt2"`` (LayerNorm, learned positions, GELU MLP, biases) or ``"llama"``
(RMSNorm, RoPE, SwiGLU, grouped KV heads, no biases).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from hessgpt.errors import HessError

ARCHS = ("gpt2", "llama")

# Upper bounds far above any model this project grades, so a config read from a file cannot ask for
# absurd modules or tables before its weights are even looked at.
LIMITS = {"vocab_size": 1 << 21, "n_layer": 1024, "n_head": 1024, "n_embd": 1 << 16, "block_size": 1 << 20,
          "n_kv_head": 1024, "intermediate_size": 1 << 18}


@dataclass
class ModelConfig:
    arch: str = "gpt2"
    vocab_size: int = 50257
    n_layer: int = 8
    n_head: int = 8
    n_embd: int = 512
    block_size: int = 1024
    dropout: float = 0.0
    bias: bool = True
    tie_embeddings: bool = True
    # Llama-only fields; ignored by GPT-2 blocks.
    n_kv_head: int | None = None
    intermediate_size: int | None = None
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    name: str = "custom"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def mlp_hidden(self) -> int:
        if self.intermediate_size:
            return self.intermediate_size
        if self.arch == "gpt2":
            return 4 * self.n_embd
        # SwiGLU keeps the parameter count of a 4x MLP: 2/3 of 4d, rounded up to 64.
        hidden = int(2 * 4 * self.n_embd / 3)
        return 64 * ((hidden + 63) // 64)

    def validate(self) -> None:
        where = f"model config '{self.name}'"
        if self.arch not in ARCHS:
            raise HessError(f"{where}: arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        for key in ("vocab_size", "n_layer", "n_head", "n_embd", "block_size", "n_kv_head", "intermediate_size"):
            value = getattr(self, key)
            if value is None and key in ("n_kv_head", "intermediate_size"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise HessError(f"{where}: {key} must be a positive integer, got {value!r}")
            if value > LIMITS[key]:
                raise HessError(f"{where}: {key} = {value} is over the limit of {LIMITS[key]}")
        for key in ("norm_eps", "rope_theta"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise HessError(f"{where}: {key} must be a finite number > 0, got {value!r}")
        if self.n_embd % self.n_head:
            raise HessError(f"{where}: n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.n_head % self.kv_heads:
            raise HessError(f"{where}: n_head ({self.n_head}) must be a multiple of n_kv_head ({self.kv_heads})")
        if self.arch == "llama" and self.head_dim % 2:
            raise HessError(f"{where}: RoPE needs an even head dimension, got {self.head_dim}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0.0 <= self.dropout < 1.0:
            raise HessError(f"{where}: dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise HessError(f"{source}: unknown model config field(s): {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise HessError(f"{source}: bad model config: {exc}") from None
        except HessError as exc:
            raise HessError(f"{source}: {exc}") from None


def _gpt2(name: str, **kw: Any) -> ModelConfig:
    return ModelConfig(arch="gpt2", name=name, **kw)


def _llama(name: str, **kw: Any) -> ModelConfig:
    kw.setdefault("bias", False)
    kw.setdefault("tie_embeddings", True)
    kw.setdefault("norm_eps", 1e-5)
    return ModelConfig(arch="llama", name=name, **kw)


# Vocabulary of the dual-model roadmap: a 32k BPE plus 8 special tokens (seed 002).
ROADMAP_VOCAB = 32008

PRESETS: dict[str, ModelConfig] = {
    # The seed model: GPT-2 BPE, d=512, 8 layers, 8 heads, context 1024, dropout 0.05.
    "hessgpt-51m": _gpt2("hessgpt-51m", vocab_size=50257, n_layer=8, n_head=8, n_embd=512,
                         block_size=1024, dropout=0.05),
    # Llama-style models of the dual-model roadmap (seed 002).
    "hessgpt-0.3b-code": _llama("hessgpt-0.3b-code", vocab_size=ROADMAP_VOCAB, n_layer=16, n_head=14,
                                n_kv_head=2, n_embd=896, block_size=2048, rope_theta=10000.0),
    "hessgpt-0.5b": _llama("hessgpt-0.5b", vocab_size=ROADMAP_VOCAB, n_layer=22, n_head=20, n_kv_head=5,
                           n_embd=1280, block_size=2048, rope_theta=10000.0),
    # Tiny sizes for tests and the quick from-scratch model.
    "tiny-gpt2": _gpt2("tiny-gpt2", vocab_size=50257, n_layer=2, n_head=4, n_embd=64, block_size=256),
    "tiny-llama": _llama("tiny-llama", vocab_size=50257, n_layer=2, n_head=4, n_kv_head=2, n_embd=64,
                         block_size=256),
    "hessgpt-tiny": _gpt2("hessgpt-tiny", vocab_size=50257, n_layer=4, n_head=4, n_embd=192,
                          block_size=256, dropout=0.0),
    # The same size with Llama blocks: rotary positions make copying a number (from the question into
    # code, from a tool result into the answer) a matter of relative offsets, which it learns quickly.
    "hessgpt-tiny-llama": _llama("hessgpt-tiny-llama", vocab_size=50257, n_layer=4, n_head=4, n_kv_head=4,
                                 n_embd=192, block_size=256),
    # Half as wide: twice the optimiser steps for the same CPU time, which copying needs more than width.
    "hessgpt-mini-llama": _llama("hessgpt-mini-llama", vocab_size=50257, n_layer=4, n_head=4, n_kv_head=4,
                                 n_embd=128, block_size=256),
}


def get_preset(name: str, source: str = "--preset", **overrides: Any) -> ModelConfig:
    """Return a fresh copy of a named preset, with optional field overrides.

    ``source`` is what the user typed (a flag, or ``preset:NAME``), so an error names it.
    """
    if name not in PRESETS:
        raise HessError(f"{source}: unknown preset {name!r} (known: {', '.join(PRESETS)}); "
                        "`hessgpt presets` lists them")
    data = PRESETS[name].to_dict()
    data.update(overrides)
    return ModelConfig.from_dict(data, source=f"preset {name}")


def count_parameters(config: ModelConfig) -> int:
    """Parameter count computed from the config alone (tied embeddings counted once)."""
    d, v, L = config.n_embd, config.vocab_size, config.n_layer
    hidden = config.mlp_hidden
    emb = v * d
    head = 0 if config.tie_embeddings else v * d
    if config.arch == "gpt2":
        pos = config.block_size * d
        attn = d * 3 * d + 3 * d + d * d + d
        mlp = d * hidden + hidden + hidden * d + d
        norms = 2 * 2 * d
        return emb + pos + head + L * (attn + mlp + norms) + 2 * d
    kv = config.kv_heads * config.head_dim
    attn = d * d + 2 * d * kv + d * d
    mlp = 3 * d * hidden
    return emb + head + L * (attn + mlp + 2 * d) + d
