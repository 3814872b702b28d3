"""The forward pass used for generation and scoring: ragged batches, batch-invariant results.

A grading tool must give a row the same logits whatever else shares its batch. Three choices make
that hold bit for bit on the CPU (``tests/test_generate_invariance.py`` checks it):

1. Ragged batches. The new tokens of every row are concatenated into one (N, d) matrix; no padding.
   Each row keeps its keys at cache positions 0..L-1 of its own cache slot.
2. Linear layers run through oneDNN with weights packed once. Measured here, oneDNN computes every
   output row the same way whatever the number of rows; MKL's sgemm (``F.linear``) does not (one row
   takes a gemv path, and the rows past a multiple of four an edge kernel), nor does oneDNN when it
   is handed an unpacked weight.
3. Attention runs per row over exactly that row's keys: padding would shift the summation order of
   the softmax and of the weighted sum of values. Rotary tables are computed once for all positions
   so a token's angles never depend on where it sits in the batch.

Elementwise transcendental ops (SiLU, GELU) round alike for every row as long as the hidden sizes are
multiples of 16, which every preset is (torch finishes a tensor's last < 16 elements with scalar code).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hessgpt.config import ModelConfig
from hessgpt.model import GPT


def onednn_available() -> bool:
    """True when packed oneDNN linears work in this torch build (the batch-invariant path)."""
    if not hasattr(onednn_available, "_cached"):
        ok = False
        try:
            if torch.backends.mkldnn.is_available():
                w = torch.ops.mkldnn._reorder_linear_weight(torch.ones(16, 16), None)
                y = torch.ops.mkldnn._linear_pointwise(torch.ones(2, 16), w, None, "none", [], "")
                ok = bool(torch.all(y == 16.0))
        except (RuntimeError, AttributeError):
            ok = False
        onednn_available._cached = ok
    return onednn_available._cached


class PackedLinear:
    """``y = x W^T + b`` with the weight packed once for oneDNN (or plain ``F.linear`` as a fallback)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        weight = weight.detach().to(torch.float32).contiguous()
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.bias = None if bias is None else bias.detach().to(torch.float32).contiguous()
        self.packed = onednn_available()
        # batch_size=None asks for a layout that serves any number of rows with one kernel.
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight, None) if self.packed else weight

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed:
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        return F.linear(x, self.weight, self.bias)

    def nbytes(self) -> int:
        return self.in_features * self.out_features * 4


class Int8Linear:
    """Weight-only int8 (per output channel), activations quantised per row to int8, int32 products.

    Integer accumulation is exact, so this path is batch-invariant too. Only used with ``int8=True``.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        weight = weight.detach().to(torch.float32)
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        scale = weight.abs().amax(dim=1).clamp_min(1e-12) / 127.0
        self.weight_t = torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8).t().contiguous()
        self.scale = scale.contiguous()
        self.bias = None if bias is None else bias.detach().to(torch.float32).contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x_scale = x.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
        xq = torch.round(x / x_scale).to(torch.int8)
        acc = torch._int_mm(xq, self.weight_t) if x.shape[0] > 16 else _int_mm_small(xq, self.weight_t)
        y = acc.to(torch.float32) * x_scale * self.scale
        return y if self.bias is None else y + self.bias

    def nbytes(self) -> int:
        return self.in_features * self.out_features


def _int_mm_small(xq: torch.Tensor, w_t: torch.Tensor) -> torch.Tensor:
    # torch._int_mm needs more than 16 rows on CPU; pad (integer results do not depend on padding).
    pad = torch.zeros(17, xq.shape[1], dtype=torch.int8)
    pad[: xq.shape[0]] = xq
    return torch._int_mm(pad, w_t)[: xq.shape[0]]


@dataclass
class Segment:
    """One row's share of a ragged batch: ``length`` new tokens written from cache position ``start``."""

    slot: int
    start: int
    length: int


class RaggedCache:
    """Preallocated keys and values, (slots, kv_heads, max_len, head_dim) per layer.

    Each slot is one sequence with its own length; a step writes only the new positions.
    """

    def __init__(self, config: ModelConfig, slots: int, max_len: int) -> None:
        shape = (slots, config.kv_heads, max_len, config.head_dim)
        self.k = [torch.empty(shape) for _ in range(config.n_layer)]
        self.v = [torch.empty(shape) for _ in range(config.n_layer)]
        self.slots, self.max_len = slots, max_len

    def copy_slot(self, src: int, dst: int, length: int) -> None:
        for k, v in zip(self.k, self.v, strict=True):
            k[dst, :, :length] = k[src, :, :length]
            v[dst, :, :length] = v[src, :, :length]

    def gather_slots(self, slots: list[int], parents: list[int], length: int) -> None:
        """Slot ``slots[i]`` takes the first ``length`` positions of slot ``parents[i]`` (beam search)."""
        dst = torch.tensor(slots)
        src = torch.tensor(parents)
        for k, v in zip(self.k, self.v, strict=True):
            k[dst, :, :length] = k[src, :, :length]
            v[dst, :, :length] = v[src, :, :length]


class _Layer:
    def __init__(self, block: torch.nn.Module, arch: str, make_linear) -> None:
        attn, mlp = block.attn, block.mlp
        self.ln1_w = block.ln_1.weight.detach()
        self.ln2_w = block.ln_2.weight.detach()
        self.ln1_b = getattr(block.ln_1, "bias", None)
        self.ln2_b = getattr(block.ln_2, "bias", None)
        if arch == "gpt2":
            self.qkv = make_linear(attn.c_attn.weight, attn.c_attn.bias)
            self.out = make_linear(attn.c_proj.weight, attn.c_proj.bias)
            self.fc = make_linear(mlp.c_fc.weight, mlp.c_fc.bias)
            self.proj = make_linear(mlp.c_proj.weight, mlp.c_proj.bias)
        else:
            qkv_w = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
            qkv_b = None
            if attn.q_proj.bias is not None:
                qkv_b = torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias])
            self.qkv = make_linear(qkv_w, qkv_b)
            self.out = make_linear(attn.o_proj.weight, attn.o_proj.bias)
            self.fc = make_linear(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]), None)
            self.proj = make_linear(mlp.down_proj.weight, None)


class InferenceModel:
    """A GPT's weights prepared for ragged, batch-invariant inference (no autograd, fp32)."""

    def __init__(self, model: GPT, int8: bool = False, release_model_weights: bool = False) -> None:
        cfg = model.config
        self.config = cfg
        self.arch = cfg.arch
        self.n_head, self.n_kv, self.head_dim = cfg.n_head, cfg.kv_heads, cfg.head_dim
        self.eps = cfg.norm_eps
        self.int8 = int8
        make_linear = Int8Linear if int8 else PackedLinear
        tr = model.transformer
        self.wte = tr.wte.weight.detach().float()
        self.wpe = tr.wpe.weight.detach().float() if cfg.arch == "gpt2" else None
        self.layers = []
        for block in tr.h:
            self.layers.append(_Layer(block, cfg.arch, make_linear))
            if release_model_weights:
                _release(block)
        self.lnf_w = tr.ln_f.weight.detach()
        self.lnf_b = getattr(tr.ln_f, "bias", None)
        # The output head stays fp32 even in int8 mode: logits decide every greedy token.
        self.lm_head = PackedLinear(model.lm_head.weight)
        if cfg.arch == "llama":
            self.cos, self.sin = _rope_tables(cfg)

    def new_cache(self, slots: int, max_len: int) -> RaggedCache:
        return RaggedCache(self.config, slots, max_len)

    def weight_bytes(self) -> int:
        linears = [self.lm_head] + [
            lin for layer in self.layers for lin in (layer.qkv, layer.out, layer.fc, layer.proj)
        ]
        return sum(lin.nbytes() for lin in linears)

    def _norm(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        if self.arch == "gpt2":
            return F.layer_norm(x, (x.shape[-1],), w, b, self.eps)
        return F.rms_norm(x, (x.shape[-1],), w, self.eps)

    @torch.inference_mode()
    def forward(
        self,
        tokens: torch.Tensor,
        segments: list[Segment],
        cache: RaggedCache,
        logit_rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (R, vocab) at the rows ``logit_rows`` of the concatenated new tokens (default: all).

        tokens: (N,) new tokens of every segment, concatenated in segment order.
        """
        positions = torch.cat([torch.arange(s.start, s.start + s.length) for s in segments])
        slots = torch.cat([torch.full((s.length,), s.slot) for s in segments])
        N = tokens.shape[0]
        H, KV, hd = self.n_head, self.n_kv, self.head_dim
        x = F.embedding(tokens, self.wte)
        if self.arch == "gpt2":
            x = x + F.embedding(positions, self.wpe)
        else:
            cos = self.cos[positions].view(N, 1, hd)
            sin = self.sin[positions].view(N, 1, hd)
        for index, layer in enumerate(self.layers):
            h = self._norm(x, layer.ln1_w, layer.ln1_b)
            qkv = layer.qkv(h)
            if self.arch == "llama":
                qk = qkv[:, : (H + KV) * hd].view(N, H + KV, hd)
                # rotate_half(x) * sin == swap(halves of x) * (sign * sin), sign folded into the table.
                qk = qk * cos + qk.view(N, H + KV, 2, hd // 2).flip(2).view(N, H + KV, hd) * sin
                q, k = qk[:, :H], qk[:, H:]
            else:
                q = qkv[:, : H * hd].view(N, H, hd)
                k = qkv[:, H * hd : (H + KV) * hd].view(N, KV, hd)
            v = qkv[:, (H + KV) * hd :].view(N, KV, hd)
            K, V = cache.k[index], cache.v[index]
            K[slots, :, positions] = k
            V[slots, :, positions] = v
            y = self._attend(q, K, V, segments)
            x = x + layer.out(y)
            h = self._norm(x, layer.ln2_w, layer.ln2_b)
            if self.arch == "llama":
                gate, up = layer.fc(h).chunk(2, dim=-1)
                x = x + layer.proj(F.silu(gate) * up)
            else:
                x = x + layer.proj(F.gelu(layer.fc(h), approximate="tanh"))
        if logit_rows is not None:
            x = x[logit_rows]
        return self.lm_head(self._norm(x, self.lnf_w, self.lnf_b))

    def _attend(
        self, q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, segments: list[Segment]
    ) -> torch.Tensor:
        """Attention of each segment's queries over its own slot's keys; returns (N, H * hd)."""
        N, H, hd = q.shape
        gqa = self.n_kv != self.n_head
        sdpa = F.scaled_dot_product_attention
        if all(s.length == 1 for s in segments):
            q4 = q.view(N, H, 1, hd) if q.is_contiguous() else q.reshape(N, H, 1, hd)
            outs = [
                sdpa(
                    q4[i : i + 1],
                    K[s.slot : s.slot + 1, :, : s.start + 1],
                    V[s.slot : s.slot + 1, :, : s.start + 1],
                    enable_gqa=gqa,
                )
                for i, s in enumerate(segments)
            ]
            return torch.cat(outs).view(N, H * hd)
        outs = []
        offset = 0
        for s in segments:
            qs = q[offset : offset + s.length].transpose(0, 1).unsqueeze(0)  # (1, H, T, hd)
            end = s.start + s.length
            ks, vs = K[s.slot : s.slot + 1, :, :end], V[s.slot : s.slot + 1, :, :end]
            if s.length == 1:
                ys = sdpa(qs, ks, vs, enable_gqa=gqa)
            elif s.start == 0:
                ys = sdpa(qs, ks, vs, is_causal=True, enable_gqa=gqa)
            else:
                keys = torch.arange(end)[None, :]
                mask = keys <= torch.arange(s.start, end)[:, None]
                ys = sdpa(qs, ks, vs, attn_mask=mask, enable_gqa=gqa)
            outs.append(ys[0].transpose(0, 1).reshape(s.length, H * hd))
            offset += s.length
        return torch.cat(outs)


def _rope_tables(cfg: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sign-folded sin for every position, (block_size, head_dim), computed once."""
    hd = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2).float() / hd))
    freqs = torch.arange(cfg.block_size, dtype=torch.float32)[:, None] * inv_freq
    emb = torch.cat((freqs, freqs), dim=-1)
    sign = torch.cat((-torch.ones(hd // 2), torch.ones(hd // 2)))
    return emb.cos().contiguous(), (emb.sin() * sign).contiguous()


def _release(block: torch.nn.Module) -> None:
    """Drop a block's dense linear weights (after packing) so the model is not held twice in memory."""
    for module in block.modules():
        if isinstance(module, torch.nn.Linear):
            module.weight = torch.nn.Parameter(
                torch.empty(module.weight.shape, device="meta"), requires_grad=False
            )
            if module.bias is not None:
                module.bias = torch.nn.Parameter(
                    torch.empty(module.bias.shape, device="meta"), requires_grad=False
                )
