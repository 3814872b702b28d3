"""What machine a run came from: CPU model, the vector ISA it offers, and what torch uses of it.

Greedy answers are bit-identical only between runs whose kernels round alike, and speed depends on
the ISA, so every ``results.json`` records this and the compare page says when two runs differ.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from pathlib import Path
from typing import Any

# The /proc/cpuinfo flags that change which fp32/bf16 kernels oneDNN and MKL pick, in rising order.
ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
             "amx_tile", "amx_bf16", "amx_int8")


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str | None, set[str]]:
    """The first processor's model name and flags ("" and no flags where the file does not exist)."""
    model, flags = None, set()
    try:
        text = path.read_text(errors="replace")[:1_000_000]
    except OSError:
        return model, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
        if model is not None and flags:
            break
    return model, flags


def last_level_cache_bytes(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int | None:
    """Size of the CPU's largest cache level as the kernel reports it (None where it does not)."""
    best: tuple[int, int] | None = None
    for index in sorted(root.glob("index*")):
        try:
            level = int((index / "level").read_text().strip())
            size = (index / "size").read_text().strip().upper()
        except (OSError, ValueError):
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1:], 1)
        digits = size.rstrip("KMG")
        if digits.isdigit() and (best is None or level > best[0]):
            best = (level, int(digits) * scale)
    return None if best is None else best[1]


def isa_level(flags: set[str]) -> str:
    """The widest matrix ISA: "amx", "avx512", "avx2" or "baseline"."""
    if {"amx_tile", "amx_bf16"} <= flags:
        return "amx"
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    return "baseline"


@lru_cache(maxsize=1)
def describe_machine() -> dict[str, Any]:
    """The machine record that goes into ``results.json`` meta (computed once per process)."""
    import torch

    model, flags = _cpuinfo()
    return {
        "cpu_model": model or platform.processor() or None,
        "isa": isa_level(flags),
        "isa_flags": [f for f in ISA_FLAGS if f in flags],
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def machine_differences(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[str]:
    """Human-readable differences between two machine records that can change answers or speed."""
    a, b = a or {}, b or {}
    out = []
    for key, label in (("cpu_model", "CPU"), ("isa", "vector ISA"), ("torch_cpu_capability", "torch kernels"),
                       ("cpus", "CPUs"), ("cuda", "GPU")):
        if key in a and key in b and a[key] != b[key]:
            out.append(f"{label}: {a[key]} vs {b[key]}")
    return out
