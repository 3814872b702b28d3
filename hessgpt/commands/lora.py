"""``hessgpt lora merge --base CK --adapter A --out CK2``: fold trained adapters into a checkpoint.

``hessgpt lora info A`` prints what an adapter file holds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hessgpt.errors import HessError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    merge = sub.add_parser("merge", help="merge a LoRA adapter into a base checkpoint (native output)")
    merge.add_argument("--base", required=True, help="the checkpoint the adapter was trained on")
    merge.add_argument("--adapter", required=True, help="adapter file written by `hessgpt train --lora`")
    merge.add_argument("--out", required=True, help="where to write the merged native checkpoint")
    merge.add_argument(
        "--force", action="store_true", help="merge even if the base is not the adapter's base"
    )
    info = sub.add_parser("info", help="show an adapter's settings, base and training metadata")
    info.add_argument("adapter")


def describe_training(meta: dict) -> str:
    """``epoch 2, step 40, val_loss 1.2345, data 3f2a9c01d4e7``: what the adapter's run reached."""
    parts = []
    for key in ("epoch", "step"):
        if meta.get(key) is not None:
            parts.append(f"{key} {meta[key]}")
    if isinstance(meta.get("val_loss"), (int, float)):
        parts.append(f"val_loss {meta['val_loss']:.4f}")
    if isinstance(meta.get("data_hash"), str):
        parts.append(f"data {meta['data_hash'][:12]}")
    return ", ".join(parts) or "no training metadata"


def run(args: argparse.Namespace) -> int:
    from hessgpt.checkpoint import sha256_file
    from hessgpt.lora import load_adapter, merge_adapter_into

    if args.action == "info":
        adapter = load_adapter(args.adapter)
        params = sum(t.numel() for t in adapter.weights.values())
        print(
            f"{args.adapter}: r={adapter.spec.r} alpha={adapter.spec.alpha:g} targets={','.join(adapter.spec.targets)} "
            f"({len(adapter.modules)} layers, {params:,} parameters)"
        )
        print(f"base: {adapter.base.get('path')} sha256 {adapter.base.get('sha256')}")
        print(f"training: {describe_training(adapter.meta)}")
        return 0

    from hessgpt.loading import load_model

    start = time.perf_counter()
    if Path(args.out).resolve() == Path(args.base).resolve():
        raise HessError("--out: write the merged model to a new file, not over --base")
    adapter = load_adapter(args.adapter)
    loaded = load_model(args.base)
    meta = merge_adapter_into(loaded, adapter, sha256_file(args.adapter), force=args.force)
    for key in ("epoch", "step", "val_loss", "data_hash"):
        if key in adapter.meta:
            meta[key] = adapter.meta[key]
    out = loaded.save(args.out, meta=meta)
    print(
        f"{out}: merged {len(adapter.modules)} adapted layers (r={adapter.spec.r}) into {args.base} "
        f"in {time.perf_counter() - start:.1f}s"
    )
    return 0
