"""``hessgpt tokenizer train FILE --vocab-size 8000 --out tok.json``: a byte-level BPE on your text."""

from __future__ import annotations

import argparse
import time

from hessgpt.errors import HessError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    train = sub.add_parser("train", help="train a byte-level BPE on text files")
    train.add_argument("files", nargs="+", help="UTF-8 text files")
    train.add_argument("--vocab-size", type=int, default=8000, help="base vocabulary size (>= 256)")
    train.add_argument("--out", required=True, help="where to write the tokenizer (JSON)")


def run(args: argparse.Namespace) -> int:
    from hessgpt.tokenizer import train_bpe

    if args.vocab_size < 256:
        raise HessError(f"--vocab-size: must be at least 256 (one id per byte), got {args.vocab_size}")
    start = time.perf_counter()
    tokenizer = train_bpe(args.files, args.vocab_size)
    tokenizer.save(args.out)
    print(f"{args.out}: {tokenizer.vocab_size} ids in {time.perf_counter() - start:.1f}s")
    return 0
