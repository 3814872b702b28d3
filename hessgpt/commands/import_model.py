"""``hessgpt import PATH --out checkpoints/NAME.pt``: any supported file to a native checkpoint."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hessgpt.loading import load_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="nanoGPT ckpt.pt, Hugging Face GPT-2 weights (.bin/.safetensors/folder), GGUF, ...")
    parser.add_argument("--out", required=True, help="where to write the native checkpoint")
    parser.add_argument("--name", help="model name stored in the checkpoint")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    loaded = load_model(args.path)
    if args.name:
        loaded.config.name = args.name
    out = loaded.save(Path(args.out), meta={"imported_from": str(args.path)})
    params = loaded.model.num_parameters()
    print(f"{out}  ({loaded.config.arch}, {params:,} parameters, {time.perf_counter() - start:.1f}s)")
    return 0
