"""``hessgpt reference``: install and import SmolLM2-135M-Instruct; prints the checkpoint path."""

from __future__ import annotations

import argparse

from hessgpt.reference import ensure_reference


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out-dir", default="checkpoints", help="folder for the imported checkpoint")
    parser.add_argument("--force", action="store_true", help="import again even if the checkpoint exists")


def run(args: argparse.Namespace) -> int:
    print(ensure_reference(args.out_dir, force=args.force))
    return 0
