"""The ``fma`` path: our own exact fp32 kernels (``exact_kernels.c``), built once with the C compiler.

Every op of the forward pass that computes (rather than copies) runs here: the linear layers, where
each output is one chain of fused multiply-adds in input order; attention, where each row reads only
its own keys in a fixed order; the norms, rotary embedding and activations, each row on its own, with
the transcendental functions of the C library. So a row's bits depend on nothing but that row, its
keys and the weights: not the batch, not whether its prompt ran at once or token by token, not the
thread count, and not the CPU model among those with AVX2 and FMA. Library kernels (oneDNN, MKL,
torch's vectorised ops) pick their code per ISA, which is why their answers differ between machine
types. The linears and attention are also faster than oneDNN's packed path and than batched small
matrix products (docs/performance.md). The engine hands all its layers to the library in one call
(``hessgpt.exact_stack``); the per-op wrappers below are what that call is tested against, and what
the int8 path uses between its linears.

The shared library is compiled at first use (or by ``python -m hessgpt.exact_kernels``, which ``make
setup`` runs) into ``~/.cache/hessgpt/native``, named by a hash of the source, the flags and the
compiler, and written atomically. Without a C compiler, or on a CPU without AVX2, FMA and F16C (which
every AVX2 CPU has), the path is unavailable and the engine keeps oneDNN; ``kernel_problem()`` says
why in one line.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import torch

from hessgpt import huge_pages
from hessgpt.errors import HessError

SOURCE = Path(__file__).with_name("exact_kernels.c")
VERSION = 15  # must equal exact_kernels_version() in the C source
# -ffp-contract=off: the compiler must not fuse the bias or residual adds; the arithmetic is as written.
FLAGS = ("-O3", "-mavx2", "-mfma", "-mf16c", "-ffp-contract=off", "-fno-fast-math", "-pthread", "-shared", "-fPIC")
REQUIRED_CPU_FLAGS = {"avx2", "fma", "f16c"}
PANEL_WIDTHS = (16, 32)  # outputs per packed weight panel: AVX2 tiles, AVX-512 tiles
MAX_HEAD_DIM = 256  # bounds the attention kernel's per-task arrays on the stack


def supports(head_dim: int, width: int) -> bool:
    """Can the kernels run a model of this head size and hidden width (8-float vectors, no tails)?"""
    return head_dim % 8 == 0 and head_dim <= MAX_HEAD_DIM and width % 8 == 0


def cache_dir() -> Path:
    return Path(os.environ.get("HESSGPT_NATIVE_CACHE") or Path.home() / ".cache" / "hessgpt" / "native")


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC") or "cc")


def _compiler_id(cc: str) -> str:
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return cc


def _build(cc: str) -> Path:
    """Compile the kernel unless a build of this source, these flags and this compiler exists."""
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(FLAGS).encode() + _compiler_id(cc).encode())
    target = cache_dir() / f"exact_kernels-{digest.hexdigest()[:16]}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run([cc, *FLAGS, "-o", tmp, str(SOURCE), "-lm"], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["no message"])[0]
            raise HessError(f"fma kernels: {cc} failed to compile {SOURCE.name}: {first}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)  # atomic: a concurrent build or reader never sees half a library
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


@cache
def load_library() -> ctypes.CDLL:
    """The compiled kernel (built if needed); HessError with the reason when it cannot run here."""
    from hessgpt.machine import _cpuinfo

    missing = REQUIRED_CPU_FLAGS - _cpuinfo()[1]
    if missing:
        raise HessError(f"fma kernels: this CPU lacks {', '.join(sorted(missing))}")
    cc = _compiler()
    if cc is None:
        raise HessError("fma kernels: no C compiler found (set CC, or install gcc)")
    try:
        lib = ctypes.CDLL(str(_build(cc)))
    except (OSError, subprocess.SubprocessError) as exc:
        raise HessError(f"fma kernels: cannot build or load it: {exc}") from exc
    if lib.exact_kernels_version() != VERSION:
        raise HessError(f"fma kernels: built library version {lib.exact_kernels_version()}, expected {VERSION}")
    pointer, size, threads = ctypes.c_void_p, ctypes.c_long, ctypes.c_int
    number = ctypes.c_float
    signatures = {
        "fma_linear": [pointer, size, size, pointer, size, size, threads, pointer, pointer, pointer, threads],
        "unpack_codes": [pointer, size, size, size, threads, pointer],
        "attention": [pointer, size, size, size, size, size, pointer, pointer, size, pointer, pointer, pointer,
                      threads],
        "rms_norm": [pointer, size, size, pointer, number, pointer],
        "layer_norm": [pointer, size, size, pointer, pointer, number, pointer],
        "silu_mul": [pointer, size, size, pointer],
        "exp_floats": [pointer, size, pointer],
        "gelu_tanh": [pointer, size],
        "rotary": [pointer, size, size, size, size, pointer, pointer, pointer, pointer],
        "rope_tables": [number, size, size, pointer, pointer],
        "store_kv": [pointer, size, pointer, size, size, size, size, pointer, pointer, size, pointer, pointer],
        "decoder_layers": [pointer, size, pointer, pointer, pointer, size, pointer, pointer, pointer, pointer,
                           pointer, threads],
        "argmax_rows": [pointer, size, size, size, pointer, threads],
    }
    for name, argtypes in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = argtypes, None
    lib.decoder_scratch_floats.argtypes, lib.decoder_scratch_floats.restype = [pointer, size], size
    lib.code_block_bytes.argtypes, lib.code_block_bytes.restype = [size, threads], size
    lib.pack_codes.argtypes, lib.pack_codes.restype = [pointer, size, size, size, threads, pointer, threads], threads
    return lib


def kernel_problem() -> str | None:
    """None when the kernel can run here, else the one-line reason it cannot."""
    try:
        load_library()
    except HessError as exc:
        return str(exc)
    return None


class RowPlan:
    """Where each row of a forward pass sits: its cache slot and position (it attends to positions
    0..position of its slot). Checked once per pass against the cache, because the kernels trust it."""

    def __init__(self, slots: list[int], positions: list[int], cache_slots: int, capacity: int) -> None:
        if len(slots) != len(positions):
            raise ValueError("row plan: slots and positions differ in length")
        for slot, position in zip(slots, positions, strict=True):
            if not (0 <= slot < cache_slots and 0 <= position < capacity):
                raise ValueError(f"row plan: slot {slot}, position {position} outside the cache "
                                 f"({cache_slots} slots, capacity {capacity})")
        self.rows, self.cache_slots, self.capacity = len(slots), cache_slots, capacity
        self.max_position = max(positions, default=-1)
        self.slots = torch.tensor(slots, dtype=torch.long)
        self.positions = torch.tensor(positions, dtype=torch.long)
        self.lengths = self.positions + 1


def attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, plan: RowPlan) -> torch.Tensor:
    """(rows, heads, head_dim): each row's attention over positions 0..position of its slot's keys.

    q: (rows, heads, head_dim), already scaled, heads contiguous; the caches (slots, kv_heads, capacity,
    head_dim) hold every row's own key and value already."""
    rows, heads, head_dim = q.shape
    kv_heads, capacity = k_cache.shape[1], k_cache.shape[2]
    if (q.dtype != torch.float32 or q.stride(2) != 1 or q.stride(1) != head_dim or rows != plan.rows
            or not supports(head_dim, head_dim) or heads % kv_heads
            or not caches_fit(k_cache, v_cache, plan, kv_heads, head_dim)):
        raise ValueError(f"attention: unexpected shapes q {tuple(q.shape)}, cache {tuple(k_cache.shape)}")
    out = q.new_empty(rows, heads, head_dim)
    if rows:
        load_library().attention(
            q.data_ptr(), q.stride(0), rows, heads, kv_heads, head_dim, k_cache.data_ptr(), v_cache.data_ptr(),
            capacity, plan.slots.data_ptr(), plan.lengths.data_ptr(), out.data_ptr(), torch.get_num_threads(),
        )
    return out


def store_kv(k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
             plan: RowPlan) -> None:
    """Each row's keys and values (rows, kv_heads, head_dim) into the caches at its slot and position."""
    rows, kv_heads, head_dim = k.shape
    if (k.shape != v.shape or k.dtype != torch.float32 or v.dtype != torch.float32 or rows != plan.rows
            or any(t.stride(2) != 1 or t.stride(1) != head_dim for t in (k, v))
            or not caches_fit(k_cache, v_cache, plan, kv_heads, head_dim)):
        raise ValueError(f"store_kv: unexpected shapes k {tuple(k.shape)}, cache {tuple(k_cache.shape)}")
    load_library().store_kv(k.data_ptr(), k.stride(0), v.data_ptr(), v.stride(0), rows, kv_heads, head_dim,
                            k_cache.data_ptr(), v_cache.data_ptr(), plan.capacity, plan.slots.data_ptr(),
                            plan.positions.data_ptr())


def caches_fit(k_cache: torch.Tensor, v_cache: torch.Tensor, plan: RowPlan, kv_heads: int,
                head_dim: int) -> bool:
    """Are both caches contiguous float32 (slots, kv_heads, capacity, head_dim) of the plan's cache?"""
    shape = (plan.cache_slots, kv_heads, plan.capacity, head_dim)
    return all(t.shape == shape and t.dtype == torch.float32 and t.is_contiguous() for t in (k_cache, v_cache))


def _rows_of(x: torch.Tensor, name: str) -> torch.Tensor:
    """x as a contiguous float32 (rows, cols) matrix, or ValueError naming the kernel."""
    if x.dtype != torch.float32 or x.dim() != 2:
        raise ValueError(f"{name}: expected float32 (rows, cols), got {x.dtype} {tuple(x.shape)}")
    return x.contiguous()


def argmax_rows(x: torch.Tensor, cols: int) -> list[int]:
    """Each row's index of its largest value among its first ``cols``, as ``torch.argmax`` gives it
    (the first of equal maxima; the first NaN if any), without starting torch's OpenMP threads."""
    if x.dtype != torch.float32 or x.dim() != 2 or x.stride(1) != 1 or not 0 < cols <= x.shape[1]:
        raise ValueError(f"argmax_rows: expected float32 (rows, >= {cols}) with contiguous rows, "
                         f"got {x.dtype} {tuple(x.shape)}")
    out = torch.empty(x.shape[0], dtype=torch.long)
    if x.shape[0]:
        load_library().argmax_rows(x.data_ptr(), x.shape[0], cols, x.stride(0), out.data_ptr(),
                                   torch.get_num_threads())
    return out.tolist()


def exp(x: torch.Tensor) -> torch.Tensor:
    """e^x elementwise with the kernels' own exponential (what attention and SiLU use)."""
    flat = x.detach().float().contiguous().view(-1)
    padded = torch.cat([flat, flat.new_zeros(-flat.numel() % 8)])
    out = torch.empty_like(padded)
    load_library().exp_floats(padded.data_ptr(), padded.numel(), out.data_ptr())
    return out[: flat.numel()].view(x.shape)


def silu_mul(x: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up, where each row of x (rows, 2 * cols) is gate then up."""
    x = _rows_of(x, "silu_mul")
    if x.shape[1] % 2:
        raise ValueError(f"silu_mul: odd width {x.shape[1]}")
    out = x.new_empty(x.shape[0], x.shape[1] // 2)
    load_library().silu_mul(x.data_ptr(), x.shape[0], x.shape[1] // 2, out.data_ptr())
    return out


def gelu_tanh_(x: torch.Tensor) -> torch.Tensor:
    """GELU (tanh form) of a contiguous float32 tensor, in place."""
    if x.dtype != torch.float32 or not x.is_contiguous():
        raise ValueError(f"gelu_tanh_: expected a contiguous float32 tensor, got {x.dtype}")
    load_library().gelu_tanh(x.data_ptr(), x.numel())
    return x


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Each row of x (rows, cols) times 1 / sqrt(mean(row^2) + eps), times weight; cols % 8 == 0."""
    x = _rows_of(x, "rms norm")
    cols = x.shape[1]
    if weight.dtype != torch.float32 or weight.shape != (cols,) or cols % 8 or not weight.is_contiguous():
        raise ValueError(f"rms norm: unexpected shapes x {tuple(x.shape)}, weight {tuple(weight.shape)}")
    y = torch.empty_like(x)
    load_library().rms_norm(x.data_ptr(), x.shape[0], cols, weight.data_ptr(), eps, y.data_ptr())
    return y


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, eps: float) -> torch.Tensor:
    x = _rows_of(x, "layer norm")
    cols = x.shape[1]
    for t in (weight, bias):
        if t is not None and (t.dtype != torch.float32 or t.shape != (cols,) or not t.is_contiguous()):
            raise ValueError(f"layer norm: weight and bias must be float32 ({cols},)")
    y = torch.empty_like(x)
    load_library().layer_norm(x.data_ptr(), x.shape[0], cols, weight.data_ptr(),
                              None if bias is None else bias.data_ptr(), eps, y.data_ptr())
    return y


def rope_tables(theta: float, head_dim: int, positions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (positions, head_dim / 2) of position x inv_freq, from the C library."""
    cos, sin = torch.empty(positions, head_dim // 2), torch.empty(positions, head_dim // 2)
    load_library().rope_tables(theta, head_dim, positions, cos.data_ptr(), sin.data_ptr())
    return cos, sin


def rotary(x: torch.Tensor, heads: int, head_dim: int, tables: tuple[torch.Tensor, torch.Tensor],
           plan: RowPlan) -> torch.Tensor:
    """(rows, heads, head_dim): the first ``heads`` heads of each row of x, pairs (2i, 2i + 1) rotated."""
    cos, sin = tables
    if (x.dtype != torch.float32 or x.dim() != 2 or x.stride(1) != 1 or x.shape[1] < heads * head_dim
            or x.shape[0] != plan.rows or head_dim % 2 or cos.shape != (cos.shape[0], head_dim // 2)
            or plan.max_position >= cos.shape[0]):
        raise ValueError(f"rotary: unexpected shapes x {tuple(x.shape)}, tables {tuple(cos.shape)}")
    out = x.new_empty(x.shape[0], heads, head_dim)
    load_library().rotary(x.data_ptr(), x.stride(0), x.shape[0], heads, head_dim, cos.data_ptr(), sin.data_ptr(),
                          plan.positions.data_ptr(), out.data_ptr())
    return out


class PackedArena:
    """Room for a model's packed weights in one mapping on huge pages (``hessgpt.huge_pages``), handed
    out in the order they are packed (the order a forward pass reads them), each slice 64-byte aligned.

    The weight stream of a forward pass then runs through one range of memory: SmolLM2's 121 linears
    read 5-9% faster than from separate allocations (docs/performance.md). Room never handed out is
    never touched, so it costs no memory. The mapping lives as long as any slice of it."""

    def __init__(self, max_floats: int) -> None:
        self._floats = huge_pages.zeros(max_floats)
        self._next = 0

    def take(self, floats: int) -> torch.Tensor:
        """``floats`` floats of the arena, not handed out before."""
        start = self._next
        if start + floats > self._floats.numel():
            raise HessError(f"fma linear: the packed weights need more room than the "
                            f"{(self._floats.numel() - start) * 4} bytes left for them")
        self._next = start + floats + (-floats % 16)
        return self._floats[start : start + floats]


CODE_BITS = (4, 8)  # tried in this order: a weight is kept as the smallest codes that rebuild it exactly
CODE_BLOCK = 32  # inputs per block of codes (one d and m per output and block)


class FmaLinear:
    """``y = x W^T + b`` through the fma kernel, the weight packed once into panels (in ``arena`` if given).

    With ``codes`` (the default) a weight whose every block of 32 inputs is ``d * q + m`` (fp16 d and m,
    q of 4 or 8 bits: a model imported from a GGUF's Q4_0, Q4_1 or Q8_0) is kept as those codes, which
    the kernel turns back into the same fp32 bits as it reads them (``exact_kernels.c``): the same
    results from a fifth of the weight stream. Any other weight stays fp32."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, panel_width: int | None = None,
                 arena: PackedArena | None = None, codes: bool = True) -> None:
        self.lib = load_library()
        widest = self.lib.fma_linear_widest_panel()
        # 32 outputs per panel runs AVX-512 tiles, 16 AVX2 ones: the same bits, twice the outputs per FMA.
        width = widest if panel_width is None else panel_width
        if width not in PANEL_WIDTHS or width > widest:
            raise HessError(f"fma linear: panel width {width} cannot run on this CPU (widest: {widest})")
        self.panel_width = width
        weight = weight.detach().float().contiguous()
        self.out_features, self.in_features = weight.shape
        panels = -(-self.out_features // width)
        padded = weight
        if panels * width != self.out_features:
            padded = weight.new_zeros(panels * width, self.in_features)
            padded[: self.out_features] = weight
        # (panels, K, width): each panel's weights in the order the kernel streams them; always a copy
        # (padded may be the caller's weight, and with K = 1 the transpose is already contiguous).
        panel_major = padded.view(panels, width, self.in_features).transpose(1, 2)
        panel_major = panel_major.clone(memory_format=torch.contiguous_format)
        del padded
        coded = self._codes(weight, panel_major) if codes else None
        self.bits, packed = coded if coded is not None else (0, panel_major)
        if arena is None:
            self.packed = packed
        else:
            floats = arena.take(-(-packed.numel() * packed.element_size() // 4))
            self.packed = (floats if packed.dtype == torch.float32 else floats.view(torch.uint8)[: packed.numel()])
            self.packed.copy_(packed.view(self.packed.shape))
        self.bias = None if bias is None else bias.detach().float().contiguous()

    def _codes(self, weight: torch.Tensor, panel_major: torch.Tensor) -> tuple[int, torch.Tensor] | None:
        """(bits, codes) of the fewest bits whose panels rebuild ``panel_major`` exactly, else None."""
        if self.in_features % CODE_BLOCK:
            return None
        panels, width = panel_major.shape[0], self.panel_width
        for bits in CODE_BITS:
            block_bytes = self.lib.code_block_bytes(width, bits)
            codes = torch.empty(panels * self.in_features // CODE_BLOCK * block_bytes, dtype=torch.uint8)
            if not self.lib.pack_codes(weight.data_ptr(), self.out_features, self.in_features, width, bits,
                                       codes.data_ptr(), torch.get_num_threads()):
                continue
            # pack_codes checked every weight; this checks the panels the kernels will read, layout included.
            # Equal as numbers: a -0 weight may come back +0, which changes no FMA chain (exact_kernels.c).
            rebuilt = torch.empty_like(panel_major)
            self.lib.unpack_codes(codes.data_ptr(), panels, self.in_features, width, bits, rebuilt.data_ptr())
            if torch.equal(rebuilt, panel_major):
                return bits, codes
        return None

    def _run(self, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        # The kernel trusts its pointers: shapes, type and layout are checked here.
        if x.dtype != torch.float32 or x.dim() != 2 or x.shape[1] != self.in_features or x.device.type != "cpu":
            raise ValueError(f"fma linear: expected float32 (rows, {self.in_features}) on the CPU, "
                             f"got {x.dtype} {tuple(x.shape)} on {x.device}")
        x = x.contiguous()
        rows = x.shape[0]
        if residual is not None:
            if residual.dtype != torch.float32 or residual.shape != (rows, self.out_features):
                raise ValueError(f"fma linear: residual must be float32 ({rows}, {self.out_features}), "
                                 f"got {residual.dtype} {tuple(residual.shape)}")
            residual = residual.contiguous()
        y = x.new_empty(rows, self.out_features)
        if rows:
            with torch.profiler.record_function("fma::linear"):  # named in `perf profile`
                self.lib.fma_linear(
                    x.data_ptr(), rows, self.in_features, self.packed.data_ptr(), self.out_features,
                    self.panel_width, self.bits, None if self.bias is None else self.bias.data_ptr(),
                    None if residual is None else residual.data_ptr(), y.data_ptr(), torch.get_num_threads(),
                )
        return y

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, None)

    def add_to(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """``residual + self(x)`` in one pass (the same bits as adding afterwards)."""
        return self._run(x, residual)

    def nbytes(self) -> int:
        """Bytes of weight a call reads: the codes, or the fp32 weight."""
        return self.packed.numel() if self.bits else self.in_features * self.out_features * 4


def main() -> int:
    """Build the kernel now (``make setup`` runs this); never fails the setup: it prints why not."""
    problem = kernel_problem()
    if problem is None:
        print(f"fma kernels ready: {load_library()._name}")
    else:
        print(f"{problem}; the engine will use oneDNN's packed linear instead", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
