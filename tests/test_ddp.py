"""Two CPU processes (DDP over gloo) give the same weights as one process with the same effective batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(out: str, batch_size: int, grad_accum: int) -> dict[str, torch.Tensor]:
    """One training run in this process (joining the process group when the environment says so)."""
    from test_data import ByteTokenizer
    from test_train import TEMPLATE, conversations, tiny_config

    from hessgpt.data import tokenize_split
    from hessgpt.model import GPT
    from hessgpt.train import RunInfo, TrainConfig, Trainer, init_distributed

    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    tok = ByteTokenizer()
    config = tiny_config()
    torch.manual_seed(0)
    model = GPT(config)
    train = tokenize_split(conversations(20), tok, TEMPLATE, config.block_size)
    val = tokenize_split(conversations(5, offset=50), tok, TEMPLATE, config.block_size)
    cfg = TrainConfig(epochs=2, batch_size=batch_size, grad_accum=grad_accum, lr=3e-3, warmup_steps=1)
    trainer = Trainer(
        model,
        train,
        val,
        cfg,
        RunInfo(tok, TEMPLATE, config, "d" * 64),
        out,
        ctx,
        log=lambda m: None,
        progress=False,
    )
    result = trainer.fit()
    if ctx.is_main:
        torch.save(
            {"weights": trainer.raw_model.state_dict(), "history": result.history}, Path(out) / "final.pt"
        )
    if ctx.distributed:
        torch.distributed.destroy_process_group()
    return trainer.raw_model.state_dict()


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    _run(out, batch_size=2, grad_accum=2)


def test_two_processes_match_one_process(tmp_path):
    # One process, 4 windows per micro-batch; two processes, 2 windows each: the same 8 windows a step.
    # 20 windows make 3 steps an epoch, the last one short, so a process also meets an empty micro-batch.
    single = _run(str(tmp_path / "single"), batch_size=4, grad_accum=2)
    mp.start_processes(
        _worker, args=(2, _free_port(), str(tmp_path / "ddp")), nprocs=2, join=True, start_method="spawn"
    )
    saved = torch.load(tmp_path / "ddp" / "final.pt", weights_only=True)
    # Sums run in another order across processes, so weights agree to float rounding. Adam turns the
    # rounding noise of the attention key bias (whose true gradient is zero) into steps of ~1e-6.
    for key, value in single.items():
        assert torch.allclose(value, saved["weights"][key], atol=1e-5), key
    assert (tmp_path / "ddp" / "epoch2.pt").exists() and (tmp_path / "ddp" / "best.pt").exists()
    evals = [h for h in saved["history"] if h["kind"] == "eval"]
    assert len(evals) == 2 and evals[1]["val_tokens"] > 0  # validation shared between the processes


@pytest.mark.slow
def test_torchrun_cli_matches_single_process(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(
            f'{{"instruction": "Count to {i}.", "output": "{" ".join(map(str, range(1, i + 1)))}"}}\n'
            for i in range(1, 41)
        ),
        encoding="utf-8",
    )
    common = [
        "train",
        str(data),
        "--preset",
        "tiny-gpt2",
        "--tokenizer",
        "bpe:300",
        "--epochs",
        "1",
        "--lr",
        "3e-3",
        "--warmup-steps",
        "1",
        "--contamination",
        "off",
        "--no-progress",
        "--block-size",
        "64",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-m", "hessgpt", *common, "--out", str(tmp_path / "one"), "--batch-size", "4"],
        check=True,
        cwd=ROOT,
        env=env,
        capture_output=True,
    )
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "hessgpt",
    ]
    subprocess.run(
        [*torchrun, *common, "--out", str(tmp_path / "two"), "--batch-size", "2"],
        check=True,
        cwd=ROOT,
        env=env,
        capture_output=True,
    )
    one = torch.load(tmp_path / "one" / "epoch1.pt", weights_only=True)
    two = torch.load(tmp_path / "two" / "epoch1.pt", weights_only=True)
    assert one["meta"]["world_size"] == 1 and two["meta"]["world_size"] == 2
    for key, value in one["model"].items():
        assert torch.allclose(value, two["model"][key], atol=1e-5), key
