"""``bench.py``: run the bench on checkpoints or on answers produced elsewhere; ``compare`` and ``gate``.

    python bench.py --checkpoint epoch6.pt
    python bench.py --checkpoint 'checkpoints/run/epoch*.pt'     # each, then a trend page
    python bench.py --responses answers.jsonl
    python bench.py compare RUN_A RUN_B
    python bench.py gate --run RUN --baseline RUN_OLD
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hessgpt.errors import HessError

RUNS_DIR = Path("reports/runs")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench.py",
        description="Grade a language model out of 20 on the HessGPT Bench suites. "
                    "Subcommands: `bench.py compare RUN_A RUN_B`, `bench.py gate --run R --baseline B`.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", nargs="+", metavar="CK",
                     help="checkpoint file(s) or name(s) under checkpoints/; globs allowed; several give a trend page")
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
    p.add_argument("--int8", action="store_true", help="int8 dynamic quantisation of linear layers (faster on CPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no summary table")
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


def run_bench(args: argparse.Namespace) -> int:
    from benchmarks.runner import BenchRun, expand_checkpoints, summary_table

    settings = _settings(args)
    if args.responses:
        out = args.out or _default_out(args.responses)
        results = BenchRun(out, settings, responses=args.responses, suites_dir=args.suites_dir,
                           progress=not args.no_progress).run()
        _report(results, out, args, summary_table)
        return 0
    checkpoints = expand_checkpoints(args.checkpoint)
    several = len(checkpoints) > 1
    base = args.out or (RUNS_DIR / "trend" if several else _default_out(checkpoints[0]))
    run_dirs = []
    for ck in checkpoints:
        out = base / _default_out(ck).name if several else base
        if several:
            print(f"== {ck}", file=sys.stderr)
        results = BenchRun(out, settings, checkpoint=ck, suites_dir=args.suites_dir,
                           progress=not args.no_progress).run()
        _report(results, out, args, summary_table)
        run_dirs.append(out)
    if several:
        from reports.compare import write_trend

        page = write_trend(run_dirs, base)
        print(f"trend: {page}")
    return 0


def _report(results: dict, out: Path, args: argparse.Namespace, summary_table) -> None:
    if not args.quiet:
        print(summary_table(results))
    missing = sum(1 for row in results["items"] if row.get("missing"))
    if missing:
        print(f"warning: {missing} selected item(s) had no answer and count as 0", file=sys.stderr)
    print(f"scorecard: {out / 'index.html'}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "compare":
            from reports.compare import compare_main

            return compare_main(argv[1:])
        if argv and argv[0] == "gate":
            from reports.compare import gate_main

            return gate_main(argv[1:])
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
