"""The decoder layers of a forward pass in one call of the fma kernels (``decoder_layers`` in
``exact_kernels.c``).

It runs the ops of the per-op forward (``hessgpt.inference``) in the same order on the same buffers,
so the bits are the same; a decoding step then makes one trip through Python for its 30 layers
instead of about 300 (docs/performance.md). Used when every linear of the layers is an ``FmaLinear``
of one panel width (fp32, no int8).
"""

from __future__ import annotations

import ctypes

import torch

from hessgpt.exact_kernels import FmaLinear, RowPlan, caches_fit, load_library, supports


class _LayerWeights(ctypes.Structure):
    _fields_ = [
        *((name, ctypes.c_void_p) for name in (
            "norm1_w", "norm1_b", "norm2_w", "norm2_b", "qkv", "qkv_b", "out", "out_b", "fc", "fc_b", "proj", "proj_b",
        )),
        *((name, ctypes.c_long) for name in ("qkv_bits", "out_bits", "fc_bits", "proj_bits")),
    ]


class _StackShape(ctypes.Structure):
    _fields_ = [
        *((name, ctypes.c_long) for name in (
            "width", "heads", "kv_heads", "head_dim", "hidden", "nr", "capacity", "llama",
        )),
        ("eps", ctypes.c_float),
        ("cos_table", ctypes.c_void_p),
        ("sin_table", ctypes.c_void_p),
    ]


def _address(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


class DecoderStack:
    """The layers of an ``InferenceModel`` as one kernel call. Holds pointers into the layers' tensors:
    it lives as long as the model that built it, which keeps them."""

    def __init__(self, layers: list, arch: str, heads: int, kv_heads: int, head_dim: int, eps: float,
                 rope: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        linears = [lin for layer in layers for lin in (layer.qkv, layer.out, layer.fc, layer.proj)]
        widths = {getattr(lin, "panel_width", None) for lin in linears}
        if not layers or not all(isinstance(lin, FmaLinear) for lin in linears) or len(widths) != 1:
            raise ValueError("decoder stack: every linear must be an FmaLinear of one panel width")
        llama = arch == "llama"
        width, hidden = layers[0].out.out_features, layers[0].proj.in_features
        # The shapes the kernel assumes of every layer (it reads the weights through bare pointers).
        expected = {"qkv": ((heads + 2 * kv_heads) * head_dim, width), "out": (width, heads * head_dim),
                    "fc": ((2 if llama else 1) * hidden, width), "proj": (width, hidden)}
        if (not supports(head_dim, width) or heads % kv_heads or llama != (rope is not None)
                or any((getattr(layer, name).out_features, getattr(layer, name).in_features) != shape
                       for layer in layers for name, shape in expected.items())):
            raise ValueError(f"decoder stack: unsupported shapes (head_dim {head_dim}, width {width})")
        self.lib = load_library()
        self.rope = rope
        self.heads, self.kv_heads, self.head_dim, self.width = heads, kv_heads, head_dim, width
        self.shape = _StackShape(width, heads, kv_heads, head_dim, hidden, widths.pop(), 0, llama, eps,
                                 *((rope[0].data_ptr(), rope[1].data_ptr()) if rope else (None, None)))
        self.weights = (_LayerWeights * len(layers))(*(
            _LayerWeights(
                _address(layer.ln1_w), _address(layer.ln1_b), _address(layer.ln2_w), _address(layer.ln2_b),
                *(ptr for lin in (layer.qkv, layer.out, layer.fc, layer.proj)
                  for ptr in (lin.packed.data_ptr(), _address(lin.bias))),
                *(lin.bits for lin in (layer.qkv, layer.out, layer.fc, layer.proj)),
            )
            for layer in layers
        ))
        self.n_layers = len(layers)

    def run(self, x: torch.Tensor, plan: RowPlan, k_caches: list[torch.Tensor],
            v_caches: list[torch.Tensor]) -> torch.Tensor:
        """x (rows, width) through every layer, in place; each row's keys and values go to its slot."""
        rows = x.shape[0]
        # The kernel trusts its pointers: shapes, type and layout are checked here.
        if (x.dtype != torch.float32 or x.shape != (plan.rows, self.width) or not x.is_contiguous()
                or len(k_caches) != self.n_layers or len(v_caches) != self.n_layers
                or not all(caches_fit(k, v, plan, self.kv_heads, self.head_dim)
                           for k, v in zip(k_caches, v_caches, strict=True))
                or (self.rope is not None and plan.max_position >= self.rope[0].shape[0])):
            raise ValueError(f"decoder stack: unexpected shapes x {tuple(x.shape)}, cache "
                             f"{tuple(k_caches[0].shape) if k_caches else ()}")
        if not rows:
            return x
        shape = _StackShape.from_buffer_copy(self.shape)  # per call: a model may serve several threads
        shape.capacity = plan.capacity
        scratch = x.new_empty(self.lib.decoder_scratch_floats(ctypes.byref(shape), rows))
        pointers = ctypes.c_void_p * self.n_layers
        with torch.profiler.record_function("fma::decoder_layers"):  # named in `perf profile`
            self.lib.decoder_layers(
                x.data_ptr(), rows, self.weights, pointers(*(k.data_ptr() for k in k_caches)),
                pointers(*(v.data_ptr() for v in v_caches)), self.n_layers, ctypes.byref(shape),
                plan.slots.data_ptr(), plan.positions.data_ptr(), plan.lengths.data_ptr(), scratch.data_ptr(),
                torch.get_num_threads(),
            )
        return x
