"""``hessgpt export CK --format hf|safetensors|gguf --out PATH``: the model in another tool's format.

- ``hf``: a folder (config.json + model.safetensors) that transformers loads;
- ``safetensors``: one file with our tensor names, config, tokenizer and chat template (``hessgpt import``
  reads it back);
- ``gguf``: one llama.cpp file (Llama architecture, byte-level BPE), read by llama.cpp, transformers and
  ``hessgpt import``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hessgpt.errors import HessError

FORMATS = ("hf", "safetensors", "gguf")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="model file or name (see `hessgpt import`)")
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="hf: config.json + model.safetensors that transformers loads; safetensors: one file "
                        "with the config and tokenizer inside (for `hessgpt import`); gguf: llama.cpp's format "
                        "(Llama-architecture models)")
    parser.add_argument("--out", required=True, help="the folder (hf) or file (safetensors, gguf) to write")
    parser.add_argument("--dtype", default="f32", choices=("f32", "f16", "bf16", "q8_0"),
                        help="weights as written: f32 (lossless, the default); f16 (safetensors, gguf); "
                        "bf16 (safetensors); q8_0 (gguf: llama.cpp's 8-bit blocks)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")


def check_out(out: Path, fmt: str, overwrite: bool) -> None:
    """Refuse to write over something unless asked, and a file where a folder goes (or the reverse)."""
    if fmt == "hf":
        if out.exists() and not out.is_dir():
            raise HessError(f"--out: {out} is a file; --format hf writes a folder")
        taken = out.is_dir() and any(out.iterdir())
    else:
        if out.is_dir():
            raise HessError(f"--out: {out} is a folder; --format {fmt} writes one file (give its name)")
        taken = out.exists() or out.is_symlink()
    if taken and not overwrite:
        raise HessError(f"--out: {out} already exists; pass --overwrite to replace it")


# The weight types each format can hold.
DTYPES = {"hf": ("f32",), "safetensors": ("f32", "f16", "bf16"), "gguf": ("f32", "f16", "q8_0")}


def run(args: argparse.Namespace) -> int:
    from hessgpt.loading import load_model

    if str(args.checkpoint).startswith("preset:"):
        raise HessError("checkpoint: export a trained or imported model file, not a random preset")
    if args.dtype not in DTYPES[args.format]:
        raise HessError(f"--dtype: --format {args.format} writes {', '.join(DTYPES[args.format])}, not {args.dtype}")
    out = Path(args.out)
    check_out(out, args.format, args.overwrite)
    loaded = load_model(args.checkpoint)
    if args.format == "hf":
        from hessgpt.exporters.hf import export_hf

        written = export_hf(loaded, out)
    elif args.format == "safetensors":
        from hessgpt.exporters.native_safetensors import export_safetensors

        written = export_safetensors(loaded, out, args.dtype)
    else:
        from hessgpt.exporters.gguf_llama import export_gguf

        written = export_gguf(loaded, out, args.dtype)
    print(f"{args.out}: {', '.join(p.name for p in written)} ({loaded.config.arch}, "
          f"{loaded.model.num_parameters():,} parameters)")
    return 0
