"""``hessgpt sandbox run FILE|-``: run a Python program in the sandbox and print what happened.

The program's stdout and stderr are printed as they were captured, then one line with the verdict
(``ok``, ``error``, ``timeout``, ``memory``, ``output_limit``, ``forbidden``, ``killed``); ``--json``
prints the whole result as JSON instead. Exit code 0 when the verdict is ``ok``, 1 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from hessgpt.errors import HessError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = sub.add_parser("run", help="run a Python file (or - for standard input) in the sandbox")
    run.add_argument("file", help="the program to run, or - to read it from standard input")
    run.add_argument("--timeout", type=float, default=5.0, help="wall-clock limit in seconds (default 5)")
    run.add_argument("--memory-mb", type=int, default=100, help="memory the program may allocate (default 100)")
    run.add_argument("--stdin", metavar="FILE", help="file whose text the program reads on its standard input")
    run.add_argument("--json", action="store_true", help="print the result as one JSON object")
    run.add_argument(
        "--unsafe-sandbox",
        action="store_true",
        help="where OS isolation is unavailable, run anyway with resource limits and the import guard only",
    )


def _read(path: str, flag: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HessError(f"{flag}: cannot read {path}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from hessgpt.sandbox import run as sandbox_run

    code = _read(args.file, "file")
    stdin = _read(args.stdin, "--stdin") if args.stdin else ""
    result = sandbox_run(
        code, timeout_s=args.timeout, memory_mb=args.memory_mb, stdin=stdin, unsafe=args.unsafe_sandbox
    )
    if args.json:
        print(json.dumps(dataclasses.asdict(result), ensure_ascii=False))
    else:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        print(f"sandbox: {result.summary()}", file=sys.stderr)
    return 0 if result.ok else 1
