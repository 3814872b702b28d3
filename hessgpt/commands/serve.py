"""``hessgpt serve``: the OpenAI-compatible API and the web chat page for one checkpoint.

Bound to 127.0.0.1 unless --host says otherwise; with --api-key-env VAR every /v1 route wants
``Authorization: Bearer $VAR``.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from hessgpt import flags
from hessgpt.errors import HessError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, help="model file or name (see `hessgpt import`), or preset:NAME"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument(
        "--batch-size", type=int, default=16, help="requests decoded together; more wait in the queue (default 16)"
    )
    parser.add_argument(
        "--max-concurrent", type=int, default=256, help="requests queued or running at once; more get 429 (default 256)"
    )
    parser.add_argument(
        "--api-key-env", metavar="VAR", default=None, help="require `Authorization: Bearer $VAR` on the API"
    )
    parser.add_argument("--model-name", default=None, help="the model id the API reports (default: the model's name)")
    parser.add_argument(
        "--default-max-tokens",
        type=int,
        default=1024,
        help="chat answers without max_tokens stop here or at the end of the context (default 1024)",
    )
    parser.add_argument("--int8", action="store_true", help=flags.INT8_HELP)
    flags.add_engine_arguments(parser)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")


def _check(args: argparse.Namespace) -> str | None:
    for flag, value, low in (
        ("--port", args.port, 1),
        ("--batch-size", args.batch_size, 1),
        ("--max-concurrent", args.max_concurrent, 1),
        ("--default-max-tokens", args.default_max_tokens, 1),
    ):
        if value < low:
            raise HessError(f"{flag}: must be >= {low}, got {value}")
    if args.port > 65535:
        raise HessError(f"--port: must be <= 65535, got {args.port}")
    if args.api_key_env is None:
        return None
    key = os.environ.get(args.api_key_env, "")
    if not key:
        raise HessError(f"--api-key-env: the environment variable {args.api_key_env} is unset or empty")
    return key


def _check_port(host: str, port: int) -> None:
    """Fail before the model loads if the address cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise HessError(f"--port: cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def run(args: argparse.Namespace) -> int:
    api_key = _check(args)
    _check_port(args.host, args.port)
    import uvicorn

    from hessgpt.native_memory import use_one_malloc_arena

    use_one_malloc_arena()  # before any thread allocates: the scheduler's trims then reach all memory

    from hessgpt.commands.generate import load_engine
    from hessgpt.serve import Limits, ServeOptions, create_app

    engine = load_engine(args, batch_size=args.batch_size)
    name = args.model_name or engine.config.name or Path(args.checkpoint).stem
    options = ServeOptions(
        model_name=name,
        slots=args.batch_size,
        max_concurrent=args.max_concurrent,
        api_key=api_key,
        limits=Limits(default_max_tokens=args.default_max_tokens),
    )
    app = create_app(engine, options)
    if args.host not in ("127.0.0.1", "localhost", "::1") and api_key is None:
        print(f"warning: serving on {args.host} without an API key (see --api-key-env)", file=sys.stderr)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"serving {name} (context {engine.context}, batch {args.batch_size}) at http://{shown}:{args.port}/ "
        f"(chat page) and http://{shown}:{args.port}/v1 (OpenAI API)",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
