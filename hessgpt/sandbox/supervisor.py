"""The parent side: starts the sandbox's template process, hands it one run at a time, feeds stdin,
reads stdout and stderr under a cap, and turns how the run ended into a :class:`SandboxResult`."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import hessgpt
from hessgpt.errors import HessError
from hessgpt.sandbox import channel, policy
from hessgpt.sandbox.result import SandboxResult

_BOOT = (
    "import json, sys; config = json.loads(sys.argv[1]); sys.path[:0] = config['sys_path']; "
    "from hessgpt.sandbox.zygote import main; main(config)"
)
# Variables passed to the sandbox; nothing else of the caller's environment goes in.
_PASSED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LC_ALL": "C.UTF-8"}
_START_TIMEOUT_S = 120.0
_GRACE_S = 5.0  # past the run's own timeout, the supervisor stops waiting for the template


def package_dirs() -> tuple[list[str], list[str]]:
    """(directories to bind read-only, directories to put on sys.path) for the third-party packages."""
    binds, paths = [], []
    for name in policy.THIRD_PARTY_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            continue
        package = Path(next(iter(spec.submodule_search_locations))).resolve()
        binds.append(str(package))
        libs = package.parent / f"{name}.libs"  # vendored shared libraries of manylinux wheels
        if libs.is_dir():
            binds.append(str(libs))
        if str(package.parent) not in paths:
            paths.append(str(package.parent))
    return binds, paths


def _stdlib_dirs() -> list[str]:
    """The standard library and its extension modules (not a virtualenv's lib/, which holds every
    installed package)."""
    dirs: list[str] = []
    for module in (os, json, select, math):
        path = getattr(module, "__file__", None)
        if path:
            folder = str(Path(path).resolve().parent)
            if not any(folder == d or folder.startswith(d + "/") for d in dirs):
                dirs.append(folder)
    return dirs


def _config(unsafe: bool, preload: tuple[str, ...]) -> dict:
    binds, paths = package_dirs()
    project = str(Path(hessgpt.__file__).resolve().parent.parent)
    return {
        "sys_path": [project, *paths],
        "binds": [*_stdlib_dirs(), *binds],
        "preload": list(preload),
        "unsafe": unsafe,
    }


class _TemplateGone(Exception):
    """The template could not be handed a run (nothing ran)."""


_LOST = {"status": None, "maxrss_kb": 0, "cpu_s": 0.0, "killed": "lost"}


def _decode(data: bytes, capped: bool, limit: int) -> str:
    text = data.decode("utf-8", errors="replace")
    if capped:
        text += f"\n[output truncated at {limit} bytes]\n"
    return text


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("[output")]
    return lines[-1][:300] if lines else ""


class Sandbox:
    """One template process serving runs one at a time (``run`` is thread-safe; use several
    ``Sandbox`` objects to run in parallel). Started on first use; ``close()`` stops it."""

    def __init__(self, unsafe: bool = False, preload: tuple[str, ...] = policy.PRELOAD_MODULES):
        self.unsafe = unsafe
        self.preload = preload
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._owner = os.getpid()
        self.preloaded: list[str] = []

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            self._start()

    def _start(self) -> None:
        if self._owner != os.getpid():  # a forked copy of the caller: the template is the parent's
            self._proc, self._sock, self._owner = None, None, os.getpid()
        if self._proc is not None and self._proc.poll() is None:
            return
        self._stop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = _config(self.unsafe, self.preload)
        config["control_fd"] = theirs.fileno()
        env = dict(_ENV)
        env.update({k: os.environ[k] for k in _PASSED_ENV if k in os.environ})
        errors = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", "-X", "utf8", "-c", _BOOT, json.dumps(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                pass_fds=[theirs.fileno()],
                env=env,
                cwd="/",
                start_new_session=True,
            )
        finally:
            theirs.close()
        self._sock = ours
        ours.settimeout(_START_TIMEOUT_S)
        try:
            ready, _ = channel.receive(ours)
        except (EOFError, OSError):
            errors.seek(0)
            lines = errors.read().decode(errors="replace").strip().splitlines()
            self._stop()
            raise HessError(
                f"sandbox: the sandbox process failed to start ({lines[-1] if lines else 'no message'})"
            ) from None
        finally:
            errors.close()
        ours.settimeout(None)
        if not ready.get("ready"):
            self._stop()
            raise HessError(
                f"sandbox: refusing to run untrusted code, OS isolation is unavailable here ({ready.get('error')}); "
                "--unsafe-sandbox runs with resource limits only"
            )
        self.preloaded = list(ready["preloaded"])

    def _stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()  # the template dies with it (parent-death signal), runs with the template
            self._proc.wait()
            self._proc = None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- one run -----------------------------------------------------------------------------
    def run(self, code: str, timeout_s: float = 5, memory_mb: int = 100, stdin: str = "") -> SandboxResult:
        _validate(code, timeout_s, memory_mb, stdin)
        with self._lock:
            for attempt in (1, 2):
                self._start()
                try:
                    return self._run(code, float(timeout_s), int(memory_mb), stdin.encode("utf-8", "surrogatepass"))
                except _TemplateGone as exc:
                    self._stop()  # it died between runs: start a new one and try once more
                    if attempt == 2:
                        raise HessError(f"sandbox: the sandbox process does not accept runs ({exc})") from None
                except BaseException:
                    self._stop()  # interrupted mid-run: the template's state is unknown, replace it
                    raise
            raise AssertionError("unreachable")

    def _run(self, code: str, timeout_s: float, memory_mb: int, stdin: bytes) -> SandboxResult:
        assert self._sock is not None
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        started = time.monotonic()
        try:
            channel.send(self._sock, {"code": code, "timeout_s": timeout_s, "memory_mb": memory_mb}, [in_r, out_w, err_w])
        except OSError as exc:
            for fd in (in_w, out_r, err_r):
                os.close(fd)
            raise _TemplateGone(str(exc)) from None
        finally:
            for fd in (in_r, out_w, err_w):
                os.close(fd)
        outputs = {out_r: bytearray(), err_r: bytearray()}
        capped = {out_r: False, err_r: False}
        pending = memoryview(stdin)
        reply = None
        kill_sent = lost = False
        sel = selectors.DefaultSelector()
        sel.register(self._sock, selectors.EVENT_READ)
        for fd in outputs:
            sel.register(fd, selectors.EVENT_READ)
        if pending:
            os.set_blocking(in_w, False)
            sel.register(in_w, selectors.EVENT_WRITE)
        else:
            os.close(in_w)
        open_fds = {out_r, err_r} | ({in_w} if pending else set())
        deadline = started + timeout_s + _GRACE_S
        try:
            while reply is None or (open_fds - {in_w}):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    lost = True  # the template did not answer: it and its runs are killed below
                    reply = reply or {"status": None, "maxrss_kb": 0, "cpu_s": 0.0, "killed": "timeout"}
                    break
                for key, _ in sel.select(remaining):
                    fd = key.fileobj
                    if fd is self._sock:
                        sel.unregister(self._sock)
                        try:
                            reply, _ = channel.receive(self._sock)
                        except (EOFError, OSError):
                            reply, lost = dict(_LOST), True
                        if in_w in open_fds:
                            sel.unregister(in_w)
                            os.close(in_w)
                            open_fds.discard(in_w)
                    elif fd == in_w:
                        try:
                            written = os.write(in_w, pending[:65536])
                            pending = pending[written:]
                        except BrokenPipeError:
                            pending = pending[:0]
                        if not pending:
                            sel.unregister(in_w)
                            os.close(in_w)
                            open_fds.discard(in_w)
                    else:
                        chunk = os.read(fd, 65536)
                        if not chunk:
                            sel.unregister(fd)
                            open_fds.discard(fd)
                            continue
                        room = policy.OUTPUT_LIMIT_BYTES - len(outputs[fd])
                        outputs[fd] += chunk[: max(room, 0)]
                        if len(chunk) > room:
                            capped[fd] = True
                            if not kill_sent and reply is None:
                                kill_sent = True
                                try:
                                    channel.send(self._sock, {"kill": "output_limit"})
                                except OSError:
                                    pass  # the template is gone: its end of the socket reports it
        finally:
            sel.close()
            for fd in (out_r, err_r, *(open_fds & {in_w})):
                os.close(fd)
        wall = time.monotonic() - started
        if lost:
            self._stop()  # replaced on the next run
        stdout = _decode(bytes(outputs[out_r]), capped[out_r], policy.OUTPUT_LIMIT_BYTES)
        stderr = _decode(bytes(outputs[err_r]), capped[err_r], policy.OUTPUT_LIMIT_BYTES)
        reason, detail = self._verdict(reply, stderr, timeout_s)
        return SandboxResult(
            stdout=stdout,
            stderr=stderr,
            exit_reason=reason,
            wall_s=round(wall, 4),
            peak_mb=round(reply.get("maxrss_kb", 0) / 1024, 1),
            detail=detail,
            unsafe=self.unsafe,
        )

    @staticmethod
    def _verdict(reply: dict, stderr: str, timeout_s: float) -> tuple[str, str]:
        killed = reply.get("killed")
        status = reply.get("status")
        last = _last_line(stderr)
        if killed == "timeout":
            return "timeout", f"killed after {timeout_s:g} s of wall-clock time"
        if killed == "output_limit":
            return "output_limit", f"output over {policy.OUTPUT_LIMIT_BYTES} bytes, killed"
        if killed == "lost":
            return "killed", "the sandbox process died during the run (a new one serves the next run)"
        if killed or status is None:
            return "killed", "killed by the supervisor"
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig in (signal.SIGKILL, signal.SIGXCPU) and reply.get("cpu_s", 0.0) >= int(timeout_s) + 1 - 0.05:
                return "timeout", f"killed after {int(timeout_s) + 1} s of CPU time"
            if sig == signal.SIGSYS:
                return "forbidden", "killed by the system-call filter"
            return "killed", f"killed by signal {signal.Signals(sig).name}"
        code = os.WEXITSTATUS(status)
        if code == policy.EXIT_OK:
            return "ok", ""
        if code == policy.EXIT_MEMORY:
            return "memory", last or "MemoryError"
        if code == policy.EXIT_FORBIDDEN:
            return "forbidden", last
        if code == policy.EXIT_SETUP_FAILED:
            return "killed", last or "sandbox setup failed"
        return "error", last or f"exit status {code}"


def _validate(code: str, timeout_s: float, memory_mb: int, stdin: str) -> None:
    if not isinstance(code, str):
        raise HessError(f"sandbox: code must be text, not {type(code).__name__}")
    if len(code.encode("utf-8", "surrogatepass")) > policy.CODE_LIMIT_BYTES:
        raise HessError(f"sandbox: code is larger than {policy.CODE_LIMIT_BYTES} bytes")
    if not isinstance(stdin, str) or len(stdin.encode("utf-8", "surrogatepass")) > policy.STDIN_LIMIT_BYTES:
        raise HessError(f"sandbox: stdin must be text of at most {policy.STDIN_LIMIT_BYTES} bytes")
    if not 0 < timeout_s <= policy.MAX_TIMEOUT_S:
        raise HessError(f"sandbox: timeout_s must be in (0, {policy.MAX_TIMEOUT_S:g}], got {timeout_s}")
    if not 0 < memory_mb <= policy.MAX_MEMORY_MB:
        raise HessError(f"sandbox: memory_mb must be in (0, {policy.MAX_MEMORY_MB}], got {memory_mb}")
