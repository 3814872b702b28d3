"""``--tools python`` for ``hessgpt chat`` and ``hessgpt generate``: the flags, the router they build,
and how a tool call is shown."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from hessgpt.errors import HessError
from hessgpt.router import DEFAULT_MAX_CALLS


def add_tool_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tools", choices=["python"], default=None,
                        help="let the model run Python in the sandbox (<|code|> blocks, or ```python fences "
                        "for a model without the tool tokens)")
    parser.add_argument("--code-checkpoint", metavar="CK", default=None,
                        help="with --tools: a code model that rewrites each code block before it runs")
    parser.add_argument("--max-tool-calls", type=int, default=DEFAULT_MAX_CALLS,
                        help=f"with --tools: tool calls per answer at most (default {DEFAULT_MAX_CALLS})")
    parser.add_argument("--tool-timeout", type=float, default=5.0, help="with --tools: seconds per run (default 5)")


def make_router(args: argparse.Namespace, engine: Any) -> Any:
    """The router the flags ask for, or None without --tools."""
    if args.tools is None:
        if args.code_checkpoint:
            raise HessError("--code-checkpoint: needs --tools python")
        return None
    from hessgpt.router import Router, load_code_model

    if not args.tool_timeout > 0:
        raise HessError(f"--tool-timeout: must be > 0, got {args.tool_timeout}")
    code_model = load_code_model(args.code_checkpoint) if args.code_checkpoint else None
    return Router(engine, code_model=code_model, max_calls=args.max_tool_calls, timeout_s=args.tool_timeout)


def show_call(out: TextIO, number: int, call: Any) -> None:
    """One tool call as the user sees it: the code that ran, then its result."""
    out.write(f"[tool call {number}: python, {call.exit_reason}, {call.wall_s:.2f} s]\n")
    if call.ran != call.code:
        out.write("  (code model rewrote the block)\n")
    for line in call.ran.strip("\n").splitlines() or [""]:
        out.write(f"  | {line}\n")
    for line in call.result.rstrip("\n").splitlines() or [""]:
        out.write(f"  > {line}\n")
