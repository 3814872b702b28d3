"""``bench.py export-prompts --out prompts.jsonl``: the selected items as chat messages, one JSON per line.

Another harness or an API answers them, writes ``{"id": ..., "output": ...}`` lines, and
``bench.py --responses answers.jsonl`` grades those answers with the same ``--suite/--limit/--seed``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hessgpt.errors import HessError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench.py export-prompts",
        description="Write the bench's items as chat messages (JSONL) for answering elsewhere; grade the "
                    "answers with `bench.py --responses FILE` and the same --suite/--limit/--seed.")
    p.add_argument("--out", type=Path, required=True, help="the JSONL file to write")
    p.add_argument("--suite", help="comma-separated suites (default: all)")
    p.add_argument("--suites-dir", type=Path, help="folder of suite YAML files (default: the shipped suites)")
    p.add_argument("--limit", type=int, help="only N items of each suite (the same seeded sample as a run)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --limit sample (default 0)")
    p.add_argument("--max-new-tokens", type=int, default=128,
                   help="answer length cap written for items that set none (default 128)")
    return p


def export_records(suites_dir: Path | None, suite: str | None, limit: int | None, seed: int,
                   max_new_tokens: int) -> list[dict]:
    """One record per selected item, in the order a bench run takes them."""
    from benchmarks.runner import default_suite_names, select_items
    from benchmarks.suite import load_suites

    if limit is not None and limit < 1:
        raise HessError(f"--limit: must be >= 1, got {limit}")
    if max_new_tokens < 1:
        raise HessError(f"--max-new-tokens: must be >= 1, got {max_new_tokens}")
    # Without --suite, the suites a bench run takes by default: those that count toward the grade.
    names = [s.strip() for s in suite.split(",") if s.strip()] if suite else default_suite_names(suites_dir)
    kwargs = {"names": names} if names else {}
    suites = load_suites(suites_dir, **kwargs) if suites_dir else load_suites(**kwargs)
    if not suites:
        raise HessError("--suite: no suite selected")
    return [
        {"id": item.id, "suite": s.name, "category": item.category, "messages": item.conversation(),
         "max_new_tokens": item.max_new_tokens or max_new_tokens}
        for s, item in select_items(suites, limit, seed)
    ]


def export_main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    records = export_records(args.suites_dir, args.suite, args.limit, args.seed, args.max_new_tokens)
    try:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    except OSError as exc:
        raise HessError(f"--out: {args.out}: {exc.strerror or exc}") from None
    print(f"{args.out}: {len(records)} items; answer each with a line {{\"id\": ..., \"output\": ...}}, then "
          f"`python bench.py --responses ANSWERS.jsonl` with the same --suite/--limit/--seed", file=sys.stderr)
    return 0
