"""The ``fma`` path: our own exact fp32 kernels (``exact_kernels.c``), built once with the C compiler.

Three kernels: the linear layers, where each output is one chain of fused multiply-adds in input
order; the attention of decoding rows, where each row reads only its own keys in a fixed order; and
RMSNorm, each row on its own.
So a row's bits depend on nothing but that row, its keys and the weights: not the batch, not the
thread count, not the CPU model among those with AVX2 and FMA. Library kernels (oneDNN, MKL) pick
their blocking per ISA, which is why their answers differ between machine types. They are also
faster than oneDNN's packed path and than batched small matrix products (docs/performance.md).

The shared library is compiled at first use (or by ``python -m hessgpt.exact_kernels``, which ``make
setup`` runs) into ``~/.cache/hessgpt/native``, named by a hash of the source, the flags and the
compiler, and written atomically. Without a C compiler, or on a CPU without AVX2 and FMA, the path is
unavailable and the engine keeps oneDNN; ``kernel_problem()`` says why in one line.
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

from hessgpt.errors import HessError

SOURCE = Path(__file__).with_name("exact_kernels.c")
VERSION = 4  # must equal exact_kernels_version() in the C source
# -ffp-contract=off: the compiler must not fuse the bias or residual adds; the arithmetic is as written.
FLAGS = ("-O3", "-mavx2", "-mfma", "-ffp-contract=off", "-fno-fast-math", "-pthread", "-shared", "-fPIC")
REQUIRED_CPU_FLAGS = {"avx2", "fma"}


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
    lib.fma_linear.argtypes = [pointer, size, size, pointer, size, pointer, pointer, pointer, threads]
    lib.fma_linear.restype = None
    lib.decode_attention.argtypes = [pointer, size, size, size, size, size, pointer, pointer, size, pointer,
                                     pointer, pointer, pointer, threads]
    lib.decode_attention.restype = None
    lib.rms_norm.argtypes = [pointer, size, size, pointer, ctypes.c_float, pointer]
    lib.rms_norm.restype = None
    return lib


def kernel_problem() -> str | None:
    """None when the kernel can run here, else the one-line reason it cannot."""
    try:
        load_library()
    except HessError as exc:
        return str(exc)
    return None


class DecodeRows:
    """The rows of a forward pass that decode one token: their slot and how many keys they attend to.

    Checked once per pass against the cache's shape, because the kernel trusts these indices."""

    def __init__(self, rows: list[int], slots: list[int], lengths: list[int], n_rows: int,
                 cache_slots: int, capacity: int, heads: int) -> None:
        if not len(rows) == len(slots) == len(lengths):
            raise ValueError("decode rows: rows, slots and lengths differ in length")
        for row, slot, length in zip(rows, slots, lengths, strict=True):
            if not (0 <= row < n_rows and 0 <= slot < cache_slots and 1 <= length <= capacity):
                raise ValueError(f"decode rows: row {row}, slot {slot}, length {length} outside the cache "
                                 f"({n_rows} rows, {cache_slots} slots, capacity {capacity})")
        self.all_rows = rows == list(range(n_rows))
        self.rows = torch.tensor(rows)
        self.slots = torch.tensor(slots, dtype=torch.long)
        self.lengths = torch.tensor(lengths, dtype=torch.long)
        self.capacity, self.cache_slots = capacity, cache_slots
        self.scratch = torch.empty(len(rows) * heads * capacity)


def decode_attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                     decode: DecodeRows) -> torch.Tensor:
    """(rows, heads, head_dim): each decoding row's attention over its slot's first ``length`` keys.

    q: (rows, heads, head_dim), already scaled; the caches (slots, kv_heads, capacity, head_dim)."""
    rows, heads, head_dim = q.shape
    slots, kv_heads, capacity, cache_dim = k_cache.shape
    if (q.dtype != torch.float32 or q.stride(2) != 1 or q.stride(1) != head_dim or head_dim % 8
            or rows != len(decode.rows) or heads % kv_heads or cache_dim != head_dim
            or (slots, capacity) != (decode.cache_slots, decode.capacity) or v_cache.shape != k_cache.shape
            or not (k_cache.is_contiguous() and v_cache.is_contiguous())
            or k_cache.dtype != torch.float32 or v_cache.dtype != torch.float32):
        raise ValueError(f"decode attention: unexpected shapes q {tuple(q.shape)}, cache {tuple(k_cache.shape)}")
    out = q.new_empty(rows, heads, head_dim)
    if rows:
        load_library().decode_attention(
            q.data_ptr(), q.stride(0), rows, heads, kv_heads, head_dim, k_cache.data_ptr(), v_cache.data_ptr(),
            capacity, decode.slots.data_ptr(), decode.lengths.data_ptr(), out.data_ptr(),
            decode.scratch.data_ptr(), torch.get_num_threads(),
        )
    return out


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Each row of x (rows, cols) times 1 / sqrt(mean(row^2) + eps), times weight; cols % 8 == 0."""
    rows, cols = x.shape
    if (x.dtype != torch.float32 or weight.dtype != torch.float32 or weight.shape != (cols,) or cols % 8
            or not weight.is_contiguous()):
        raise ValueError(f"rms norm: unexpected shapes x {tuple(x.shape)}, weight {tuple(weight.shape)}")
    x = x.contiguous()
    y = torch.empty_like(x)
    load_library().rms_norm(x.data_ptr(), rows, cols, weight.data_ptr(), eps, y.data_ptr())
    return y


class FmaLinear:
    """``y = x W^T + b`` through the fma kernel, the weight packed once into panels."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.lib = load_library()
        width = self.lib.fma_linear_panel_width()
        weight = weight.detach().float()
        self.out_features, self.in_features = weight.shape
        panels = -(-self.out_features // width)
        padded = weight.new_zeros(panels * width, self.in_features)
        padded[: self.out_features] = weight
        # (panels, K, width): each panel's weights in the order the kernel streams them.
        self.packed = padded.view(panels, width, self.in_features).transpose(1, 2).contiguous()
        self.bias = None if bias is None else bias.detach().float().contiguous()

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
            self.lib.fma_linear(
                x.data_ptr(), rows, self.in_features, self.packed.data_ptr(), self.out_features,
                None if self.bias is None else self.bias.data_ptr(),
                None if residual is None else residual.data_ptr(), y.data_ptr(), torch.get_num_threads(),
            )
        return y

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, None)

    def add_to(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """``residual + self(x)`` in one pass (the same bits as adding afterwards)."""
        return self._run(x, residual)

    def nbytes(self) -> int:
        return self.in_features * self.out_features * 4


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
