"""Run untrusted Python code: ``run(code, timeout_s=5, memory_mb=100, stdin="") -> SandboxResult``.

Layers, outermost first (the operating system, not Python, is the boundary):

- a Python guard: an import whitelist (``policy.ALLOWED_MODULES``) and no ``open``;
- a seccomp-BPF filter (``seccomp.py``): no processes, sockets, signals to others, ptrace, mounts,
  namespaces, raising limits, identity changes;
- resource limits per run: address space, CPU time, no file writes, no core, few descriptors;
- namespaces (``jail.py``): a read-only root holding only the standard library and the allowed
  packages, no network, a private PID space, an unprivileged user mapped to ``nobody``;
- the supervisor (``supervisor.py``): wall-clock timeout, output caps, peak memory.

Each run is a fresh process forked from a template that already holds the jail and the preloaded
libraries (numpy, sympy), so a run costs milliseconds, not an interpreter start. Where namespaces or
seccomp are unavailable, ``run`` raises a one-line ``HessError`` instead of running unprotected;
``unsafe=True`` runs with rlimits and the guard only and marks results ``unsafe``.
See docs/sandbox.md for the threat model.
"""

from __future__ import annotations

import atexit
import threading

from hessgpt.sandbox.policy import ALLOWED_MODULES, EXIT_REASONS
from hessgpt.sandbox.result import SandboxResult
from hessgpt.sandbox.supervisor import Sandbox

__all__ = ["ALLOWED_MODULES", "EXIT_REASONS", "Sandbox", "SandboxResult", "run", "shared_sandbox"]

_shared: dict[bool, Sandbox] = {}
_shared_lock = threading.Lock()


def shared_sandbox(unsafe: bool = False) -> Sandbox:
    """The process-wide sandbox ``run`` uses (started on first use, stopped at exit)."""
    with _shared_lock:
        if unsafe not in _shared:
            _shared[unsafe] = Sandbox(unsafe=unsafe)
            if len(_shared) == 1:
                atexit.register(_close_shared)
        return _shared[unsafe]


def _close_shared() -> None:
    for sandbox in _shared.values():
        sandbox.close()


def run(code: str, timeout_s: float = 5, memory_mb: int = 100, stdin: str = "", unsafe: bool = False) -> SandboxResult:
    """Run ``code`` in a fresh sandboxed process; see :class:`SandboxResult` for the verdicts."""
    return shared_sandbox(unsafe).run(code, timeout_s=timeout_s, memory_mb=memory_mb, stdin=stdin)
