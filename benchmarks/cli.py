"""``bench.py``: run the bench on checkpoints or on answers produced elsewhere; ``compare`` and ``gate``.

    python bench.py --checkpoint epoch6.pt
    python bench.py --checkpoint 'checkpoints/run/epoch*.pt'     # each, then a trend page
    python bench.py --responses answers.jsonl
    python bench.py compare RUN_A RUN_B
    python bench.py gate --run RUN --baseline RUN_OLD
    python bench.py validity --split heldout        # agreement of the graders with human scores
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hessgpt.errors import HessError

RUNS_DIR = Path("reports/runs")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench.py",
        description="Grade a language model out of 20 on the HessGPT Bench suites. "
                    "Subcommands: `bench.py compare RUN_A RUN_B`, `bench.py gate --run R --baseline B`, "
                    "`bench.py validity --split heldout`.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", nargs="+", metavar="CK",
                     help="checkpoint file(s) or name(s) under checkpoints/; globs allowed (ordered by recorded epoch, "
                          "copies such as best.pt left out); several give a trend page; all are checked first")
    src.add_argument("--responses", metavar="FILE.jsonl",
                     help="grade answers produced elsewhere (one {\"id\", \"output\"} per line), no model")
    p.add_argument("--out", type=Path, help="output folder (default: reports/runs/<checkpoint name>)")
    p.add_argument("--suite", help="comma-separated suites to run (default: all)")
    p.add_argument("--suites-dir", type=Path, help="folder of suite YAML files (default: the shipped suites)")
    p.add_argument("--limit", type=int, help="only the first N items of each selected suite")
    p.add_argument("--seed", type=int, default=0, help="seed for sampling and bootstrap (default 0)")
    p.add_argument("--batch-size", type=int, default=16, help="generation batch size (results do not depend on it)")
    p.add_argument("--samples", type=int, default=1, help="sampled answers per item (needs --temperature > 0)")
    p.add_argument("--max-new-tokens", type=int, default=128, help="default answer length cap (items may override)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-k", type=int, help="sample among the k most likely tokens")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass")
    p.add_argument("--repetition-penalty", type=float, default=1.0, help="CTRL repetition penalty (1 = off)")
    p.add_argument("--no-repeat-ngram-size", type=int, default=0, help="forbid repeating n-grams of this size")
    p.add_argument("--no-likelihood", action="store_true", help="skip perplexity, bits per byte and multiple choice")
    p.add_argument("--int8", action="store_true",
                   help="int8 weights in the transformer blocks: faster at small batches, but the answers differ "
                   "from fp32 (grades are not comparable with fp32 runs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no summary tables")
    return p


def _settings(args: argparse.Namespace):
    from benchmarks.runner import BenchSettings

    suites = [s.strip() for s in args.suite.split(",") if s.strip()] if args.suite else None
    return BenchSettings(
        suites=suites, limit=args.limit, seed=args.seed, batch_size=args.batch_size, samples=args.samples,
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
        repetition_penalty=args.repetition_penalty, no_repeat_ngram_size=args.no_repeat_ngram_size,
        likelihood=not args.no_likelihood, int8=args.int8,
    )


def _default_out(name: str) -> Path:
    stem = Path(name).stem if name.endswith((".pt", ".gguf", ".bin", ".safetensors", ".jsonl")) else Path(name).name
    parent = Path(name).parent.name
    # epoch files of different runs must not share a folder: keep the run folder's name too.
    label = f"{parent}-{stem}" if parent and parent not in (".", "checkpoints") else stem
    return RUNS_DIR / label


# -------------------------------------------------------------- checkpoints: check, order, dedup


@dataclass(frozen=True)
class CheckpointProbe:
    """What a cheap look at a checkpoint tells, without building the model."""

    arg: str  # as given on the command line (or matched by a glob)
    file: Path | None  # None for preset:NAME
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def epoch(self) -> float | None:
        return _number(self.meta.get("epoch"))

    @property
    def step(self) -> float | None:
        return _number(self.meta.get("step"))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def probe_checkpoint(arg: str) -> CheckpointProbe:
    """Check that a checkpoint exists and that ``load_model`` can open it, without building it, so a
    bad file in a series of ten fails before the first run starts instead of after nine."""
    from hessgpt.loading import probe_model

    file, meta = probe_model(arg)
    return CheckpointProbe(arg, file, meta)


def is_training_state(arg: str) -> bool:
    """True for the trainer's resume file (``last_state.pt``: weights + optimiser, no tokenizer), which
    a glob such as ``checkpoints/run/*.pt`` also matches but the bench cannot grade."""
    from hessgpt.checkpoint import safe_torch_load
    from hessgpt.train import STATE_FORMAT

    path = Path(arg)
    if not path.is_file():
        return False
    try:
        obj = safe_torch_load(path)
    except HessError:
        return False
    return isinstance(obj, dict) and obj.get("format") == STATE_FORMAT


def _weights_digest(probe: CheckpointProbe) -> str:
    """sha256 of the weights alone (a native file) or of the whole file: equal for the same model."""
    import hashlib

    import torch

    from hessgpt.checkpoint import is_native, safe_torch_load, sha256_file

    assert probe.file is not None
    obj = safe_torch_load(probe.file)
    if not is_native(obj):
        return sha256_file(probe.file)
    digest = hashlib.sha256()
    for name in sorted(obj["model"]):
        tensor = obj["model"][name]
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _ordered(group: list[CheckpointProbe]) -> list[CheckpointProbe]:
    """A glob's matches by recorded (epoch, step) when every file has one, else in natural order."""
    if all(p.epoch is not None for p in group):
        return sorted(group, key=lambda p: (p.epoch, p.step or 0.0, "best_of_epochs" in p.meta))
    if all(p.step is not None for p in group):
        return sorted(group, key=lambda p: (p.step, "best_of_epochs" in p.meta))
    return group  # expand_checkpoints already sorted them naturally (epoch2 before epoch10)


def _duplicates(group: list[CheckpointProbe]) -> dict[str, str]:
    """Glob matches whose weights equal another match's: {dropped arg: kept arg}.

    The trainer's best.pt is a second copy of one epoch file (same epoch, step and weights, plus
    ``best_of_epochs``); running it again would put one model twice on the trend. Only files that
    could be copies (same epoch and step, or same size without metadata) are hashed.
    """
    candidates: dict[tuple, list[CheckpointProbe]] = {}
    for p in group:
        if p.file is None:
            continue
        key = ("meta", p.epoch, p.step) if p.epoch is not None or p.step is not None else ("size", p.file.stat().st_size)
        candidates.setdefault(key, []).append(p)
    dropped: dict[str, str] = {}
    for members in candidates.values():
        if len(members) < 2:
            continue
        # Keep the epoch file over the trainer's best copy, then the first in order.
        members = sorted(members, key=lambda p: "best_of_epochs" in p.meta)
        kept: dict[str, str] = {}
        for p in members:
            digest = _weights_digest(p)
            if digest in kept:
                dropped[p.arg] = kept[digest]
            else:
                kept[digest] = p.arg
    return dropped


def plan_checkpoints(patterns: list[str]) -> tuple[list[str], list[str]]:
    """The checkpoints to run, in order, and notes on what was left out.

    Every file is checked first (``probe_checkpoint``), so a bad one fails in one line before any
    run starts. Paths given one by one run in the order given; a glob's matches run in the order
    of their recorded epoch (or step), and a match with the same weights as another one (best.pt)
    is left out, and so is the trainer's training state (last_state.pt). The same file given twice
    runs once.
    """
    from benchmarks.runner import expand_checkpoints

    plan: list[str] = []
    notes: list[str] = []
    seen: dict[str, str] = {}
    for pattern in patterns:
        matches = expand_checkpoints([pattern])
        probes = []
        for match in matches:
            try:
                probes.append(probe_checkpoint(match))
            except HessError:
                if not is_training_state(match):
                    raise
                if len(matches) == 1:
                    raise HessError(f"{match}: a training state (the trainer's resume file: weights and "
                                    "optimiser), not a checkpoint to grade; give an epochN.pt file of the same "
                                    "run") from None
                notes.append(f"--checkpoint: skipping {match}: a training state (for hessgpt train --resume), "
                             "not a checkpoint")
        if len(probes) > 1:
            dropped = _duplicates(probes)
            for arg, kept in dropped.items():
                notes.append(f"--checkpoint: skipping {arg}: same weights as {kept}")
            probes = _ordered([p for p in probes if p.arg not in dropped])
        for p in probes:
            key = str(p.file.resolve()) if p.file is not None else p.arg
            if key in seen:
                notes.append(f"--checkpoint: skipping {p.arg}: already listed as {seen[key]}")
                continue
            seen[key] = p.arg
            plan.append(p.arg)
    return plan, notes


def _run_dirs(base: Path, checkpoints: list[str]) -> list[Path]:
    """One folder per checkpoint under ``base``; a clash of names gets a numbered suffix."""
    out, used = [], set()
    for ck in checkpoints:
        name = _default_out(ck).name
        unique, n = name, 2
        while unique in used:
            unique, n = f"{name}-{n}", n + 1
        used.add(unique)
        out.append(base / unique)
    return out


def run_bench(args: argparse.Namespace) -> int:
    from benchmarks.runner import BenchRun, summary_table

    settings = _settings(args)
    if args.responses:
        out = args.out or _default_out(args.responses)
        results = BenchRun(out, settings, responses=args.responses, suites_dir=args.suites_dir,
                           progress=not args.no_progress).run()
        _report(results, out, args, summary_table)
        return 0
    settings.validate()  # a bad flag fails before the checkpoints are read
    checkpoints, notes = plan_checkpoints(args.checkpoint)
    for note in notes:
        print(note, file=sys.stderr)
    several = len(checkpoints) > 1
    base = args.out or (RUNS_DIR / "trend" if several else _default_out(checkpoints[0]))
    outs = _run_dirs(base, checkpoints) if several else [base]
    for ck, out in zip(checkpoints, outs, strict=True):
        if several:
            print(f"== {ck}", file=sys.stderr)
        results = BenchRun(out, settings, checkpoint=ck, suites_dir=args.suites_dir,
                           progress=not args.no_progress).run()
        _report(results, out, args, summary_table)
    if several:
        from reports.compare import build_trend, format_trend_table, write_trend_page

        trend = build_trend(outs, seed=args.seed)
        page = write_trend_page(trend, base)
        if not args.quiet:
            print(f"\nTrend over {len(outs)} checkpoints (paired grade change from the previous one):")
            print(format_trend_table(trend))
        print(f"trend: {page}")
    return 0


def _report(results: dict, out: Path, args: argparse.Namespace, summary_table) -> None:
    if not args.quiet:
        print(summary_table(results))
    missing = sum(1 for row in results["items"] if row.get("missing"))
    if missing:
        print(f"warning: {missing} selected item(s) had no answer and count as 0", file=sys.stderr)
    print(f"scorecard: {out / 'index.html'}")


def build_validity_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench.py validity",
        description="Grade the labelled validity set with the bench's graders and measure agreement with the "
                    "human scores (Spearman, Kendall, same-item pairs, calibration, mean absolute error).",
    )
    p.add_argument("--split", default="heldout", choices=("dev", "heldout", "all"),
                   help="which answers to measure (default: heldout, the answers the graders were not tuned on)")
    p.add_argument("--dir", type=Path, help="folder of the labelled set (default: benchmarks/validity)")
    p.add_argument("--suites-dir", type=Path, help="folder of suite YAML files (default: the shipped suites)")
    p.add_argument("--out", type=Path, default=Path("reports/validity"),
                   help="folder for validity.html and validity.json (default: reports/validity)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--fit-calibration", action="store_true",
                   help="first refit benchmarks/calibration.yaml (raw -> human scale, per category) on the dev split")
    return p


def run_validity(argv: list[str]) -> int:
    import json

    from benchmarks.suite import load_suites
    from graders import validity
    from reports.validity import write_validity_page

    args = build_validity_parser().parse_args(argv)
    if args.n_boot < 100:
        raise HessError(f"--n-boot: at least 100 resamples, got {args.n_boot}")
    directory = args.dir or validity.VALIDITY_DIR
    answers = validity.load_answers(directory)
    human = validity.load_human_scores(directory)
    suites = load_suites(args.suites_dir) if args.suites_dir else load_suites()
    if args.fit_calibration:
        validity.fit_calibration(answers, human, suites)
        print("calibration maps fitted on the dev split: benchmarks/calibration.yaml")
    graded = validity.with_human(validity.grade_answers(answers, suites), human)
    chosen = validity.select_split(graded, args.split)
    report = validity.measure(chosen, n_boot=args.n_boot, seed=args.seed)
    print(validity.format_report(report, args.split))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "validity.json").write_text(json.dumps({"split": args.split, **report}, indent=1), encoding="utf-8")
    page = write_validity_page(report, chosen, args.split, args.out)
    print(f"validity page: {page}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "compare":
            from reports.compare import compare_main

            return compare_main(argv[1:])
        if argv and argv[0] == "gate":
            from reports.compare import gate_main

            return gate_main(argv[1:])
        if argv and argv[0] == "validity":
            return run_validity(argv[1:])
        args = build_parser().parse_args(argv)
        return run_bench(args)
    except HessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished items are saved; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
