"""The trainer: pretraining and instruction fine-tuning, on one process or many.

One optimiser step consumes ``batch_size x world_size x grad_accum`` windows. The loss of a step is
the sum of the token losses divided by the number of target tokens in the *whole* step (all
micro-batches, all processes), so a step gives the same gradient whether it runs as one big batch,
as accumulated micro-batches, or split across ``torchrun`` processes.

Everything random flows from ``seed``: the epoch's window order is a function of (seed, epoch) and
dropout is reseeded from (seed, rank, step) before each step. A resumed run therefore needs only the
weights, the optimiser state and the step counter, all kept in ``<out>/last_state.pt`` (tensors and
plain data, loadable with ``weights_only=True``).

An interruption (Ctrl-C) saves that state. The state is always one a run passes through: Ctrl-C is
held back while a step updates the weights and its counters, and an epoch counts as finished only
once its files are written, so a resume from an interrupted epoch end writes them again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from hessgpt.checkpoint import atomic_torch_save, safe_torch_load
from hessgpt.data import TokenizedSplit, collate, epoch_order
from hessgpt.errors import HessError
from hessgpt.model import IGNORE_INDEX

STATE_FORMAT = "hessgpt-train-state"
STATE_VERSION = 1
SCHEDULES = ("cosine", "linear", "constant")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    epochs: int = 6
    batch_size: int = 8  # windows per micro-batch, per process
    grad_accum: int = 1
    lr: float = 3e-4
    min_lr_ratio: float = 0.1  # the schedule decays to lr * min_lr_ratio
    warmup_steps: int = 100
    schedule: str = "cosine"
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 disables clipping
    eval_every: int = 0  # optimiser steps between validations (0: once per epoch)
    eval_batches: int = 0  # cap on validation micro-batches (0: the whole split)
    log_every: int = 10
    save_every: int = 0  # optimiser steps between resume states (0: once per epoch)
    seed: int = 0
    precision: str = "auto"

    def validate(self) -> None:
        checks = [
            ("--epochs", self.epochs >= 1),
            ("--batch-size", self.batch_size >= 1),
            ("--grad-accum", self.grad_accum >= 1),
            ("--lr", self.lr > 0),
            ("--min-lr-ratio", 0 <= self.min_lr_ratio <= 1),
            ("--warmup-steps", self.warmup_steps >= 0),
            ("--weight-decay", self.weight_decay >= 0),
            ("--grad-clip", self.grad_clip >= 0),
            ("--eval-every", self.eval_every >= 0),
            ("--save-every", self.save_every >= 0),
            ("--log-every", self.log_every >= 1),
        ]
        for flag, ok in checks:
            if not ok:
                raise HessError(f"{flag}: invalid value ({getattr(self, flag[2:].replace('-', '_'))})")
        if self.schedule not in SCHEDULES:
            raise HessError(f"--schedule: must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.precision not in PRECISIONS:
            raise HessError(f"--precision: must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")


def learning_rate(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr``, then cosine or linear decay to ``lr * min_lr_ratio`` at the last step."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    span = max(1, total_steps - cfg.warmup_steps - 1)
    progress = min(1.0, max(0.0, (step - cfg.warmup_steps) / span))
    floor = cfg.lr * cfg.min_lr_ratio
    if cfg.schedule == "linear":
        return cfg.lr - (cfg.lr - floor) * progress
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight-decay groups; the fused kernel updates all parameters in one pass (CPU and
    CUDA alike). scripts/bench_train.py builds its reference optimiser here too."""
    return torch.optim.AdamW(
        param_groups(model, cfg.weight_decay),
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
        eps=1e-8,
        fused=True,
    )


def describe_optimizer(optimizer: torch.optim.Optimizer) -> str:
    """One line of the settings an optimiser really runs with."""
    d = optimizer.defaults
    decays = "/".join(f"{g['weight_decay']:g}" for g in optimizer.param_groups)
    kernel = "fused" if d.get("fused") else "foreach" if d.get("foreach") else "default"
    return (
        f"{type(optimizer).__name__} {kernel}, betas {tuple(d['betas'])}, eps {d['eps']:g}, "
        f"weight decay {decays}"
    )


@contextlib.contextmanager
def deferred_interrupt():
    """Hold Ctrl-C back until the block ends, then raise it: for updates that must not stop halfway."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        signal.raise_signal(signal.SIGINT)  # now to the restored handler: KeyboardInterrupt by default


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices (linear weights, embeddings); none on biases and norm gains."""
    decay, no_decay = [], []
    for p in model.parameters():  # parameters() yields a tied weight once
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


# ----------------------------------------------------------------------------- processes and devices


@dataclass
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def all_reduce(self, values: list[float]) -> list[float]:
        if not self.distributed:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise HessError(f"--device: {name} requested but no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise HessError(f"--device: unknown device {name!r}") from None


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group ``torchrun`` describes (WORLD_SIZE > 1), else a single process.

    gloo on CPU, NCCL on GPUs; each process drives the GPU of its local rank.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=pick_device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    target = pick_device(device)
    if target.type == "cuda":
        target = torch.device("cuda", local_rank)
        torch.cuda.set_device(target)
    else:
        # The cores are shared between the processes of this machine.
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if target.type == "cuda" else "gloo")
    return DistContext(rank, world, local_rank, target)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision where the device supports it; plain fp32 on CPU unless asked otherwise."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


# ----------------------------------------------------------------------------- loss and evaluation


def token_loss_sum(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy over target tokens, and the logits."""
    logits, _ = model(x)
    loss = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return loss, logits


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    split: TokenizedSplit,
    batch_size: int,
    pad_id: int,
    ctx: DistContext | None = None,
    max_batches: int = 0,
    amp: torch.dtype | None = None,
) -> dict[str, float]:
    """Validation loss (mean over target tokens), perplexity and next-token accuracy."""
    ctx = ctx or DistContext()
    was_training = model.training
    model.eval()
    # Similar lengths together waste less padding; the processes share the windows.
    order = sorted(range(len(split.windows)), key=lambda i: split.windows[i][0].numel())
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if max_batches:
        batches = batches[:max_batches]
    loss_sum = tokens = correct = 0.0
    for batch in batches[ctx.rank :: ctx.world]:
        x, y = collate([split.windows[i] for i in batch], pad_id)
        x, y = x.to(ctx.device), y.to(ctx.device)
        with _autocast(ctx.device, amp):
            loss, logits = token_loss_sum(model, x, y)
        keep = y != IGNORE_INDEX
        loss_sum += float(loss)
        tokens += float(keep.sum())
        correct += float(((logits.argmax(-1) == y) & keep).sum())
    loss_sum, tokens, correct = ctx.all_reduce([loss_sum, tokens, correct])
    model.train(was_training)
    if not tokens:
        return {}
    mean = loss_sum / tokens
    return {
        "val_loss": mean,
        "val_ppl": math.exp(min(mean, 50.0)),
        "val_token_accuracy": correct / tokens,
        "val_tokens": int(tokens),
    }


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# ----------------------------------------------------------------------------- the loop


@dataclass
class RunInfo:
    """What the checkpoints need to say about the run besides the weights."""

    tokenizer: Any
    chat_template: Any
    model_config: Any  # hessgpt.config.ModelConfig
    data_hash: str
    meta: dict[str, Any] = field(default_factory=dict)  # source, data files, contamination, ...
    lora: Any = None  # hessgpt.lora.LoraSpec when training adapters
    lora_base: dict[str, Any] = field(default_factory=dict)  # base config + sha256 for adapter files


@dataclass
class TrainResult:
    global_step: int
    epoch: int
    finished: bool
    best_val_loss: float | None
    checkpoints: list[str]
    history: list[dict[str, Any]]
    seconds: float


class Trainer:
    def __init__(
        self,
        model: torch.nn.Module,
        train_split: TokenizedSplit,
        val_split: TokenizedSplit | None,
        cfg: TrainConfig,
        info: RunInfo,
        out_dir: str | Path,
        ctx: DistContext | None = None,
        log: Callable[[str], None] | None = None,
        progress: bool = True,
    ) -> None:
        cfg.validate()
        if not train_split.windows:
            raise HessError("data: no training window left after tokenising (examples empty or too long?)")
        self.cfg, self.info = cfg, info
        self.ctx = ctx or DistContext()
        self.out = Path(out_dir)
        self.train_split, self.val_split = train_split, val_split
        self.log = log or self._print
        self._bar: Any = None
        self.progress = progress
        self.raw_model = model.to(self.ctx.device)
        self.raw_model.train()
        self.model: torch.nn.Module = self.raw_model
        if self.ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.raw_model, device_ids=ids)
        self.optimizer = make_optimizer(self.raw_model, cfg)
        self.amp = autocast_dtype(cfg.precision, self.ctx.device)
        self.scaler = torch.amp.GradScaler(self.ctx.device.type, enabled=self.amp == torch.float16)
        self.pad_id = info.tokenizer.eos_id if info.tokenizer.eos_id is not None else 0
        per_step = cfg.batch_size * self.ctx.world * cfg.grad_accum
        self.steps_per_epoch = max(1, math.ceil(len(train_split.windows) / per_step))
        self.total_steps = self.steps_per_epoch * cfg.epochs
        # With ``epoch``, the step counter is the whole position: epoch N ends at step
        # N x steps_per_epoch and stays current until its files are written.
        self.global_step = 0
        self.epoch = 1
        self.best_val_loss: float | None = None
        self.tokens_seen = 0
        self.history: list[dict[str, Any]] = []
        self.checkpoints: list[str] = []
        self.last_grad_norm = 0.0
        # Called with each metrics.jsonl line on the main process (``--report-to`` viewers).
        self.sinks: list[Callable[[dict[str, Any]], None]] = []

    def _print(self, message: str) -> None:
        """A line on stderr; above the progress bar while there is one (never glued to its end)."""
        if self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    @property
    def step_in_epoch(self) -> int:
        return self.global_step - (self.epoch - 1) * self.steps_per_epoch

    # -- state for exact resume ------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        from hessgpt.checkpoint import _plain

        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "model": {k: v.detach().clone() for k, v in self.raw_model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "global_step": self.global_step,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "best_val_loss": self.best_val_loss,
            "tokens_seen": self.tokens_seen,
            "train": dataclasses.asdict(self.cfg),
            "world_size": self.ctx.world,
            "config": self.info.model_config.to_dict(),
            "tokenizer": json.dumps(self.info.tokenizer.to_dict(), sort_keys=True),
            "data_hash": self.info.data_hash,
            "lora": self.info.lora.to_dict() if self.info.lora else None,
            "checkpoints": list(self.checkpoints),
            "meta": _plain(self.info.meta),
        }

    def load_state_dict(self, state: dict[str, Any], source: str) -> None:
        check_resume_state(state, self.info, self.cfg, self.ctx, source)
        missing, unexpected = self.raw_model.load_state_dict(state["model"], strict=False)
        tied = {"lm_head.weight"} if self.info.model_config.tie_embeddings else set()
        if set(missing) - tied or unexpected:
            raise HessError(
                f"{source}: saved weights do not fit this model (missing {missing[:3]}, "
                f"unexpected {unexpected[:3]})"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.global_step, self.epoch = int(state["global_step"]), int(state["epoch"])
        if (
            self.step_in_epoch != int(state["step_in_epoch"])
            or not 0 <= self.step_in_epoch <= self.steps_per_epoch
        ):
            raise HessError(
                f"{source}: step {self.global_step} of epoch {self.epoch} does not fit this run's "
                f"{self.steps_per_epoch} steps per epoch; resume with the same data and batch settings"
            )
        self.best_val_loss = state.get("best_val_loss")
        self.tokens_seen = int(state.get("tokens_seen") or 0)
        self.checkpoints = list(state.get("checkpoints") or [])

    def save_state(self) -> None:
        if self.ctx.is_main:
            atomic_torch_save(self.state_dict(), self.out / "last_state.pt")

    # -- one optimiser step ------------------------------------------------------------------------

    def _micro_batches(self, order: list[int], step_in_epoch: int) -> list[list[int]]:
        """This process's micro-batches for a step: the step's windows, dealt in the same
        order whatever the number of processes."""
        b, world, accum = self.cfg.batch_size, self.ctx.world, self.cfg.grad_accum
        chunk = order[step_in_epoch * b * world * accum : (step_in_epoch + 1) * b * world * accum]
        return [
            chunk[(j * world + self.ctx.rank) * b : (j * world + self.ctx.rank + 1) * b] for j in range(accum)
        ]

    def train_step(self, micro: list[list[int]]) -> float:
        """Forward, backward and update on this process's micro-batches; returns the step's mean loss."""
        torch.manual_seed(self.cfg.seed * 7919 + self.ctx.rank * 104_729 + self.global_step)
        batches = [
            collate([self.train_split.windows[i] for i in ids], self.pad_id) if ids else None for ids in micro
        ]
        local_tokens = sum(int((y != IGNORE_INDEX).sum()) for b in batches if b is not None for y in [b[1]])
        (total_tokens,) = self.ctx.all_reduce([float(local_tokens)])
        lr = learning_rate(self.global_step, self.total_steps, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss_total = 0.0
        for j, batch in enumerate(batches):
            if batch is None:
                if not self.ctx.distributed:
                    continue
                # Every process must run the same number of backward passes: an empty micro-batch
                # becomes one ignored token, which adds nothing to the gradient.
                batch = (torch.full((1, 1), self.pad_id), torch.full((1, 1), IGNORE_INDEX))
            x, y = batch[0].to(self.ctx.device), batch[1].to(self.ctx.device)
            sync = j == len(batches) - 1 or not self.ctx.distributed
            with contextlib.nullcontext() if sync else self.model.no_sync():
                with _autocast(self.ctx.device, self.amp):
                    loss_sum, _ = token_loss_sum(self.model, x, y)
                # DDP averages gradients over processes; scaling by world size turns that into a sum.
                loss = loss_sum * (self.ctx.world / max(total_tokens, 1.0))
                self.scaler.scale(loss).backward()
            loss_total += float(loss_sum.detach())
        step_tokens = float(sum(self.train_split.windows[i][0].numel() for ids in micro for i in ids))
        loss_total, step_tokens = self.ctx.all_reduce([loss_total, step_tokens])
        # The norm before clipping is recorded either way (an infinite bound measures without clipping).
        self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.cfg.grad_clip or math.inf)
        self.last_grad_norm = float(norm)
        # Until here an interruption leaves the weights untouched; from the update to the counters
        # it would leave a step applied but not counted.
        with deferred_interrupt():
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            self.global_step += 1
            self.tokens_seen += int(step_tokens)  # input tokens of all processes
        return loss_total / max(total_tokens, 1.0)

    # -- the run ---------------------------------------------------------------------------------

    def fit(self, stop_after: int | None = None) -> TrainResult:
        """Train to the last epoch, or stop once ``stop_after`` optimiser steps have run in total
        (saving the resume state, as an interruption would)."""
        start = time.perf_counter()
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        bar = self._bar = self._progress_bar()
        window = {"loss": 0.0, "grad_norm": 0.0, "steps": 0, "start": time.perf_counter(), "tokens": self.tokens_seen}
        try:
            while self.epoch <= self.cfg.epochs:
                order = epoch_order(len(self.train_split.windows), self.cfg.seed, self.epoch)
                while self.step_in_epoch < self.steps_per_epoch:
                    loss = self.train_step(self._micro_batches(order, self.step_in_epoch))
                    epoch_done = self.step_in_epoch == self.steps_per_epoch
                    window["loss"] += loss
                    window["grad_norm"] += self.last_grad_norm
                    window["steps"] += 1
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(epoch=self.epoch, loss=f"{loss:.3f}")
                    if self.global_step % self.cfg.log_every == 0 or epoch_done:
                        self._log_window(window)
                    if epoch_done:
                        break
                    if self.cfg.eval_every and self.global_step % self.cfg.eval_every == 0:
                        self._validate()
                    if self.cfg.save_every and self.global_step % self.cfg.save_every == 0:
                        self.save_state()
                    if stop_after is not None and self.global_step >= stop_after:
                        self.save_state()
                        return self._result(False, start)
                self._end_epoch()
                if (
                    stop_after is not None
                    and self.global_step >= stop_after
                    and self.epoch <= self.cfg.epochs
                ):
                    return self._result(False, start)
        except KeyboardInterrupt:
            # Save where we are so --resume continues exactly, then let the CLI report the interruption.
            self.save_state()
            raise
        finally:
            if bar is not None:
                bar.close()
                self._bar = None
        if self.ctx.is_main:
            write_loss_svg(self.out / "metrics.jsonl", self.out / "loss_curve.svg")
        return self._result(True, start)

    def _log_window(self, window: dict[str, float]) -> None:
        elapsed = time.perf_counter() - window["start"]
        self._record(
            {
                "kind": "train",
                "step": self.global_step,
                "epoch": self.epoch,
                "loss": window["loss"] / max(window["steps"], 1),
                "lr": learning_rate(self.global_step - 1, self.total_steps, self.cfg),
                "grad_norm": window["grad_norm"] / max(window["steps"], 1),  # mean, before clipping
                "tokens": self.tokens_seen,
                "tokens_per_s": (self.tokens_seen - window["tokens"]) / max(elapsed, 1e-9),
            }
        )
        window.update(loss=0.0, grad_norm=0.0, steps=0, start=time.perf_counter(), tokens=self.tokens_seen)

    def _result(self, finished: bool, start: float) -> TrainResult:
        return TrainResult(
            self.global_step,
            self.epoch,
            finished,
            self.best_val_loss,
            list(self.checkpoints),
            list(self.history),
            time.perf_counter() - start,
        )

    def _progress_bar(self):
        if not (self.progress and self.ctx.is_main):
            return None
        from tqdm import tqdm

        return tqdm(
            total=self.total_steps,
            initial=self.global_step,
            unit="step",
            mininterval=1.0,
            dynamic_ncols=True,
            leave=False,
            file=sys.stderr,
        )

    def _validate(self) -> dict[str, float]:
        if self.val_split is None or not self.val_split.windows:
            return {}
        metrics = evaluate(
            self.raw_model,
            self.val_split,
            self.cfg.batch_size,
            self.pad_id,
            self.ctx,
            self.cfg.eval_batches,
            self.amp,
        )
        if metrics:
            self._record({"kind": "eval", "step": self.global_step, "epoch": self.epoch, **metrics})
        return metrics

    def _end_epoch(self) -> None:
        """Validate, write ``epochN.pt`` (and ``best.pt``), then move to the next epoch.

        Nothing advances before the files are written: interrupted here, the saved state still ends
        epoch N, and the resume validates the same weights again and writes the same files.
        """
        metrics = self._validate()
        epoch = self.epoch
        val = metrics.get("val_loss")
        is_best = val is not None and (self.best_val_loss is None or val < self.best_val_loss)
        meta = {
            "epoch": epoch,
            "step": self.global_step,
            "val_loss": val,
            "val_ppl": metrics.get("val_ppl"),
            "val_token_accuracy": metrics.get("val_token_accuracy"),
            "data_hash": self.info.data_hash,
            "tokens_seen": self.tokens_seen,
            "train": dataclasses.asdict(self.cfg),
            "world_size": self.ctx.world,
        }
        suffix = ".lora.pt" if self.info.lora else ".pt"
        path = self.out / f"epoch{epoch}{suffix}"
        if self.ctx.is_main:
            self._save_checkpoint(path, meta)
            if is_best or val is None:
                self._save_checkpoint(self.out / f"best{suffix}", {**meta, "best_of_epochs": epoch})
            shown = (
                f"val_loss {val:.4f}  ppl {metrics['val_ppl']:.2f}  acc {metrics['val_token_accuracy']:.3f}"
                if val is not None
                else "no validation split"
            )
            self.log(f"epoch {epoch}/{self.cfg.epochs}  step {self.global_step}  {shown}  -> {path}")
            self._record(
                {
                    "kind": "epoch",
                    "step": self.global_step,
                    "epoch": epoch,
                    "checkpoint": str(path),
                    **metrics,
                }
            )
        with deferred_interrupt():
            if is_best:
                self.best_val_loss = val
            if self.ctx.is_main and str(path) not in self.checkpoints:
                self.checkpoints.append(str(path))
            self.epoch += 1
        self.save_state()
        self.ctx.barrier()

    def _save_checkpoint(self, path: Path, meta: dict[str, Any]) -> None:
        meta = {**self.info.meta, **meta}
        if self.info.lora:
            from hessgpt.lora import save_adapter

            save_adapter(path, self.raw_model, self.info.lora, self.info.lora_base, meta)
            return
        from hessgpt.loading import LoadedModel

        loaded = LoadedModel(
            self.raw_model, self.info.tokenizer, self.info.chat_template, self.info.model_config
        )
        loaded.save(path, meta=meta)

    def _record(self, entry: dict[str, Any]) -> None:
        entry = {**entry, "time": round(time.time(), 3)}
        self.history.append(entry)
        if self.ctx.is_main:
            with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
            for sink in self.sinks:
                sink(entry)


def check_resume_state(state: Any, info: RunInfo, cfg: TrainConfig, ctx: DistContext, source: str) -> None:
    """Refuse a resume that could not continue the same run, saying what differs."""
    if isinstance(state, dict) and state.get("format") == "hessgpt-checkpoint":
        raise HessError(
            f"{source}: is a model checkpoint, not a training state; --resume continues a run from "
            "its last_state.pt (to start a new run from this model, use --from)"
        )
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise HessError(f"{source}: not a training state file (expected {STATE_FORMAT})")
    if int(state.get("version", 0)) > STATE_VERSION:
        raise HessError(f"{source}: training state version {state.get('version')} is newer than this hessgpt")
    saved, ours = state.get("config") or {}, info.model_config.to_dict()
    shape_keys = (
        "arch",
        "vocab_size",
        "n_layer",
        "n_head",
        "n_embd",
        "n_kv_head",
        "intermediate_size",
        "block_size",
        "bias",
        "tie_embeddings",
    )
    differing = [f"{k}: {saved.get(k)} vs {ours.get(k)}" for k in shape_keys if saved.get(k) != ours.get(k)]
    if differing:
        raise HessError(
            f"{source}: the run being resumed trained a model of another shape "
            f"({', '.join(differing)}); use the same --preset/--from, or a new --out"
        )
    if state.get("tokenizer") != json.dumps(info.tokenizer.to_dict(), sort_keys=True):
        raise HessError(
            f"{source}: the run being resumed used another tokenizer; use the same --tokenizer/--from, "
            "or a new --out"
        )
    if state.get("data_hash") != info.data_hash:
        raise HessError(
            f"{source}: the training data changed since this run started (data hash "
            f"{str(state.get('data_hash'))[:12]} vs {info.data_hash[:12]}); pass the same files, "
            "or a new --out"
        )
    saved_lora = state.get("lora")
    ours_lora = info.lora.to_dict() if info.lora else None
    if saved_lora != ours_lora:
        raise HessError(f"{source}: the run being resumed used --lora {saved_lora}, this one {ours_lora}")
    saved_cfg = state.get("train") or {}
    differing = [
        k
        for k, v in dataclasses.asdict(cfg).items()
        if k in saved_cfg
        and saved_cfg[k] != v
        and k not in ("log_every", "save_every", "eval_every", "eval_batches", "epochs")
    ]
    saved_epochs = int(saved_cfg.get("epochs", cfg.epochs))
    if cfg.epochs < saved_epochs:
        differing.append(f"epochs ({cfg.epochs} is fewer than the run's {saved_epochs}; only extending is allowed)")
    saved_world = int(state.get("world_size") or 1)
    if saved_world * int(saved_cfg.get("batch_size", cfg.batch_size)) != ctx.world * cfg.batch_size:
        differing.append("effective batch (batch size x processes)")
    if differing:
        raise HessError(
            f"{source}: these settings differ from the run being resumed: {', '.join(differing)}; "
            "resume with the same settings, or start a new --out"
        )


def load_resume_state(path: str | Path) -> dict[str, Any]:
    return safe_torch_load(path)


# ----------------------------------------------------------------------------- loss curve


def write_loss_svg(
    metrics_path: str | Path, svg_path: str | Path, width: int = 640, height: int = 360
) -> Path | None:
    """A dependency-free SVG of the training loss (line) and validation loss (dots) against steps,
    with the learning rate and the gradient norm as dashed lines, each scaled from 0 to its maximum."""
    metrics_path, svg_path = Path(metrics_path), Path(svg_path)
    if not metrics_path.exists():
        return None
    train, val, lr, grad = [], [], [], []
    for line in metrics_path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("kind") == "train" and isinstance(entry.get("loss"), (int, float)):
            train.append((entry["step"], entry["loss"]))
            for series, key in ((lr, "lr"), (grad, "grad_norm")):
                if isinstance(entry.get(key), (int, float)) and math.isfinite(entry[key]):
                    series.append((entry["step"], entry[key]))
        elif entry.get("kind") == "eval" and isinstance(entry.get("val_loss"), (int, float)):
            val.append((entry["step"], entry["val_loss"]))
    points = train + val
    if not points:
        return None
    left, right, top, bottom = 56, 16, 16, 40
    x_max = max(s for s, _ in points) or 1
    y_lo, y_hi = min(v for _, v in points), max(v for _, v in points)
    if y_hi - y_lo < 1e-9:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5

    def xy(step: float, value: float) -> tuple[float, float]:
        x = left + (width - left - right) * step / x_max
        y = top + (height - top - bottom) * (1 - (value - y_lo) / (y_hi - y_lo))
        return round(x, 1), round(y, 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#444"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#444"/>',
    ]
    for i in range(5):
        value = y_lo + (y_hi - y_lo) * i / 4
        _, y = xy(0, value)
        parts.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{value:.2f}</text>')
    parts.append(f'<text x="{width - right}" y="{height - 12}" text-anchor="end">step {x_max}</text>')
    parts.append(f'<text x="{left}" y="{height - 12}">0</text>')
    if train:
        path = " ".join(f"{x},{y}" for x, y in (xy(s, v) for s, v in train))
        parts.append(f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{path}"/>')
    for s, v in val:
        x, y = xy(s, v)
        parts.append(f'<circle cx="{x}" cy="{y}" r="3.5" fill="#d62728"/>')
    label_y = top + 38
    for series, colour, name in ((lr, "#2ca02c", "learning rate"), (grad, "#9467bd", "gradient norm")):
        peak = max((v for _, v in series), default=0.0)
        if peak <= 0:
            continue
        scaled = (xy(s, y_lo + (y_hi - y_lo) * v / peak) for s, v in series)
        path = " ".join(f"{x},{y}" for x, y in scaled)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1" stroke-dasharray="4 3" '
                     f'points="{path}"/>')
        parts.append(f'<text x="{width - right}" y="{label_y}" text-anchor="end" fill="{colour}">'
                     f'{name} (0 to {peak:.3g})</text>')
        label_y += 14
    parts.append(
        f'<text x="{width - right}" y="{top + 10}" text-anchor="end" fill="#1f77b4">train loss</text>'
    )
    parts.append(
        f'<text x="{width - right}" y="{top + 24}" text-anchor="end" fill="#d62728">validation loss</text>'
    )
    parts.append("</svg>")
    svg_path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return svg_path
