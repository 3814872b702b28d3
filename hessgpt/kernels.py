"""Linear-layer kernels for the engine, chosen by device, precision and what the CPU offers.

On the CPU the engine needs an EXACT linear: every output row computed the same way whatever the
number of rows, so that an answer does not depend on what shares its batch. Which library path
does that (and which is fastest) depends on the CPU's vector ISA, so candidates are listed per ISA
(``hessgpt.machine.isa_level``) and each must pass a batch-invariance self-check on this machine
(run once per process) before it may be chosen:

- ``fma``: our own kernel (``hessgpt/exact_kernels.c``, built with the C compiler at first use): one
  chain of fused multiply-adds per output in input order, exact by construction and the same bits on
  every CPU with AVX2 and FMA, AMD or Intel; unavailable without a compiler or without those flags.
  It keeps a weight imported from a quantized file as its 4- or 8-bit codes where they rebuild every
  weight bit for bit (``FmaLinear``); ``fma-fp32`` is the same kernels with every weight in fp32
  panels, the same bits, for measurement;
- ``onednn``: oneDNN with the weight packed once (``mkldnn._linear_pointwise``);
- ``mkl-pad4``: ``F.linear`` (MKL sgemm) with the rows padded to a multiple of four, which keeps MKL
  off its one-row gemv and its edge kernels for the last rows.

``torch`` (``F.linear`` as is) is the device-generic path used on CUDA; on the CPU it is chosen for
fp32 only when asked for, or when no exact path passes. ``--precision bf16`` takes the first bf16 path
that passes the same check (oneDNN, then torch), and ``torch`` if neither does.
``HESSGPT_LINEAR=NAME`` (or ``python -m hessgpt.perf generate --linear-kernel``) forces a path for
measurement. Different paths round differently, so the path is recorded with every run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache, partial

import torch
import torch.nn.functional as F

from hessgpt.errors import HessError

LINEAR_ENV = "HESSGPT_LINEAR"
FMA_PATHS = ("fma", "fma-fp32")
EXACT_CPU_PATHS = (*FMA_PATHS, "onednn", "mkl-pad4")
LINEAR_PATHS = (*EXACT_CPU_PATHS, "torch")
PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
# Exact paths in order of preference per ISA (docs/performance.md has the measurements). fma comes
# first wherever it can run: besides its speed, it gives the same answers on AMD and Intel machines.
PREFERRED_BY_ISA = {
    "amx": ("fma", "onednn", "mkl-pad4"),
    "avx512": ("fma", "onednn", "mkl-pad4"),
    "avx2": ("fma", "onednn", "mkl-pad4"),
    "baseline": ("onednn", "mkl-pad4"),
}


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without a GPU is a HessError."""
    if name not in DEVICES:
        raise HessError(f"--device: must be one of {', '.join(DEVICES)}, got {name!r}")
    has_cuda = torch.cuda.is_available()
    if name == "auto":
        return "cuda" if has_cuda else "cpu"
    if name == "cuda" and not has_cuda:
        raise HessError("--device cuda: torch sees no CUDA GPU on this machine (use --device cpu or auto)")
    return name


# Rows per decoding step when the user does not choose. Answers do not depend on it (batch invariance),
# only speed and memory do. With our fp32 kernels on AVX-512 a 32-row step costs little more than a
# 16-row one (the tiles keep up with the weight stream): the full bench took 8-16% less time at 32 on
# Intel Xeons (docs/performance.md section 7). On AVX2 (AMD EPYC) 32 measured no gain. The KV cache
# takes memory only for the positions written, so 32 slots cost little more than 16; the memory floor
# keeps a small machine at 16.
BATCH_SIZE = 16
WIDE_BATCH_SIZE = 32
WIDE_BATCH_MIN_MEMORY = 8 << 30


def default_batch_size(device: str = "cpu", precision: str = "fp32", int8: bool = False) -> int:
    """WIDE_BATCH_SIZE where the engine will run our fp32 kernels with AVX-512 tiles and at least
    WIDE_BATCH_MIN_MEMORY is available, else BATCH_SIZE. ``device`` is already resolved."""
    if device != "cpu" or precision != "fp32" or int8:
        return BATCH_SIZE
    from hessgpt.machine import describe_machine
    from hessgpt.memory_budget import available_bytes

    if choose_linear_path(describe_machine()["isa"]) not in FMA_PATHS or available_bytes() < WIDE_BATCH_MIN_MEMORY:
        return BATCH_SIZE
    from hessgpt.exact_kernels import load_library

    return WIDE_BATCH_SIZE if load_library().fma_linear_widest_panel() == 32 else BATCH_SIZE


# oneDNN builds (JIT-compiles) a kernel for each shape of call, and two caches keep them: oneDNN's
# primitive cache and ideep's (1,024 entries each, ~0.3 MB an entry, mostly generated code). A server's
# steps mix decoding rows with prompts of every length, so every new row count M of every linear added
# entries: on SmolLM2 the resident memory climbed by ~0.1-0.2 MB per request, for thousands of requests
# before the caches would be full. So a call's rows are padded with zero rows to one of 28 sizes, and
# longer inputs run in chunks of ROW_CHUNK rows. The packed kernel computes each row the same way
# whatever M is (what the self-check below verifies), so padding changes no bit of the real rows.
ROW_CHUNK = 512


def row_bucket(n: int) -> int:
    """The row count a call of ``n`` rows (1 <= n <= ROW_CHUNK) runs at: 1, 2, 3, 4, 6, 8, 12, 16, then
    four sizes per doubling (20, 24, 28, 32, 40, 48, ...), so at most 25% of the rows are padding."""
    if n <= 4:
        return n
    step = 1 << ((n - 1).bit_length() - (2 if n <= 16 else 3))
    return -(-n // step) * step


def row_buckets(max_rows: int) -> list[int]:
    """Every row count that calls of 1 to ``max_rows`` rows run at."""
    return sorted({row_bucket(n) for n in range(1, min(max_rows, ROW_CHUNK) + 1)})


class OneDNNLinear:
    """``y = x W^T + b`` with the weight packed once for oneDNN (fp32, or bf16 with fp32 in and out).

    Calls run at a bounded set of row counts (``row_bucket``, chunks of ROW_CHUNK rows)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        # The bias stays fp32 and is added after the bf16 product (bf16 rounding once, on the product).
        self.bias = None if bias is None else bias.detach().float().contiguous()
        w = weight.detach().float().to(dtype).contiguous()
        # batch_size=None asks for a layout that serves any number of rows with one kernel.
        self.weight = torch.ops.mkldnn._reorder_linear_weight(w, None)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._in_buckets(x, None)

    def add_to(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """``residual + self(x)`` with the add fused into the kernel (the same bits, one op less)."""
        return self._in_buckets(x, residual)

    def _in_buckets(self, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        n = x.shape[0]
        if n > ROW_CHUNK:
            return torch.cat([
                self._in_buckets(x[i : i + ROW_CHUNK], None if residual is None else residual[i : i + ROW_CHUNK])
                for i in range(0, n, ROW_CHUNK)
            ])
        padded = row_bucket(n) if n else n
        if padded == n:
            return self._product(x, residual)
        x = F.pad(x, (0, 0, 0, padded - n))
        residual = None if residual is None else F.pad(residual, (0, 0, 0, padded - n))
        return self._product(x, residual)[:n]

    def build_kernels(self, max_rows: int, fused_add: bool) -> None:
        """Run once at each row count that calls of up to ``max_rows`` rows use, so that oneDNN builds
        and caches every kernel now (the caches are keyed by shape and shared by all threads)."""
        for rows in row_buckets(max_rows):
            x = torch.zeros(rows, self.in_features)
            self._product(x, torch.zeros(rows, self.out_features) if fused_add else None)

    def _product(self, x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
        if self.dtype == torch.float32:
            if residual is not None:
                return torch.ops.mkldnn._linear_pointwise.binary(x, residual, self.weight, self.bias, "add")
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        y = torch.ops.mkldnn._linear_pointwise(x.to(self.dtype), self.weight, None, "none", [], "").float()
        y = y if self.bias is None else y + self.bias
        return y if residual is None else residual + y

    def nbytes(self) -> int:
        return self.in_features * self.out_features * self.weight.element_size()


class PaddedLinear:
    """``F.linear`` with the rows padded to a multiple of ``rows`` (MKL's main kernel for every row)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, rows: int = 4) -> None:
        self.weight = weight.detach().float().contiguous()
        self.in_features, self.out_features = self.weight.shape[1], self.weight.shape[0]
        self.bias = None if bias is None else bias.detach().float().contiguous()
        self.rows = rows

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        padded = -(-n // self.rows) * self.rows
        if padded != n:
            x = torch.cat([x, x.new_zeros(padded - n, x.shape[1])])
        return F.linear(x, self.weight, self.bias)[:n]

    def nbytes(self) -> int:
        return self.in_features * self.out_features * 4


class TorchLinear:
    """Plain ``F.linear`` on any device, fp32 or bf16 weights (fp32 in and out)."""

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype, device: str
    ) -> None:
        self.dtype = dtype
        self.weight = weight.detach().to(device=device, dtype=dtype).contiguous()
        self.in_features, self.out_features = self.weight.shape[1], self.weight.shape[0]
        self.bias = None if bias is None else bias.detach().to(device=device, dtype=torch.float32)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x.to(self.dtype), self.weight)
        y = y if self.dtype == torch.float32 else y.float()
        return y if self.bias is None else y + self.bias

    def nbytes(self) -> int:
        return self.in_features * self.out_features * self.weight.element_size()


LinearFactory = Callable[[torch.Tensor, torch.Tensor | None], object]


def linear_factory(path: str, precision: str = "fp32", device: str = "cpu") -> LinearFactory:
    """A constructor ``(weight, bias) -> callable linear`` for ``path``."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    if path in FMA_PATHS:
        if precision != "fp32":
            raise HessError(f"HESSGPT_LINEAR={path}: fp32 only (use onednn or torch with --precision bf16)")
        from hessgpt.exact_kernels import FmaLinear

        return partial(FmaLinear, codes=path == "fma")
    if path == "onednn":
        return lambda w, b: OneDNNLinear(w, b, dtype)
    if path == "mkl-pad4":
        if precision != "fp32":
            raise HessError("HESSGPT_LINEAR=mkl-pad4: fp32 only (use onednn or torch with --precision bf16)")
        return lambda w, b: PaddedLinear(w, b, 4)
    if path == "torch":
        return lambda w, b: TorchLinear(w, b, dtype, device)
    raise HessError(f"{LINEAR_ENV}: unknown linear path {path!r} (one of {', '.join(LINEAR_PATHS)})")


@cache
def is_batch_invariant(path: str, precision: str = "fp32") -> bool:
    """Does ``path`` give every row the same bits alone and among up to 33 rows, on this machine?

    A check of the kernels actually dispatched here (two weight shapes, row counts on both sides of
    the multiples of 4, 8 and 16 where MKL and oneDNN change kernels), run once per process; not a
    proof for every shape, which the engine tests cover on the real models."""
    generator = torch.Generator().manual_seed(0)
    try:
        for out_features, in_features in ((96, 64), (48, 160)):
            weight = torch.randn(out_features, in_features, generator=generator)
            bias = torch.randn(out_features, generator=generator)
            linear = linear_factory(path, precision)(weight, bias)
            if isinstance(linear, OneDNNLinear):  # the kernel itself, at each exact row count: the
                linear = partial(linear._product, residual=None)  # row buckets rely on it
            x = torch.randn(33, in_features, generator=generator)
            alone = torch.cat([linear(x[i : i + 1]) for i in range(len(x))])
            for n in (2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33):
                if not torch.equal(linear(x[:n]), alone[:n]):
                    return False
    except (RuntimeError, AttributeError, HessError):  # not in this torch build, or fma cannot run here
        return False
    return True


def choose_linear_path(isa: str, device: str = "cpu", precision: str = "fp32",
                       requested: str | None = None) -> str:
    """The linear path to use: ``requested`` (or $HESSGPT_LINEAR) if given, else on the CPU the first
    exact path for ``isa`` that passes the self-check, else ``torch``. On CUDA always ``torch``."""
    requested = requested or os.environ.get(LINEAR_ENV) or None
    if requested is not None and requested not in LINEAR_PATHS:
        raise HessError(f"{LINEAR_ENV}: unknown linear path {requested!r} (one of {', '.join(LINEAR_PATHS)})")
    if device != "cpu":
        if requested not in (None, "torch"):
            raise HessError(f"{LINEAR_ENV}={requested}: only the torch path runs on {device}")
        return "torch"
    if requested is not None:
        if requested in FMA_PATHS:
            from hessgpt.exact_kernels import kernel_problem

            problem = kernel_problem()
            if problem is not None:
                raise HessError(f"{LINEAR_ENV}={requested}: {problem}")
        if requested in EXACT_CPU_PATHS and not is_batch_invariant(requested, precision):
            raise HessError(
                f"{LINEAR_ENV}={requested}: this path is not batch-invariant on this machine (or not available "
                "in this torch build); unset it to let the engine choose"
            )
        return requested
    candidates = ("onednn", "torch") if precision == "bf16" else PREFERRED_BY_ISA.get(isa, EXACT_CPU_PATHS)
    for path in candidates:
        if is_batch_invariant(path, precision):
            return path
    return "torch"  # no exact path here: answers may then depend on the batch (recorded with the run)
