"""What sandboxed code may use: the import whitelist, the limits, the output cap and the exit codes
the guard inside the sandbox uses to tell the supervisor how a run ended."""

from __future__ import annotations

# Top-level modules user code may import. Everything here is pure computation: no files, processes,
# network or interpreter internals; ``import sys`` gives a view with the streams, exit and limits only.
# (The OS layer, not this list, is the security boundary.)
ALLOWED_MODULES: frozenset[str] = frozenset(
    {
        "abc", "array", "bisect", "calendar", "cmath", "collections", "colorsys", "contextlib", "copy",
        "dataclasses", "datetime", "decimal", "difflib", "enum", "fractions", "functools", "graphlib",
        "hashlib", "heapq", "itertools", "json", "math", "mpmath", "numbers", "numpy", "operator",
        "pprint", "random", "re", "statistics", "string", "sympy", "textwrap", "time", "typing",
        "unicodedata", "__future__",
    }
)

# Modules the sandbox loads before the first run so that runs start fast (the heavy ones only if
# installed). Loading happens once, in the template process every run is forked from.
PRELOAD_MODULES: tuple[str, ...] = tuple(sorted(ALLOWED_MODULES - {"numpy", "sympy", "mpmath"})) + (
    "numpy",
    "sympy",
)

# Third-party packages bind-mounted (read-only) into the sandbox's file system when installed.
THIRD_PARTY_PACKAGES: tuple[str, ...] = ("numpy", "sympy", "mpmath")

OUTPUT_LIMIT_BYTES = 64 * 1024  # per stream (stdout, stderr)
STDIN_LIMIT_BYTES = 16 * 1024 * 1024
CODE_LIMIT_BYTES = 1024 * 1024
MAX_TIMEOUT_S = 600.0
MAX_MEMORY_MB = 16 * 1024

# How a run ended, as told by SandboxResult.exit_reason.
EXIT_REASONS: tuple[str, ...] = ("ok", "error", "timeout", "memory", "output_limit", "forbidden", "killed")

# Exit codes of the guard process inside the sandbox (user code's own sys.exit(n) maps to "error").
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_FORBIDDEN = 97
EXIT_MEMORY = 98
EXIT_SETUP_FAILED = 99
