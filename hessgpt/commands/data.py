"""``hessgpt data check FILE... [--against DIR]``: training examples that overlap the bench's suites.

``hessgpt data stats FILE...`` reads, cleans and splits a dataset and says what it found.
Exit code of ``check``: 0 when clean, 1 when some example overlaps a suite item.
"""

from __future__ import annotations

import argparse
import json

from hessgpt.data import FORMATS, load_dataset, parse_split, split_examples
from hessgpt.errors import HessError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="report training examples that overlap suite items")
    check.add_argument("files", nargs="+", help="dataset files")
    check.add_argument(
        "--against", help="folder of suite YAML files (default: the suites shipped with the bench)"
    )
    check.add_argument("--ngram", type=int, default=13, help="shared word n-gram length (default 13)")
    check.add_argument("--limit", type=int, default=20, help="findings to print (default 20)")
    check.add_argument("--json", action="store_true", help="print every finding as JSON lines")
    stats = sub.add_parser("stats", help="count examples, duplicates, bad lines and the split")
    stats.add_argument("files", nargs="+", help="dataset files")
    stats.add_argument("--split", default="85,10,5")
    stats.add_argument("--seed", type=int, default=0)
    for command in (check, stats):
        command.add_argument("--format", default="auto", choices=FORMATS)
        command.add_argument(
            "--skip-bad-lines", action="store_true", help="skip (and count) malformed records"
        )


def run(args: argparse.Namespace) -> int:
    examples, report = load_dataset(args.files, args.format, args.skip_bad_lines)
    if args.action == "stats":
        train, val, test = split_examples(examples, parse_split(args.split), args.seed)
        kinds = "conversations" if examples[0].is_chat else "text passages"
        print(f"{report.summary()} ({kinds})")
        for line in report.bad_line_examples:
            print(f"  skipped {line}")
        print(
            f"split {args.split} (seed {args.seed}): {len(train)} train, {len(val)} validation, {len(test)} test"
        )
        for entry in report.files:
            print(f"  {entry['path']}: {entry['records']} records, sha256 {entry['sha256']}")
        return 0

    from hessgpt.contamination import check_examples, shipped_suites_dir

    against = args.against or shipped_suites_dir()
    if against is None:
        raise HessError("--against: no shipped benchmarks/suites found; pass the folder of suite files")
    result = check_examples(examples, against, args.ngram)
    if args.json:
        for finding in result.findings:
            print(
                json.dumps(
                    {
                        "source": finding.source,
                        "item": finding.item,
                        "kind": finding.kind,
                        "evidence": finding.evidence,
                    },
                    ensure_ascii=False,
                )
            )
    else:
        for finding in result.findings[: args.limit]:
            print(finding.line())
        if len(result.findings) > args.limit:
            print(f"... {len(result.findings) - args.limit} more (--limit, --json)")
        print(result.summary())
    return 1 if result.findings else 0
