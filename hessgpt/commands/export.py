"""``hessgpt export CK --format hf --out DIR``: a model for transformers and the tools built on it."""

from __future__ import annotations

import argparse
from pathlib import Path

from hessgpt.errors import HessError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="model file or name (see `hessgpt import`)")
    parser.add_argument("--format", required=True, choices=("hf",),
                        help="hf: config.json + model.safetensors that transformers loads")
    parser.add_argument("--out", required=True, help="the folder to write")


def run(args: argparse.Namespace) -> int:
    from hessgpt.exporters.hf import export_hf
    from hessgpt.loading import load_model

    if str(args.checkpoint).startswith("preset:"):
        raise HessError("checkpoint: export a trained or imported model file, not a random preset")
    loaded = load_model(args.checkpoint)
    written = export_hf(loaded, Path(args.out))
    print(f"{args.out}: {', '.join(p.name for p in written)} ({loaded.config.arch}, "
          f"{loaded.model.num_parameters():,} parameters)")
    return 0
