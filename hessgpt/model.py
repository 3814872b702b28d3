"""One decoder-only transformer, readable top to bottom.

The config chooses the block family:
- ``gpt2``: LayerNorm, learned positions, GELU MLP, biases (module names follow nanoGPT / Hugging Face
  so importers are a rename plus a few transposes);
- ``llama``: RMSNorm, rotary positions (configurable theta), SwiGLU MLP, grouped KV heads, no biases.

``forward`` accepts an optional :class:`KVCache` plus per-row positions and a key padding mask, which is
all the inference engine needs for batched, left-padded decoding.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from hessgpt.config import ModelConfig

IGNORE_INDEX = -100


class KVCache:
    """Preallocated keys and values for every layer: (batch, kv_heads, max_len, head_dim).

    All rows share one write position (left padding keeps them aligned), so a decode step writes
    one slice per layer and never reallocates.
    """

    def __init__(self, config: ModelConfig, batch_size: int, max_len: int,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> None:
        shape = (batch_size, config.kv_heads, max_len, config.head_dim)
        self.k = [torch.empty(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.v = [torch.empty(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.max_len = max_len
        self.length = 0  # positions filled so far (advanced once per forward, after the last layer)

    @property
    def batch_size(self) -> int:
        return self.k[0].shape[0]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.length, self.length + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"KV cache overflow: {end} positions > capacity {self.max_len}")
        self.k[layer][:, :, start:end] = k
        self.v[layer][:, :, start:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def reorder(self, index: torch.Tensor) -> None:
        """Select rows (beam search): row i becomes old row index[i]."""
        for layer in range(len(self.k)):
            self.k[layer] = self.k[layer].index_select(0, index)
            self.v[layer] = self.v[layer].index_select(0, index)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_inverse_frequencies(config: ModelConfig) -> torch.Tensor:
    """Rotary embedding's inverse frequencies, 1 / theta^(2i / head_dim), (head_dim / 2,) float32."""
    return 1.0 / (config.rope_theta ** (torch.arange(0, config.head_dim, 2).float() / config.head_dim))


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.arch = config.arch
        self.n_head, self.n_kv = config.n_head, config.kv_heads
        self.head_dim = config.head_dim
        d, kv_dim = config.n_embd, config.kv_heads * config.head_dim
        if config.arch == "gpt2":
            self.c_attn = nn.Linear(d, 3 * d, bias=config.bias)
            self.c_proj = nn.Linear(d, d, bias=config.bias)
        else:
            self.q_proj = nn.Linear(d, d, bias=config.bias)
            self.k_proj = nn.Linear(d, kv_dim, bias=config.bias)
            self.v_proj = nn.Linear(d, kv_dim, bias=config.bias)
            self.o_proj = nn.Linear(d, d, bias=config.bias)
        self.dropout = config.dropout
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None,
                mask: torch.Tensor | None, cache: KVCache | None, layer: int) -> torch.Tensor:
        B, T, C = x.shape
        if self.arch == "gpt2":
            q, k, v = self.c_attn(x).split(C, dim=2)
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k = k.view(B, T, self.n_kv, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_kv, self.head_dim).transpose(1, 2)
        if rope is not None:
            cos, sin = rope
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
        if cache is not None:
            k, v = cache.update(layer, k, v)
        # Without a mask and without a cache prefix, plain causal attention is the fast path.
        causal = mask is None and k.shape[2] == T
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal and T > 1,
            dropout_p=self.dropout if self.training else 0.0,
            enable_gqa=self.n_kv != self.n_head,
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        out = self.c_proj(y) if self.arch == "gpt2" else self.o_proj(y)
        return self.resid_drop(out)


class MLP(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.arch = config.arch
        d, h = config.n_embd, config.mlp_hidden
        if config.arch == "gpt2":
            self.c_fc = nn.Linear(d, h, bias=config.bias)
            self.c_proj = nn.Linear(h, d, bias=config.bias)
        else:
            self.gate_proj = nn.Linear(d, h, bias=False)
            self.up_proj = nn.Linear(d, h, bias=False)
            self.down_proj = nn.Linear(h, d, bias=False)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.arch == "gpt2":
            return self.drop(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))
        return self.drop(self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x)))


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.arch == "gpt2":
            self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)
            self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)
        else:
            self.ln_1 = RMSNorm(config.n_embd, config.norm_eps)
            self.ln_2 = RMSNorm(config.n_embd, config.norm_eps)
        self.attn = Attention(config)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, rope, mask, cache, layer: int) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rope, mask, cache, layer)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        # Built on the meta device (for its shapes, or to receive loaded weights): no computation at all,
        # since torch runs any op on a meta tensor through its compiler's modules (seconds to import).
        meta = torch.empty(0).is_meta

        def embedding(rows: int) -> nn.Embedding:
            return nn.Embedding(rows, config.n_embd, _weight=torch.empty(rows, config.n_embd) if meta else None)

        modules: dict[str, nn.Module] = {
            "wte": embedding(config.vocab_size),
            "drop": nn.Dropout(config.dropout),
            "h": nn.ModuleList(Block(config) for _ in range(config.n_layer)),
        }
        if config.arch == "gpt2":
            modules["wpe"] = embedding(config.block_size)
            modules["ln_f"] = nn.LayerNorm(config.n_embd, eps=config.norm_eps, bias=config.bias)
        else:
            modules["ln_f"] = RMSNorm(config.n_embd, config.norm_eps)
        self.transformer = nn.ModuleDict(modules)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.transformer.wte.weight
        if config.arch == "llama":
            inv_freq = torch.empty(config.head_dim // 2) if meta else rope_inverse_frequencies(config)
            self.register_buffer("inv_freq", inv_freq, persistent=False)
        if meta:
            return
        self.apply(self._init_weights)
        # Scaled init of the residual projections (GPT-2 paper).
        for name, p in self.named_parameters():
            if name.endswith(("c_proj.weight", "o_proj.weight", "down_proj.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _rope(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = positions.to(torch.float32)[..., None] * self.inv_freq  # (B, T, hd/2)
        emb = torch.cat((freqs, freqs), dim=-1)[:, None]  # (B, 1, T, hd)
        return emb.cos().to(dtype), emb.sin().to(dtype)

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
        positions: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for every position, and the mean cross-entropy when ``targets`` is given.

        idx: (B, T) token ids. positions: (B, T) absolute positions (default: continue from the cache).
        key_mask: (B, S) bool over every key position seen so far including this call (cache + new),
        False for padding; used for left-padded batches. Targets equal to -100 are ignored.
        """
        B, T = idx.shape
        past = kv_cache.length if kv_cache is not None else 0
        if positions is None:
            positions = torch.arange(past, past + T, device=idx.device).expand(B, T)
        if int(positions.max()) >= self.config.block_size and self.config.arch == "gpt2":
            raise ValueError(f"position {int(positions.max())} exceeds the context of {self.config.block_size}")
        x = self.transformer.wte(idx)
        rope = None
        if self.config.arch == "gpt2":
            x = x + self.transformer.wpe(positions)
        else:
            rope = self._rope(positions, x.dtype)
        x = self.transformer.drop(x)
        mask = self._attention_mask(T, past, key_mask, idx.device)
        for layer, block in enumerate(self.transformer.h):
            x = block(x, rope, mask, kv_cache, layer)
        if kv_cache is not None:
            kv_cache.length += T
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1),
                                   ignore_index=IGNORE_INDEX)
        return logits, loss

    @staticmethod
    def _attention_mask(T: int, past: int, key_mask: torch.Tensor | None,
                        device: torch.device) -> torch.Tensor | None:
        """Boolean (B, 1, T, S) mask, or None when plain causal attention is enough."""
        if key_mask is None and (past == 0 or T == 1):
            return None  # no padding: causal (prefill) or attend-to-all (single decode step)
        S = past + T
        q_pos = torch.arange(past, S, device=device)[:, None]
        causal = torch.arange(S, device=device)[None, :] <= q_pos  # (T, S)
        if key_mask is None:
            return causal[None, None]
        mask = causal[None, None] & key_mask[:, None, None, :S].bool()
        # A padding query sees no key and SDPA would return NaN; let every query see itself
        # (outputs at padding positions are never used).
        diag = torch.zeros(T, S, dtype=torch.bool, device=device)
        diag[torch.arange(T), torch.arange(past, S)] = True
        return mask | diag
