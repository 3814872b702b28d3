"""A short fingerprint of a run's answers, to compare greedy outputs across machines at a glance.

sha256 over one ``id<TAB>output<LF>`` line per item of ``results.json`` (UTF-8), first 16 hex digits.
Items are sorted by id by default (the results order follows the suites, which a suite edit can
move); ``--results-order`` hashes them as stored. Two runs with the same hash gave the same answers
to the same items; see docs/performance.md for why machines with different vector ISAs may not.

    python scripts/output_hash.py reports/runs/smollm2-135m-instruct/results.json
    python scripts/output_hash.py RUN_A/results.json RUN_B/results.json --diff   # which items differ
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path


def answer_lines(results: dict, sort: bool = True) -> list[str]:
    """One ``id<TAB>output<LF>`` line per item (an item answered several times: one line per sample)."""
    items = results.get("items")
    if not isinstance(items, list):
        raise ValueError("no 'items' list: is this a results.json?")
    lines = [f"{item['id']}\t{item['output']}\n" for item in items]
    return sorted(lines) if sort else lines


def output_hash(results: dict, sort: bool = True) -> str:
    return hashlib.sha256("".join(answer_lines(results, sort)).encode("utf-8")).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, help="results.json files")
    parser.add_argument("--results-order", action="store_true", help="hash the items in stored order")
    parser.add_argument("--diff", action="store_true", help="list the item ids whose answers differ (two runs)")
    args = parser.parse_args(argv)
    runs = []
    for path in args.results:
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
            digest = output_hash(results, sort=not args.results_order)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            return 2
        machine = (results.get("meta") or {}).get("machine") or {}
        print(f"{digest}  {path}  ({len(results['items'])} items, grade {results.get('grade')}, "
              f"{machine.get('cpu_model', 'machine not recorded')}, {machine.get('isa', '?')})")
        runs.append(results)
    if args.diff and len(runs) == 2:
        a, b = ({(i["id"], i.get("sample", 0)): i["output"] for i in r["items"]} for r in runs)
        differ = sorted(k for k in a.keys() & b.keys() if a[k] != b[k])
        print(f"{len(differ)} of {len(a.keys() & b.keys())} common items differ: "
              + ", ".join(str(k[0]) for k in differ[:30]) + (" ..." if len(differ) > 30 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
