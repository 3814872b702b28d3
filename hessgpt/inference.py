"""The forward pass used for generation and scoring: ragged batches, batch-invariant results.

A grading tool must give a row the same logits whatever else shares its batch. Three choices make
that hold bit for bit on the CPU. ``tests/test_generate.py`` checks it on tiny models
(``test_batch_invariance_holds_for_the_logits_themselves``,
``test_decode_logits_bit_identical_across_key_blocks_and_mixed_steps``) and
``tests/test_generate_smollm2.py`` on the reference model (greedy outputs at batch sizes 1, 3, 16):

1. Ragged batches. The new tokens of every row are concatenated into one (N, d) matrix; no padding.
   Each row keeps its keys at cache positions 0..L-1 of its own cache slot.
2. Linear layers run through an exact path chosen for the CPU (``hessgpt.kernels``): oneDNN with
   weights packed once, which computes every output row the same way whatever the number of rows,
   or MKL's sgemm with the rows padded to a multiple of four. Plain ``F.linear`` is not exact (one
   row takes a gemv path, and the rows past a multiple of four an edge kernel), nor is oneDNN when it
   is handed an unpacked weight. Each path passes a self-check on the machine before it is used.
3. Attention runs per row over exactly that row's keys: padding would shift the summation order of
   the softmax and of the weighted sum of values. Rotary tables are computed once for all positions
   so a token's angles never depend on where it sits in the batch.

Elementwise transcendental ops (SiLU, GELU) round alike for every row as long as the hidden sizes are
multiples of 16, which every preset is (torch finishes a tensor's last < 16 elements with scalar code).

On CUDA (``device="cuda"``) the same code runs on plain torch kernels (``F.linear``, matmul); cuBLAS
may pick a different kernel for a different number of rows, so batch invariance is not promised
there (see docs/performance.md). ``precision="bf16"`` rounds the linears' weights and inputs to
bf16: never lossless, and slower than the fma path even where the CPU has AMX (docs/performance.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F

from hessgpt import exact_kernels, huge_pages
from hessgpt.config import ModelConfig
from hessgpt.exact_stack import DecoderStack
from hessgpt.memory_budget import require_memory
from hessgpt.model import GPT, rope_inverse_frequencies
from hessgpt.native_memory import return_freed_memory

# Decoding attention reads keys in blocks of this many positions (see InferenceModel._decode_attention).
DECODE_BLOCK = 128


class Int8Linear:
    """int8 weights (per output channel) through fbgemm's dynamic-quantised linear.

    fbgemm quantises the activations with one scale for the whole (rows, in) matrix, which would tie
    a row's rounding to its neighbours. So each row is first divided by its own max |x| and a fixed
    calibration row holding +1 and -1 is appended: the matrix's range is then always [-1, 1], each
    row's int8 values depend on that row only, and the int32 products are exact. Batch-invariant too.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        import warnings

        weight = weight.detach().to(torch.float32)
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        scales = (weight.abs().amax(dim=1).clamp_min(1e-12) / 127.0).double()
        zero_points = torch.zeros(weight.shape[0], dtype=torch.long)
        with warnings.catch_warnings():  # quantised tensors are deprecated, the fbgemm kernels are not (yet)
            warnings.simplefilter("ignore")
            qweight = torch.quantize_per_channel(weight, scales, zero_points, 0, torch.qint8)
            self.packed = torch.ops.quantized.linear_prepack(qweight, None)
        self.bias = None if bias is None else bias.detach().to(torch.float32).contiguous()
        self.calibration = torch.zeros(1, self.in_features)
        self.calibration[0, 0], self.calibration[0, 1 % self.in_features] = 1.0, -1.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        row_max = x.abs().amax(dim=1, keepdim=True).clamp_min(1e-30)
        scaled = torch.cat([x / row_max, self.calibration])
        y = torch.ops.quantized.linear_dynamic(scaled, self.packed, True)[:-1] * row_max
        return y if self.bias is None else y + self.bias

    def nbytes(self) -> int:
        return self.in_features * self.out_features


def int8_available() -> bool:
    return (
        "fbgemm" in torch.backends.quantized.supported_engines
        or "x86" in torch.backends.quantized.supported_engines
    )


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

    def __init__(self, config: ModelConfig, slots: int, max_len: int, device: str = "cpu") -> None:
        # Whole decode blocks, zero-filled: a masked key still enters a product (times zero), so
        # the memory must hold finite numbers.
        capacity = -(-max_len // DECODE_BLOCK) * DECODE_BLOCK
        shape = (slots, config.kv_heads, capacity, config.head_dim)
        require_memory(2 * config.n_layer * slots * config.kv_heads * capacity * config.head_dim * 4,
                       f"generation with {slots} sequence(s) of up to {max_len} tokens",
                       "lower --num-beams, --batch-size or --max-new-tokens")
        self.device = device
        self.k, self.v = self._zeros(config.n_layer, shape), self._zeros(config.n_layer, shape)
        self.slots, self.max_len = slots, max_len

    def grow(self, max_len: int) -> None:
        """Room for ``max_len`` positions per slot; what the slots hold is kept."""
        capacity = -(-max_len // DECODE_BLOCK) * DECODE_BLOCK
        old = self.k[0].shape[2]
        if capacity > old:
            slots, kv_heads, _, head_dim = self.k[0].shape
            for cache in (self.k, self.v):
                bigger = self._zeros(len(cache), (slots, kv_heads, capacity, head_dim))
                for t, b in zip(cache, bigger, strict=True):
                    b[:, :, :old] = t
                cache[:] = bigger
        self.max_len = max(self.max_len, max_len)

    def _zeros(self, layers: int, shape: tuple[int, ...]) -> list[torch.Tensor]:
        """A zeroed tensor of ``shape`` per layer; on the CPU all in one mapping on 4 KB pages that take
        memory only where a position is written. On 2 MB pages attention read 9-18% faster, but one
        written position took its whole page, so every slot's full capacity was zeroed and kept: the
        full bench took 140-144 s instead of 123-128 s, and 4.7 GB instead of 1.9 (docs/performance.md)."""
        if self.device != "cpu":
            return [torch.zeros(shape, device=self.device) for _ in range(layers)]
        size = math.prod(shape)
        flat = huge_pages.zeros(layers * size, huge=False)
        return [flat[i * size : (i + 1) * size].view(shape) for i in range(layers)]

    def write_prefix(self, slot: int, keys: list[torch.Tensor], values: list[torch.Tensor]) -> None:
        """Positions 0..P-1 of ``slot`` take a prefix's keys and values, (kv_heads, P, head_dim) per layer."""
        for k, v, pk, pv in zip(self.k, self.v, keys, values, strict=True):
            k[slot, :, : pk.shape[1]] = pk
            v[slot, :, : pv.shape[1]] = pv

    def copy_slot(self, src: int, dst: int, length: int) -> None:
        for k, v in zip(self.k, self.v, strict=True):
            k[dst, :, :length] = k[src, :, :length]
            v[dst, :, :length] = v[src, :, :length]

    def gather_slots(self, slots: list[int], parents: list[int], length: int) -> None:
        """Slot ``slots[i]`` takes the first ``length`` positions of slot ``parents[i]`` (beam search)."""
        dst = torch.tensor(slots, device=self.device)
        src = torch.tensor(parents, device=self.device)
        for k, v in zip(self.k, self.v, strict=True):
            k[dst, :, :length] = k[src, :, :length]
            v[dst, :, :length] = v[src, :, :length]


class _Layer:
    def __init__(self, block: torch.nn.Module, cfg: ModelConfig, make_linear, keep) -> None:
        attn, mlp = block.attn, block.mlp
        self.ln1_w = keep(block.ln_1.weight)
        self.ln2_w = keep(block.ln_2.weight)
        has_bias = getattr(block.ln_1, "bias", None) is not None
        self.ln1_b = keep(block.ln_1.bias) if has_bias else None
        self.ln2_b = keep(block.ln_2.bias) if has_bias else None
        H, KV, hd = cfg.n_head, cfg.kv_heads, cfg.head_dim
        # The attention scale 1/sqrt(hd) is folded into the query weights (one multiply less per layer).
        scale = 1.0 / math.sqrt(hd)
        if cfg.arch == "gpt2":
            w, b = attn.c_attn.weight.detach().float(), attn.c_attn.bias
            w = torch.cat([w[: H * hd] * scale, w[H * hd :]])
            if b is not None:
                b = b.detach().float()
                b = torch.cat([b[: H * hd] * scale, b[H * hd :]])
            self.qkv = make_linear(w, b)
            self.out = make_linear(attn.c_proj.weight, attn.c_proj.bias)
            self.fc = make_linear(mlp.c_fc.weight, mlp.c_fc.bias)
            self.proj = make_linear(mlp.c_proj.weight, mlp.c_proj.bias)
        else:
            # Query and key rows are reordered inside each head so that rotary pairs (i, i + hd/2) sit
            # side by side: RoPE is then one complex multiplication. q.k is unchanged (same order on both).
            pairs = torch.stack([torch.arange(hd // 2), torch.arange(hd // 2) + hd // 2], dim=1).reshape(-1)
            q_w = attn.q_proj.weight.detach().float().view(H, hd, -1)[:, pairs].reshape(H * hd, -1) * scale
            k_w = attn.k_proj.weight.detach().float().view(KV, hd, -1)[:, pairs].reshape(KV * hd, -1)
            qkv_b = None
            if attn.q_proj.bias is not None:
                q_b = attn.q_proj.bias.detach().float().view(H, hd)[:, pairs].reshape(-1) * scale
                k_b = attn.k_proj.bias.detach().float().view(KV, hd)[:, pairs].reshape(-1)
                qkv_b = torch.cat([q_b, k_b, attn.v_proj.bias.detach().float()])
            self.qkv = make_linear(torch.cat([q_w, k_w, attn.v_proj.weight.detach().float()]), qkv_b)
            self.out = make_linear(attn.o_proj.weight, attn.o_proj.bias)
            self.fc = make_linear(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]), None)
            self.proj = make_linear(mlp.down_proj.weight, None)


class InferenceModel:
    """A GPT's weights prepared for ragged, batch-invariant inference (no autograd).

    ``linear`` names the linear path (``hessgpt.kernels``; default: chosen for this CPU), ``precision``
    the linears' weight type ("fp32" or "bf16"), ``device`` where everything runs ("cpu" or "cuda")."""

    def __init__(
        self,
        model: GPT,
        int8: bool = False,
        release_model_weights: bool = False,
        precision: str = "fp32",
        device: str = "cpu",
        linear: str | None = None,
    ) -> None:
        from hessgpt.kernels import FMA_PATHS, choose_linear_path, linear_factory
        from hessgpt.machine import describe_machine

        cfg = model.config
        self.config = cfg
        self.arch = cfg.arch
        self.n_head, self.n_kv, self.head_dim = cfg.n_head, cfg.kv_heads, cfg.head_dim
        self.eps = cfg.norm_eps
        self.int8 = int8
        self.precision, self.device = precision, device
        self.linear_path = choose_linear_path(describe_machine()["isa"], device, precision, linear)
        fp32_linear = linear_factory(self.linear_path, "fp32", device)
        if self.linear_path in FMA_PATHS:
            fp32_linear = partial(fp32_linear, arena=exact_kernels.PackedArena(_packed_floats_bound(model)))
        if int8:
            make_linear = Int8Linear
        elif precision == "bf16":
            make_linear = linear_factory(self.linear_path, "bf16", device)
        else:
            make_linear = fp32_linear
        tr = model.transformer
        # Own copies of what is used unpacked: the model's tensors may live in a memory-mapped file
        # that can then be unmapped when the model's weights are released.
        keep = (
            (lambda t: t.detach().float().to(device).clone())
            if release_model_weights
            else (lambda t: t.detach().float().to(device))
        )
        self.wte = keep(tr.wte.weight)
        self.wpe = keep(tr.wpe.weight) if cfg.arch == "gpt2" else None
        self.layers = []
        for block in tr.h:
            self.layers.append(_Layer(block, cfg, make_linear, keep))
            if release_model_weights:
                _release(block)
        self.lnf_w = keep(tr.ln_f.weight)
        self.lnf_b = keep(tr.ln_f.bias) if getattr(tr.ln_f, "bias", None) is not None else None
        # The output head stays fp32 in int8 and bf16 modes: logits decide every greedy token.
        self.lm_head = fp32_linear(model.lm_head.weight, None)
        if release_model_weights:
            _release(model)
            return_freed_memory()  # the unpacked weights just freed
        # With the fma path every computing op runs in the same library (hessgpt/exact_kernels.py): no
        # result then depends on the CPU model.
        self.fma = self.linear_path in FMA_PATHS and exact_kernels.supports(self.head_dim, cfg.n_embd)
        self.rope = None
        if cfg.arch == "llama":
            if self.fma:
                self.rope = exact_kernels.rope_tables(cfg.rope_theta, self.head_dim, cfg.block_size)
            else:
                self.rotations = _rope_rotations(cfg).to(device)
        # fp32 fma linears throughout: all the layers in one kernel call per forward pass.
        self.stack = None
        if self.fma and not int8 and precision == "fp32":
            self.stack = DecoderStack(self.layers, cfg.arch, self.n_head, self.n_kv, self.head_dim, self.eps, self.rope)

    @property
    def rows_exact(self) -> bool:
        """Whether a token's logits have the same bits when one pass computes it with the tokens
        before it in its row as when it is decoded alone: the fp32 fma stack attends every row by
        itself (``exact_kernels.attention``); the other paths attend a prompt with SDPA."""
        return self.stack is not None

    def new_cache(self, slots: int, max_len: int) -> RaggedCache:
        return RaggedCache(self.config, slots, max_len, self.device)

    def build_kernels(self, max_rows: int, max_logit_rows: int) -> None:
        """Build now the linear kernels of every call of up to ``max_rows`` tokens with up to
        ``max_logit_rows`` logit rows (``hessgpt.kernels.row_bucket``): a long-running engine then
        keeps the same memory whatever mix of prompts and batch sizes comes. One layer is enough, all
        have the same shapes. Paths without per-shape kernels do nothing."""
        layer = self.layers[0]
        # The output and down projections run with their residual add fused (_add_linear).
        calls = [(layer.qkv, False), (layer.out, True), (layer.fc, False), (layer.proj, True)]
        for linear, fused_add in (*calls, (self.lm_head, False)):
            build = getattr(linear, "build_kernels", None)
            if build is not None:
                build(max_logit_rows if linear is self.lm_head else max_rows, fused_add)

    def weight_bytes(self) -> int:
        linears = [self.lm_head] + [
            lin for layer in self.layers for lin in (layer.qkv, layer.out, layer.fc, layer.proj)
        ]
        return sum(lin.nbytes() for lin in linears)

    def _norm(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        if self.arch == "gpt2":
            if self.fma:
                return exact_kernels.layer_norm(x, w, b, self.eps)
            return F.layer_norm(x, (x.shape[-1],), w, b, self.eps)
        if self.fma:
            return exact_kernels.rms_norm(x, w, self.eps)
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
        plan = _Plan(segments, cache, self.device, self.fma)
        tokens = tokens.to(self.device)
        if logit_rows is not None:
            logit_rows = logit_rows.to(self.device)
        x = F.embedding(tokens, self.wte)
        if self.arch == "gpt2":
            x = x + F.embedding(plan.positions, self.wpe)
        if self.stack is not None:
            x = self.stack.run(x.contiguous(), plan.rows, cache.k, cache.v)
        else:
            x = self._layers_per_op(x, plan, cache)
        if logit_rows is not None:
            # index_select, not x[logit_rows]: advanced indexing runs an OpenMP region whose thread then
            # spins on the other core while the output head's kernel wants it (batch 16: head 7.1 -> 5.6 ms).
            x = x.index_select(0, logit_rows)
        # Logits go back to the CPU, where choosing tokens (and seeded sampling) happens.
        return self.lm_head(self._norm(x, self.lnf_w, self.lnf_b)).cpu()

    def _layers_per_op(self, x: torch.Tensor, plan: _Plan, cache: RaggedCache) -> torch.Tensor:
        """The layers one op at a time: without the fma kernels, or with int8 linears between them."""
        N = x.shape[0]
        H, KV, hd = self.n_head, self.n_kv, self.head_dim
        if self.arch == "llama" and not self.fma:
            rotation = self.rotations[plan.positions].view(N, 1, hd // 2)
        for index, layer in enumerate(self.layers):
            h = self._norm(x, layer.ln1_w, layer.ln1_b)
            qkv = layer.qkv(h)
            if self.arch == "llama" and self.fma:
                qk = exact_kernels.rotary(qkv, H + KV, hd, self.rope, plan.rows)
                q, k = qk[:, :H], qk[:, H:]
            elif self.arch == "llama":
                pairs = qkv[:, : (H + KV) * hd].reshape(N, H + KV, hd // 2, 2)
                qk = torch.view_as_real(torch.view_as_complex(pairs) * rotation).view(N, H + KV, hd)
                q, k = qk[:, :H], qk[:, H:]
            else:
                q = qkv[:, : H * hd].view(N, H, hd)
                k = qkv[:, H * hd : (H + KV) * hd].view(N, KV, hd)
            v = qkv[:, (H + KV) * hd :].view(N, KV, hd)
            K, V = cache.k[index], cache.v[index]
            if self.fma:
                exact_kernels.store_kv(k, v, K, V, plan.rows)
            else:
                # One row copy per (token, kv head) into the flat cache: several times faster than
                # indexing (slots, :, positions), and the same bits.
                K.view(-1, hd).index_copy_(0, plan.cache_rows, k.reshape(-1, hd))
                V.view(-1, hd).index_copy_(0, plan.cache_rows, v.reshape(-1, hd))
            y = self._attend(q, K, V, plan)
            x = _add_linear(layer.out, y, x)
            h = self._norm(x, layer.ln2_w, layer.ln2_b)
            if self.arch == "llama" and self.fma:
                x = _add_linear(layer.proj, exact_kernels.silu_mul(layer.fc(h)), x)
            elif self.arch == "llama":
                gate, up = layer.fc(h).chunk(2, dim=-1)
                x = _add_linear(layer.proj, F.silu(gate).mul_(up), x)
            elif self.fma:
                x = _add_linear(layer.proj, exact_kernels.gelu_tanh_(layer.fc(h)), x)
            else:
                x = _add_linear(layer.proj, F.gelu(layer.fc(h), approximate="tanh"), x)
        return x

    def _attend(self, q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, plan: _Plan) -> torch.Tensor:
        """Attention of each new token over its own slot's keys; returns (N, H * hd).

        With the fma kernels, every row in one call, over positions 0..its own of its slot. Otherwise
        decoding rows (one new token after a cached prefix) go through one batched, blocked pass, and
        prompts (a segment starting at position 0) each through causal SDPA over exactly their keys."""
        N, H, hd = q.shape
        if plan.rows is not None:
            return exact_kernels.attention(q, K, V, plan.rows).view(N, H * hd)
        if plan.decode_in_slot_order:  # the common step: every slot decodes one token
            return self._decode_attention(q, K, V, plan).view(N, H * hd)
        y = q.new_empty(N, H, hd)
        if plan.decode_rows is not None:
            q_all = q.new_zeros(K.shape[0], H, hd)
            q_all[plan.decode_slots] = q[plan.decode_rows]
            y[plan.decode_rows] = self._decode_attention(q_all, K, V, plan)[plan.decode_slots]
        gqa = self.n_kv != self.n_head
        for offset, s in plan.others:
            qs = q[offset : offset + s.length].transpose(0, 1).unsqueeze(0)  # (1, H, T, hd)
            end = s.start + s.length
            ks, vs = K[s.slot : s.slot + 1, :, :end], V[s.slot : s.slot + 1, :, :end]
            if s.start == 0:
                ys = F.scaled_dot_product_attention(
                    qs, ks, vs, is_causal=s.length > 1, scale=1.0, enable_gqa=gqa
                )
            else:
                positions = torch.arange(end, device=q.device)
                mask = positions[None, :] <= positions[s.start :, None]
                ys = F.scaled_dot_product_attention(qs, ks, vs, attn_mask=mask, scale=1.0, enable_gqa=gqa)
            y[offset : offset + s.length] = ys[0].transpose(0, 1)
        return y.view(N, H * hd)

    def _decode_attention(
        self, q: torch.Tensor, K: torch.Tensor, V: torch.Tensor, plan: _Plan
    ) -> torch.Tensor:
        """One query per cache slot, (slots, H, hd), over that slot's first ``plan.lengths`` keys.

        Keys are taken in fixed blocks of DECODE_BLOCK positions counted from position 0, merged with
        the online softmax in block order. A block past a row's end is fully masked and changes none
        of its bits (its weight is exp(0) = 1 on the running sums and it adds zeros), so a row's result
        does not depend on how long the other rows are: batch-invariant by construction."""
        S, H, hd = q.shape
        KV = self.n_kv
        qs = q.view(S, KV, H // KV, hd)  # already scaled by 1/sqrt(hd) (folded into the weights)
        bk = DECODE_BLOCK
        m = total = acc = None
        for j, masked in enumerate(plan.block_masks):
            kj, vj = K[:, :, j * bk : (j + 1) * bk], V[:, :, j * bk : (j + 1) * bk]
            scores = torch.matmul(qs, kj.transpose(-1, -2)).masked_fill_(masked, -math.inf)
            block_max = scores.amax(dim=-1, keepdim=True)
            if j == 0:
                m = block_max
                p = torch.exp(scores - m)
                total, acc = p.sum(dim=-1, keepdim=True), torch.matmul(p, vj)
            else:
                new_m = torch.maximum(m, block_max)
                alpha = torch.exp(m - new_m)
                p = torch.exp(scores - new_m)
                total = total * alpha + p.sum(dim=-1, keepdim=True)
                acc = acc * alpha + torch.matmul(p, vj)
                m = new_m
        return (acc / total).view(S, H, hd)


class _Plan:
    """Index tensors for one forward pass, computed once and shared by every layer."""

    def __init__(self, segments: list[Segment], cache: RaggedCache, device: str = "cpu", fma: bool = False) -> None:
        """``fma``: the fma kernels run the pass (they need only ``rows``: each row's slot and position)."""
        positions: list[int] = []
        slots: list[int] = []
        for s in segments:
            positions.extend(range(s.start, s.start + s.length))
            slots.extend([s.slot] * s.length)
        _, kv_heads, capacity, _ = cache.k[0].shape
        self.rows = None
        if fma:  # the kernels index the cache themselves: nothing else to prepare
            self.rows = exact_kernels.RowPlan(slots, positions, cache.slots, capacity)
            self.positions = self.rows.positions
            return
        self.positions = torch.tensor(positions)
        self.slots = torch.tensor(slots)
        # Row of each new (token, kv head) in a layer's cache seen as (slots * kv_heads * capacity, hd).
        heads = torch.arange(kv_heads)
        self.cache_rows = ((self.slots[:, None] * kv_heads + heads) * capacity + self.positions[:, None]).reshape(-1)
        decode_rows, decode_slots, self.others = [], [], []
        offset = 0
        for s in segments:
            if s.length == 1 and s.start > 0:
                decode_rows.append(offset)
                decode_slots.append(s.slot)
            else:
                self.others.append((offset, s))
            offset += s.length
        self.decode_rows = self.decode_slots = None
        self.decode_in_slot_order = not self.others and decode_slots == list(range(cache.slots))
        self.block_masks: list[torch.Tensor] = []
        if decode_rows:
            self.decode_rows, self.decode_slots = torch.tensor(decode_rows), torch.tensor(decode_slots)
            # Keys per slot (slots not decoding attend to position 0 only; their output is dropped).
            lengths = torch.ones(cache.slots, dtype=torch.long)
            lengths[self.decode_slots] = self.positions[self.decode_rows] + 1
            blocks = -(-int(lengths.max()) // DECODE_BLOCK)
            masked = (torch.arange(blocks * DECODE_BLOCK)[None, :] >= lengths[:, None]).to(device)
            self.block_masks = [
                masked[:, None, None, j * DECODE_BLOCK : (j + 1) * DECODE_BLOCK] for j in range(blocks)
            ]
        if device != "cpu":
            for name in ("positions", "slots", "cache_rows", "decode_rows", "decode_slots"):
                value = getattr(self, name)
                if value is not None:
                    setattr(self, name, value.to(device))


def _packed_floats_bound(model: GPT) -> int:
    """More floats than the model's packed linears take: every matrix of the model, the output head once
    more (tied to the embedding or not), and per linear a panel's padding and an alignment."""
    matrices = [p for p in model.parameters() if p.dim() == 2]
    widest_panel, linears = max(exact_kernels.PANEL_WIDTHS), 4 * len(model.transformer.h) + 1
    padding = linears * (widest_panel * max(p.shape[1] for p in matrices) + 16)
    return sum(p.numel() for p in matrices) + model.lm_head.weight.numel() + padding


def _add_linear(linear, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """``residual + linear(x)``, fused where the linear path offers it."""
    add_to = getattr(linear, "add_to", None)
    return add_to(x, residual) if add_to is not None else residual + linear(x)


def _rope_rotations(cfg: ModelConfig) -> torch.Tensor:
    """exp(i * position * inv_freq) for every position, (block_size, head_dim / 2) complex, computed once."""
    angles = torch.arange(cfg.block_size, dtype=torch.float32)[:, None] * rope_inverse_frequencies(cfg)
    return torch.polar(torch.ones_like(angles), angles).contiguous()


def _release(module: torch.nn.Module) -> None:
    """Replace a module's weights by meta tensors (after packing) so the model is not held twice in
    memory. The module keeps its structure (parameter counts still work) but can no longer run."""
    for sub in module.modules():
        for name, param in list(sub.named_parameters(recurse=False)):
            setattr(
                sub, name, torch.nn.Parameter(torch.empty(param.shape, device="meta"), requires_grad=False)
            )
