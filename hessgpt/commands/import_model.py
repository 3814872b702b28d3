"""``hessgpt import PATH --out checkpoints/NAME.pt``: any supported file to a native checkpoint."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hessgpt.errors import HessError
from hessgpt.importers.tokenizer_arg import tokenizer_from_arg
from hessgpt.loading import load_model
from hessgpt.safe_io import check_output_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="nanoGPT ckpt.pt, Hugging Face GPT-2 weights (.bin/.safetensors/folder), GGUF, ...")
    parser.add_argument("--out", required=True, help="where to write the native checkpoint")
    parser.add_argument("--name", help="model name stored in the checkpoint")
    parser.add_argument("--tokenizer", metavar="SPEC",
                        help="the tokenizer the model was trained with, when the file lacks it: nanoGPT's "
                             "meta.pkl, char:TRAIN.txt, word:TRAIN.txt, gpt2, or a tokenizer JSON "
                             "(default: the file's own; for nanoGPT, meta.pkl beside it or in data/<dataset>/)")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    out = Path(args.out)
    if out.is_dir():
        raise HessError(f"--out: {out} is a folder; give the checkpoint file name, e.g. {out}/model.pt")
    check_output_dir(out.parent, "--out")  # before the model is read: a read-only folder fails at once
    tokenizer = tokenizer_from_arg(args.tokenizer) if args.tokenizer else None
    loaded = load_model(args.path, tokenizer=tokenizer)
    if args.name:
        loaded.config.name = args.name
    out = loaded.save(out, meta={"imported_from": str(args.path)})
    params = loaded.model.num_parameters()
    print(f"{out}  ({loaded.config.arch}, {params:,} parameters, {time.perf_counter() - start:.1f}s)")
    return 0
