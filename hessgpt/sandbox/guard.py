"""The Python layer inside the sandbox: an import whitelist, builtins without file access, and the
runner that executes user code and turns how it ended into an exit code.

This layer only makes honest mistakes fail early with a clear message ("import of 'os' is not
allowed"). It is not the security boundary: Python offers many ways around it (``__subclasses__``
walks, module attributes such as ``random._os``, forged code objects). Whatever gets past it meets
the operating-system jail and the seccomp filter.
"""

from __future__ import annotations

import builtins
import io
import linecache
import sys
import traceback
import types

from hessgpt.sandbox import policy

FILENAME = "<sandbox>"


class SandboxViolation(PermissionError):
    """Something the sandbox does not allow (the message says what)."""


class ForbiddenImport(ImportError):
    """An import outside the whitelist."""


# Tracebacks show the bare names, as for built-in exceptions.
SandboxViolation.__module__ = ForbiddenImport.__module__ = "builtins"


_real_import = builtins.__import__

# What ``import sys`` gives user code: the streams, exit, limits and version facts programs use,
# without sys.modules, sys._getframe or the interpreter hooks.
SYS_NAMES = frozenset(
    {
        "argv", "byteorder", "exit", "float_info", "get_int_max_str_digits", "getrecursionlimit",
        "getsizeof", "hexversion", "int_info", "maxsize", "maxunicode", "platform",
        "set_int_max_str_digits", "setrecursionlimit", "stderr", "stdin", "stdout", "version",
        "version_info",
    }
)
_STREAMS = frozenset({"stdin", "stdout", "stderr"})


class _SysView(types.ModuleType):
    def __getattr__(self, name: str):
        if name in SYS_NAMES:
            return getattr(sys, name)
        raise AttributeError(f"sys.{name} is not available in the sandbox")

    def __setattr__(self, name: str, value) -> None:
        if name not in _STREAMS:
            raise AttributeError(f"sys.{name} cannot be set in the sandbox")
        setattr(sys, name, value)

    def __dir__(self):
        return sorted(SYS_NAMES)


_sys_view = _SysView("sys")


def _imported_by_library(caller_globals: object) -> bool:
    """True when the import comes from the body of an already-loaded module (a library importing
    its own dependencies), not from user code."""
    if not isinstance(caller_globals, dict):
        return False
    name = caller_globals.get("__name__")
    module = sys.modules.get(name) if isinstance(name, str) else None
    return name != "__main__" and module is not None and getattr(module, "__dict__", None) is caller_globals


def _guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
    caller = sys._getframe(1).f_globals
    if level == 0 and not _imported_by_library(caller):
        top = name.partition(".")[0]
        if name == "sys":
            return _sys_view
        if top not in policy.ALLOWED_MODULES:
            raise ForbiddenImport(f"import of '{name}' is not allowed in the sandbox")
    return _real_import(name, globals, locals, fromlist, level)


def _refused(what: str):
    def refuse(*args, **kwargs):
        raise SandboxViolation(f"{what} is not available in the sandbox")

    refuse.__name__ = what
    return refuse


def install() -> None:
    """Restrict imports and builtins for the rest of this process's life."""
    builtins.__import__ = _guarded_import
    for name in ("open", "breakpoint", "help"):
        setattr(builtins, name, _refused(name))
    builtins.exit = builtins.quit = _exit  # the interpreter runs without site, which defines them


def _exit(code=None):
    raise SystemExit(code)


def _streams() -> None:
    """Text streams on fds 0-2 (the run's pipes), line-buffered so output survives a kill."""
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8", errors="replace")
    for fd, name in ((1, "stdout"), (2, "stderr")):
        raw = io.BufferedWriter(io.FileIO(fd, "w", closefd=False))
        setattr(sys, name, io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", line_buffering=True))


def _report(exc: BaseException) -> None:
    """The traceback from the user's first frame on (the runner's own frames are noise)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)] if frames else []
    sys.stderr.write("".join(lines + traceback.format_exception_only(type(exc), exc)))


def _is_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError)


def _is_forbidden(exc: BaseException) -> bool:
    # PermissionError covers the seccomp filter's EPERM; EROFS the read-only file system.
    return isinstance(exc, (ForbiddenImport, PermissionError)) or (
        isinstance(exc, OSError) and exc.errno == 30
    )


def execute(code: str) -> int:
    """Run user code as ``__main__``; returns the process exit code (see policy.EXIT_*)."""
    _streams()
    sys.argv = [FILENAME]
    linecache.cache[FILENAME] = (len(code), None, code.splitlines(True), FILENAME)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    status = policy.EXIT_OK
    try:
        exec(compile(code, FILENAME, "exec"), namespace)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            if not isinstance(exc.code, int):
                sys.stderr.write(f"{exc.code}\n")
            sys.stderr.write(f"SystemExit: exit status {exc.code!r}\n")
            status = policy.EXIT_ERROR
    except BaseException as exc:  # noqa: B036 - everything the program raised is its verdict
        try:
            _report(exc)
        except MemoryError:
            sys.stderr.write(f"{type(exc).__name__}\n")
        if _is_memory(exc):
            status = policy.EXIT_MEMORY
        elif _is_forbidden(exc):
            status = policy.EXIT_FORBIDDEN
        else:
            status = policy.EXIT_ERROR
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: B036 - a closed pipe or a full disk must not change the verdict
            pass
    return status
