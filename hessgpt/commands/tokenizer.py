"""``hessgpt tokenizer train FILE --vocab-size 8000 [--out tok.json]``: a byte-level BPE on your text."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hessgpt.errors import HessError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = sub.add_parser("train", help="train a byte-level BPE on text files")
    train.add_argument("files", nargs="+", help="UTF-8 text files")
    train.add_argument("--vocab-size", type=int, default=8000, help="base vocabulary size (>= 256)")
    train.add_argument("--out", help="where to write the tokenizer (JSON; default: FILE.tokenizer.json "
                                     "beside the first file)")


def default_out(first_file: str) -> Path:
    """``corpus.txt`` -> ``corpus.tokenizer.json`` in the same folder."""
    path = Path(first_file)
    return path.with_name(f"{path.stem}.tokenizer.json")


def run(args: argparse.Namespace) -> int:
    from hessgpt.bpe_train import train_bpe

    if args.vocab_size < 256:
        raise HessError(f"--vocab-size: must be at least 256 (one id per byte), got {args.vocab_size}")
    out = Path(args.out) if args.out else default_out(args.files[0])
    if out.is_dir():
        raise HessError(f"--out {out}: is a folder; give a file name such as {out / 'tokenizer.json'}")
    start = time.perf_counter()
    tokenizer = train_bpe(args.files, args.vocab_size)
    tokenizer.save(out)
    print(f"{out}: {tokenizer.vocab_size} ids in {time.perf_counter() - start:.1f}s")
    merges = tokenizer.vocab_size - len(tokenizer.special_tokens) - 256
    if merges < args.vocab_size - 256:
        print(f"note: {256 + merges} base ids instead of --vocab-size {args.vocab_size}: the text has only "
              f"{merges} pairs seen at least twice to merge (more text would give more merges)", file=sys.stderr)
    return 0
