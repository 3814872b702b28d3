"""The ``hessgpt`` command. Each subcommand lives in ``hessgpt/commands/<name>.py`` with
``add_arguments(parser)`` and ``run(args) -> int``; user errors print one line and exit with code 2."""

from __future__ import annotations

import argparse
import importlib
import sys

from hessgpt.errors import HessError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "presets": ("hessgpt.commands.presets", "list the model presets with their parameter counts"),
    "import": ("hessgpt.commands.import_model", "convert a nanoGPT / Hugging Face GPT-2 / GGUF file to a native checkpoint"),
    "reference": ("hessgpt.commands.reference", "install and import the reference model (SmolLM2-135M-Instruct)"),
    "tokenizer": ("hessgpt.commands.tokenizer", "train a BPE tokenizer on your text"),
    "generate": ("hessgpt.commands.generate", "complete a prompt or a file of prompts (batched, seeded)"),
    "chat": ("hessgpt.commands.chat", "talk with a model in the terminal (multi-turn, streamed)"),
    "train": ("hessgpt.commands.train", "pretrain or fine-tune a model (epoch checkpoints, LoRA, torchrun)"),
    "lora": ("hessgpt.commands.lora", "merge a trained LoRA adapter into a checkpoint"),
    "data": ("hessgpt.commands.data", "dataset statistics and the contamination check against the suites"),
    "sandbox": ("hessgpt.commands.sandbox", "run untrusted Python code in the OS-level sandbox"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hessgpt", description="HessGPT models: import, generate, chat, train.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except HessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
