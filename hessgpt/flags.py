"""argparse types shared by the commands: a bad number is refused while the flags are parsed (exit 2,
naming the flag), before any file is read or any model is loaded."""

from __future__ import annotations

import argparse
import math

MAX_SEED = 2**32 - 1  # what numpy's and torch's generators all accept
# Bounds on what a flag or a request may ask for; the key/value cache is also checked against memory.
MAX_BEAMS = 64
MAX_BATCH_SIZE = 1024
MAX_NEW_TOKENS = 1 << 17


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SEED}, got {value}")
    return value


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


PRECISION_HELP = (
    "weights of the transformer blocks' linears: fp32 (default, exact) or bf16 (NOT lossless: answers and "
    "grades differ from fp32; slower than the default fp32 kernels where they run, even with AMX)"
)
INT8_HELP = (
    "int8 weights in the transformer blocks: the answers differ from fp32 (grades are not comparable with "
    "fp32 runs), and it is slower than the default fp32 kernels where they run"
)
DEVICE_HELP = (
    "where the model runs: cpu, cuda, or auto (default: cuda when torch sees a GPU, else cpu); on cuda the "
    "engine uses plain torch kernels and answers may depend on the batch size"
)


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--precision`` and ``--device``, shared by bench, generate, chat and serve."""
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help=PRECISION_HELP)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help=DEVICE_HELP)
