"""``hessgpt train DATA... --out DIR``: pretrain or fine-tune, on one process or under torchrun.

From scratch: ``--preset hessgpt-tiny [--tokenizer gpt2|tok.json]``. Fine-tune: ``--from CK``.
Adapters only: ``--from CK --lora r=8,alpha=16,targets=attn,mlp``. Continue a run: ``--out DIR --resume``
(the settings come from the run folder's ``run_args.json``; a larger ``--epochs`` extends the run).
Many processes: ``torchrun --nproc_per_node N -m hessgpt train ...`` (the same arguments).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hessgpt.data import (
    FORMATS,
    Example,
    data_hash,
    load_dataset,
    parse_split,
    split_examples,
    subsample,
    tokenize_split,
)
from hessgpt.errors import HessError
from hessgpt.train import PRECISIONS, SCHEDULES, DistContext, RunInfo, TrainConfig, Trainer, init_distributed
from hessgpt.train_report import check_installed, close_all, open_reporters, parse_report_to

RUN_ARGS = "run_args.json"  # the command's settings, so ``--out DIR --resume`` needs nothing else
# Flags that change how a run is watched, not what it computes: never taken from run_args.json.
_NOT_STORED = ("resume", "stop_after", "no_progress", "threads", "device")


class _DefaultsHelp(argparse.HelpFormatter):
    """Shows ``(default: X)`` after each option that has a real default (not None, not a switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        hidden = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if hidden or "%(default)" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = _DefaultsHelp
    parser.add_argument(
        "data", nargs="*", help="dataset files: Alpaca/Dolly JSON(L), messages JSONL, or text "
        "(with --resume: taken from the run folder)"
    )
    parser.add_argument(
        "--out", required=True, help="run folder: epochN.pt, best.pt, metrics.jsonl, last_state.pt"
    )
    model = parser.add_argument_group("model")
    source = model.add_mutually_exclusive_group()
    source.add_argument("--preset", help="train from scratch from this preset (see `hessgpt presets`)")
    source.add_argument("--from", dest="from_ckpt", metavar="CK", help="fine-tune this checkpoint")
    model.add_argument(
        "--tokenizer",
        default="gpt2",
        help="from scratch: 'gpt2' (default), 'bpe:SIZE' (learned from the training split; 'bpe:SIZE:smollm' "
        "splits digits one per token), or a tokenizer JSON from `hessgpt tokenizer train`",
    )
    model.add_argument("--dropout", type=float, help="override the preset's dropout")
    model.add_argument("--block-size", type=int, help="training context (at most the model's)")
    model.add_argument("--lora", metavar="SPEC", help="train adapters only: r=8,alpha=16,targets=attn,mlp")
    data = parser.add_argument_group("data")
    data.add_argument("--format", default="auto", choices=FORMATS, help="record format (auto: detect)")
    data.add_argument("--skip-bad-lines", action="store_true", help="skip (and count) malformed records")
    data.add_argument("--split", default="85,10,5", help="train,validation,test shares")
    data.add_argument("--fraction", type=float, default=1.0, help="train on a seeded share of the data")
    data.add_argument("--pack", action="store_true", help="pack conversations into full windows (no padding)")
    data.add_argument(
        "--against",
        default=None,
        help="suites folder for the contamination check (none: the suites shipped with the bench)",
    )
    data.add_argument(
        "--contamination",
        default="warn",
        choices=("warn", "drop", "error", "off"),
        help="what to do with training examples that overlap suite items",
    )
    opt = parser.add_argument_group("optimisation")
    defaults = TrainConfig()
    # No parser default: with --resume, an --epochs given explicitly must be told from an absent one.
    opt.add_argument("--epochs", type=int, default=None,
                     help=f"passes over the training split (default: {defaults.epochs}); with --resume, a larger "
                     "value extends the run (its learning-rate schedule stretches to the new end)")
    opt.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="windows per micro-batch per process"
    )
    opt.add_argument(
        "--grad-accum", type=int, default=defaults.grad_accum, help="micro-batches per optimiser step"
    )
    opt.add_argument("--lr", type=float, default=defaults.lr, help="peak learning rate")
    opt.add_argument("--min-lr-ratio", type=float, default=defaults.min_lr_ratio,
                     help="final learning rate as a share of --lr")
    opt.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps, help="linear warm-up steps")
    opt.add_argument("--schedule", default=defaults.schedule, choices=SCHEDULES, help="learning-rate schedule")
    opt.add_argument("--weight-decay", type=float, default=defaults.weight_decay, help="AdamW weight decay")
    opt.add_argument("--grad-clip", type=float, default=defaults.grad_clip, help="gradient norm clip (0: off)")
    opt.add_argument(
        "--precision",
        default=defaults.precision,
        choices=PRECISIONS,
        help="auto: bf16/fp16 autocast on GPUs, fp32 on CPU",
    )
    opt.add_argument("--seed", type=int, default=defaults.seed, help="initialisation, split, order, dropout")
    run = parser.add_argument_group("run")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda")
    run.add_argument("--eval-every", type=int, default=0, help="validate every N steps as well as each epoch")
    run.add_argument("--eval-batches", type=int, default=0, help="cap validation at N micro-batches")
    run.add_argument("--log-every", type=int, default=defaults.log_every, help="steps per metrics.jsonl line")
    run.add_argument("--save-every", type=int, default=0, help="write the resume state every N steps")
    run.add_argument(
        "--resume",
        nargs="?",
        const="",
        default=None,
        metavar="STATE",
        help="continue the run in --out (or from this last_state.pt) exactly where it stopped; the data and "
        "settings come from --out's run_args.json, flags given now override them",
    )
    run.add_argument("--stop-after", type=int, help="stop after N optimiser steps in total, resumable")
    run.add_argument("--threads", type=int, help="CPU threads (default: all cores, shared under torchrun)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument(
        "--report-to",
        action="append",
        metavar="NAME",
        help="also log the metrics to tensorboard (OUT/tensorboard) and/or wandb (offline, OUT/wandb): "
        "repeat the flag or give a comma list; none (default) logs to metrics.jsonl only. Kept for --resume. "
        "Needs pip install 'hessgpt-bench[report]'",
    )


def _parser_defaults() -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return vars(parser.parse_args(["--out", "-"]))


def fill_from_run_folder(args: argparse.Namespace) -> list[str]:
    """With ``--resume``: every setting left at its default takes the value stored in the run folder.

    Returns the names of the settings taken. A flag given explicitly with its default value cannot be
    told from an absent one, so it also takes the stored value."""
    path = Path(args.out) / RUN_ARGS
    if args.resume is None or not path.is_file():
        return []
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HessError(f"{path}: unreadable run settings ({exc}); pass the whole command with --resume") from None
    if not isinstance(stored, dict):
        raise HessError(f"{path}: run settings must be a JSON object")
    defaults = _parser_defaults()
    taken = []
    for key, value in stored.items():
        if key in defaults and key not in _NOT_STORED and getattr(args, key, None) == defaults[key]:
            if value != defaults[key]:
                setattr(args, key, value)
                taken.append(key)
    return taken


def _store_run_args(args: argparse.Namespace) -> None:
    defaults = _parser_defaults()
    stored = {k: getattr(args, k) for k in defaults if k not in _NOT_STORED and k != "out"}
    # Absolute paths: the run can be resumed from another folder.
    stored["data"] = [str(Path(d).resolve()) for d in args.data]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Atomic: under torchrun the other processes may be reading it while this one writes.
    tmp = out / f".{RUN_ARGS}.tmp"
    tmp.write_text(json.dumps(stored, indent=1) + "\n", encoding="utf-8")
    tmp.replace(out / RUN_ARGS)


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        epochs=args.epochs if args.epochs is not None else TrainConfig().epochs,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        lr=args.lr,
        min_lr_ratio=args.min_lr_ratio,
        warmup_steps=args.warmup_steps,
        schedule=args.schedule,
        weight_decay=args.weight_decay,
        grad_clip=args.grad_clip,
        eval_every=args.eval_every,
        eval_batches=args.eval_batches,
        log_every=args.log_every,
        save_every=args.save_every,
        seed=args.seed,
        precision=args.precision,
    )


def load_tokenizer(spec: str, train_texts: list[str] | None = None, tool_tokens: bool = False) -> Any:
    """``gpt2``, ``bpe:N`` (a byte-level BPE of N ids learned from the training split), or a JSON file.

    ``tool_tokens``: the data calls the code tool, so a learned BPE gets ``<|code|>``, ``<|end|>`` and
    ``<|result|>`` as control tokens above its base vocabulary."""
    from hessgpt import tokenizer as tokenizers
    from hessgpt.tools import TOOL_TOKENS

    if spec == "gpt2":
        if tool_tokens:
            raise HessError("--tokenizer: the data calls the code tool, which needs its own tokens; "
                            "GPT-2's BPE has no room for them: use --tokenizer bpe:SIZE")
        return tokenizers.gpt2_tokenizer()
    if spec.startswith("bpe:"):
        size_text, _, pre = spec.removeprefix("bpe:").partition(":")
        try:
            size = int(size_text)
        except ValueError:
            raise HessError(f"--tokenizer: expected bpe:SIZE like bpe:2048, got {spec!r}") from None
        if pre and pre not in tokenizers.PRE_TOKENIZERS:
            known = ", ".join(sorted(tokenizers.PRE_TOKENIZERS))
            raise HessError(f"--tokenizer: unknown pre-tokenizer {pre!r} in {spec!r} (known: {known})")
        from hessgpt.bpe_train import train_bpe

        specials = (tokenizers.ENDOFTEXT, *TOOL_TOKENS) if tool_tokens else (tokenizers.ENDOFTEXT,)
        return train_bpe("\n".join(train_texts or []), size, special_tokens=specials,
                                    pre=pre or "gpt2")
    if not Path(spec).is_file():
        raise HessError(f"--tokenizer: {spec} is neither 'gpt2', 'bpe:SIZE' nor a tokenizer JSON file")
    return tokenizers.load_tokenizer(spec)


def tokenizer_training_texts(examples: list[Example]) -> list[str]:
    """What a BPE learns from: each example as the native chat template lays it out."""
    texts = []
    for example in examples:
        if example.messages is None:
            texts.append(example.text or "")
        else:
            texts.append("".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in example.messages))
    return texts


@dataclass
class Prepared:
    trainer: Trainer
    train_examples: list[Example]
    val_examples: list[Example]
    test_examples: list[Example]


def _say(ctx: DistContext, message: str) -> None:
    if ctx.is_main:
        print(message, file=sys.stderr)


def prepare(args: argparse.Namespace, ctx: DistContext, tokenizer: Any = None) -> Prepared:
    """Everything before the first step: model, data, checks, and the resume state."""
    from hessgpt.chat import make_chat_template
    from hessgpt.config import get_preset
    from hessgpt.model import GPT

    taken = fill_from_run_folder(args)
    if taken:
        _say(ctx, f"resume: settings from {Path(args.out) / RUN_ARGS}: {', '.join(taken)}")
    # Before anything is read or computed: a missing package must not cost a training run.
    check_installed(parse_report_to(args.report_to))
    if not args.data:
        hint = " (no run_args.json in --out to take them from)" if args.resume is not None else ""
        raise HessError(f"train: give the DATA files{hint}")
    cfg = train_config_from_args(args)
    cfg.validate()
    out = Path(args.out)
    if args.resume is None and (out / "last_state.pt").exists():
        raise HessError(
            f"--out: {out} already holds a run (last_state.pt); pass --resume to continue it, "
            "or choose a new --out"
        )
    if args.threads:
        torch.set_num_threads(args.threads)

    # The model and its tokenizer.
    meta: dict[str, Any] = {}
    lora_base: dict[str, Any] = {}
    if args.from_ckpt:
        from hessgpt.loading import load_model

        loaded = load_model(args.from_ckpt)
        model, tokenizer, template, config = (
            loaded.model,
            loaded.tokenizer,
            loaded.chat_template,
            loaded.config,
        )
        meta.update(
            source=str(args.from_ckpt),
            base_sha256=loaded.sha256,
            base_training={k: loaded.meta.get(k) for k in ("epoch", "step", "val_loss", "data_hash")},
        )
        lora_base = {"config": config.to_dict(), "sha256": loaded.sha256, "path": str(args.from_ckpt)}
    elif not args.preset:
        raise HessError("train: give --preset NAME (from scratch) or --from CHECKPOINT (fine-tune)")
    if args.lora and not args.from_ckpt:
        raise HessError("--lora: adapters are trained on top of a model; give --from CHECKPOINT")

    # The data: read, clean, split, check against the suites.
    examples, report = load_dataset(args.data, args.format, args.skip_bad_lines)
    _say(ctx, f"data: {report.summary()}")
    for line in report.bad_line_examples:
        _say(ctx, f"  skipped {line}")
    examples = subsample(examples, args.fraction, args.seed)
    train_ex, val_ex, test_ex = split_examples(examples, parse_split(args.split), args.seed)
    _say(
        ctx, f"split: {len(train_ex)} train, {len(val_ex)} validation, {len(test_ex)} test (seed {args.seed})"
    )
    train_ex, meta["contamination"] = _contamination(args, ctx, train_ex)

    if not args.from_ckpt:
        if tokenizer is None:
            from hessgpt.tools import uses_tools

            tool_data = any(e.messages is not None and uses_tools(e.messages) for e in train_ex)
            tokenizer = load_tokenizer(args.tokenizer, tokenizer_training_texts(train_ex), tool_data)
            _say(ctx, f"tokenizer: {args.tokenizer} ({tokenizer.vocab_size} ids)")
        overrides: dict[str, Any] = {"vocab_size": tokenizer.vocab_size}
        if args.dropout is not None:
            overrides["dropout"] = args.dropout
        config = get_preset(args.preset, **overrides)
        torch.manual_seed(args.seed)
        model = GPT(config)
        template = make_chat_template(None, tokenizer)
        meta.update(source=f"preset:{args.preset}", tokenizer=args.tokenizer)
    block_size = args.block_size or config.block_size
    if not 2 <= block_size <= config.block_size:
        raise HessError(f"--block-size: must be between 2 and the model's context ({config.block_size})")

    train_split = tokenize_split(train_ex, tokenizer, template, block_size, pack=args.pack)
    val_split = tokenize_split(val_ex, tokenizer, template, block_size, pack=args.pack) if val_ex else None
    if train_split.truncated or train_split.dropped:
        _say(
            ctx,
            f"note: {train_split.truncated} conversations cut at {block_size} tokens, "
            f"{train_split.dropped} dropped (no assistant token left)",
        )
    _say(ctx, f"tokens: {train_split.target_tokens:,} training targets in {len(train_split)} windows")

    lora_spec = None
    if args.lora:
        from hessgpt.lora import apply_lora, parse_lora_spec

        lora_spec = parse_lora_spec(args.lora)
        wrapped = apply_lora(model, lora_spec)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        _say(
            ctx,
            f"lora: {len(wrapped)} layers, {trainable:,} trainable parameters (r={lora_spec.r}, "
            f"alpha={lora_spec.alpha:g})",
        )
    meta.update(
        data_files=report.files,
        data_summary=report.summary(),
        split={
            "fractions": args.split,
            "seed": args.seed,
            "fraction": args.fraction,
            "train": len(train_ex),
            "validation": len(val_ex),
            "test": len(test_ex),
        },
        block_size=block_size,
        packed=bool(args.pack),
    )
    info = RunInfo(tokenizer, template, config, data_hash(report), meta, lora_spec, lora_base)
    trainer = Trainer(model, train_split, val_split, cfg, info, out, ctx, progress=not args.no_progress)
    if args.resume is not None:
        from hessgpt.train import load_resume_state

        state_path = Path(args.resume) if args.resume else out / "last_state.pt"
        if not state_path.exists():
            raise HessError(f"--resume: {state_path} does not exist; nothing to resume")
        trainer.load_state_dict(load_resume_state(state_path), str(state_path))
        _say(ctx, f"resume: epoch {trainer.epoch}, step {trainer.global_step} of {trainer.total_steps}")
    if ctx.is_main:
        _store_run_args(args)
    return Prepared(trainer, train_ex, val_ex, test_ex)


def _contamination(
    args: argparse.Namespace, ctx: DistContext, train_ex: list[Example]
) -> tuple[list[Example], dict[str, Any]]:
    """Warn about (or drop, or refuse) training examples that overlap the bench's suites."""
    if args.contamination == "off":
        return train_ex, {"checked": False}
    from hessgpt.contamination import check_examples, shipped_suites_dir

    folder = Path(args.against) if args.against else shipped_suites_dir()
    if folder is None:
        _say(ctx, "note: no shipped benchmarks/suites found; contamination check skipped (pass --against)")
        return train_ex, {"checked": False}
    if not folder.is_dir():
        raise HessError(f"--against: {folder} is not a folder of suite files")

    report = check_examples(train_ex, folder)
    meta = {"checked": True, "against": str(folder), **report.to_meta()}
    if not report.findings:
        _say(ctx, f"contamination: {report.summary()}")
        return train_ex, meta
    first = report.findings[0].line()
    if args.contamination == "error":
        raise HessError(f"{args.data[0]}: {report.summary()}; first: {first}")
    if args.contamination == "drop":
        flagged = set(report.flagged_examples)
        _say(ctx, f"contamination: dropped {len(flagged)} training examples that overlap suite items")
        meta["dropped"] = len(flagged)
        return [e for i, e in enumerate(train_ex) if i not in flagged], meta
    _say(
        ctx,
        f"WARNING contamination: {report.summary()}\n  first: {first}\n  details: hessgpt data check "
        f"{' '.join(map(str, args.data))} --against {folder}",
    )
    return train_ex, meta


def run(args: argparse.Namespace) -> int:
    ctx = init_distributed(args.device)
    reporters: list[Any] = []
    try:
        prepared = prepare(args, ctx)
        trainer = prepared.trainer
        if ctx.is_main:
            _write_test_split(Path(args.out), prepared.test_examples)
            reporters = open_reporters(parse_report_to(args.report_to), Path(args.out),
                                       trainer.global_step if args.resume is not None else None,
                                       _report_settings(args, trainer))
            trainer.sinks.extend(reporter.log for reporter in reporters)
        try:
            result = trainer.fit(stop_after=args.stop_after)
        except KeyboardInterrupt:
            if ctx.is_main:
                print(f"state saved at step {trainer.global_step}; continue with: "
                      f"hessgpt train --out {args.out} --resume", file=sys.stderr)
            raise
        if ctx.is_main:
            state = "stopped (resume with --resume)" if not result.finished else "done"
            best = f", best val_loss {result.best_val_loss:.4f}" if result.best_val_loss is not None else ""
            print(
                f"{state}: {result.global_step} steps in {result.seconds:.0f}s{best}; checkpoints in {args.out}"
            )
            if trainer.info.lora and result.finished:
                print(
                    f"merge: hessgpt lora merge --base {args.from_ckpt} --adapter {args.out}/best.lora.pt "
                    f"--out {args.out}/merged.pt"
                )
        return 0
    finally:
        close_all(reporters)
        if ctx.distributed:
            import torch.distributed as dist

            dist.destroy_process_group()


def _report_settings(args: argparse.Namespace, trainer: Trainer) -> dict[str, Any]:
    """What a viewer shows as the run's configuration: the command's settings and the model's."""
    settings = {k: v for k, v in vars(args).items() if k not in _NOT_STORED and not callable(v)}
    return {**settings, "model": trainer.info.model_config.to_dict(), "train": dataclasses.asdict(trainer.cfg)}


def _write_test_split(out: Path, examples: list[Example]) -> None:
    """The held-out test examples, in messages/text JSONL, for evaluating the run later."""
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"messages": e.messages} if e.is_chat else {"text": e.text}, ensure_ascii=False)
        for e in examples
    ]
    (out / "test.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
