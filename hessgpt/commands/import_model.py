"""``hessgpt import PATH --out checkpoints/NAME.pt``: any supported file to a native checkpoint."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hessgpt.errors import HessError
from hessgpt.loading import load_model
from hessgpt.safe_io import check_output_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="nanoGPT ckpt.pt, Hugging Face GPT-2 weights (.bin/.safetensors/folder), GGUF, ...")
    parser.add_argument("--out", required=True, help="where to write the native checkpoint")
    parser.add_argument("--name", help="model name stored in the checkpoint")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    out = Path(args.out)
    if out.is_dir():
        raise HessError(f"--out: {out} is a folder; give the checkpoint file name, e.g. {out}/model.pt")
    check_output_dir(out.parent, "--out")  # before the model is read: a read-only folder fails at once
    loaded = load_model(args.path)
    if args.name:
        loaded.config.name = args.name
    out = loaded.save(out, meta={"imported_from": str(args.path)})
    params = loaded.model.num_parameters()
    print(f"{out}  ({loaded.config.arch}, {params:,} parameters, {time.perf_counter() - start:.1f}s)")
    return 0
