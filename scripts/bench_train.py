"""Training throughput: our trainer's step on hessgpt-51m against transformers' GPT-2 of the same shape.

Both models get the same random token batches, the same optimiser (``hessgpt.train.make_optimizer``:
fused AdamW with weight-decay groups), gradient clipping and the same dropout, on the same threads;
rounds alternate between the two so a busy machine slows both alike. Prints a table of training
tokens per second (median over rounds) and the optimiser each trainer ran.

    python scripts/bench_train.py [--batch-size 4] [--seq-len 256] [--steps 4] [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hessgpt.config import get_preset  # noqa: E402
from hessgpt.data import TokenizedSplit  # noqa: E402
from hessgpt.model import GPT  # noqa: E402
from hessgpt.train import RunInfo, TrainConfig, Trainer, describe_optimizer, make_optimizer  # noqa: E402


class _NoTokenizer:
    """The trainer only needs the padding id and a description for its state."""

    eos_id = 50256

    def to_dict(self) -> dict:
        return {"kind": "benchmark"}


def train_config(batches: list[torch.Tensor], lr: float) -> TrainConfig:
    return TrainConfig(epochs=1, batch_size=batches[0].shape[0], lr=lr, warmup_steps=0, weight_decay=0.1)


def ours(
    config, batches: list[torch.Tensor], lr: float, out: str
) -> tuple[torch.optim.Optimizer, Callable[[int], None]]:
    torch.manual_seed(0)
    model = GPT(config)
    windows = [(row[:-1].clone(), row[1:].clone()) for batch in batches for row in batch]
    split = TokenizedSplit(windows)
    cfg = train_config(batches, lr)
    trainer = Trainer(
        model,
        split,
        None,
        cfg,
        RunInfo(_NoTokenizer(), None, config, "x"),
        out,
        log=lambda m: None,
        progress=False,
    )
    b = batches[0].shape[0]

    def step(i: int) -> None:
        trainer.train_step([list(range(i * b, (i + 1) * b))])

    return trainer.optimizer, step


def theirs(
    config, batches: list[torch.Tensor], lr: float
) -> tuple[torch.optim.Optimizer, Callable[[int], None]]:
    import transformers

    hf_config = transformers.GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.block_size,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
    )
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(hf_config)
    model.train()
    cfg = train_config(batches, lr)
    optimizer = make_optimizer(model, cfg)  # the trainer's own: same groups, betas and fused kernel

    def step(i: int) -> None:
        ids = batches[i]
        loss = model(input_ids=ids[:, :-1], labels=ids[:, :-1].clone()).loss  # shifts inside
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return optimizer, step


def timed(step, first: int, count: int) -> float:
    start = time.perf_counter()
    for i in range(first, first + count):
        step(i)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="hessgpt-51m")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = get_preset(args.preset)
    generator = torch.Generator().manual_seed(0)
    total = 1 + args.steps * args.rounds
    batches = [
        torch.randint(0, config.vocab_size, (args.batch_size, args.seq_len + 1), generator=generator)
        for _ in range(total)
    ]
    tokens = args.batch_size * args.seq_len * args.steps
    with tempfile.TemporaryDirectory() as out:
        our_optimizer, our_step = ours(config, batches, 3e-4, out)
        their_optimizer, their_step = theirs(config, batches, 3e-4)
        timed(our_step, 0, 1)  # warm-up: allocator, first AdamW state
        timed(their_step, 0, 1)
        rates: dict[str, list[float]] = {"hessgpt (ours)": [], "transformers GPT2LMHeadModel": []}
        for r in range(args.rounds):
            first = 1 + r * args.steps
            if r % 2 == 0:
                rates["hessgpt (ours)"].append(tokens / timed(our_step, first, args.steps))
                rates["transformers GPT2LMHeadModel"].append(tokens / timed(their_step, first, args.steps))
            else:
                rates["transformers GPT2LMHeadModel"].append(tokens / timed(their_step, first, args.steps))
                rates["hessgpt (ours)"].append(tokens / timed(our_step, first, args.steps))
    print(
        f"{args.preset}: batch {args.batch_size} x {args.seq_len} tokens, {args.steps} steps x {args.rounds} rounds, "
        f"{args.threads} threads, torch {torch.__version__}"
    )
    optimizers = {
        "hessgpt (ours)": describe_optimizer(our_optimizer),
        "transformers GPT2LMHeadModel": describe_optimizer(their_optimizer),
    }
    width = max(len(text) for text in optimizers.values())
    print(
        f"| {'trainer':<30} | {'tokens/s (median)':>17} | {'min':>8} | {'max':>8} | {'optimiser':<{width}} |"
    )
    print(f"|{'-' * 32}|{'-' * 19}|{'-' * 10}|{'-' * 10}|{'-' * (width + 2)}|")
    for name, values in rates.items():
        print(
            f"| {name:<30} | {statistics.median(values):>17.0f} | {min(values):>8.0f} | {max(values):>8.0f} "
            f"| {optimizers[name]:<{width}} |"
        )
    ratio = statistics.median(rates["hessgpt (ours)"]) / statistics.median(
        rates["transformers GPT2LMHeadModel"]
    )
    print(f"ours / transformers = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
