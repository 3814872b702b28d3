"""``hessgpt presets``: the named model configurations and their parameter counts."""

from __future__ import annotations

import argparse

from hessgpt.config import PRESETS, count_parameters


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print(f"{'preset':<20} {'arch':<6} {'params':>14} {'vocab':>7} {'d':>5} {'layers':>6} {'heads':>5} "
          f"{'kv':>3} {'ctx':>5}")
    for name, cfg in PRESETS.items():
        print(f"{name:<20} {cfg.arch:<6} {count_parameters(cfg):>14,} {cfg.vocab_size:>7} {cfg.n_embd:>5} "
              f"{cfg.n_layer:>6} {cfg.n_head:>5} {cfg.kv_heads:>3} {cfg.block_size:>5}")
    return 0
