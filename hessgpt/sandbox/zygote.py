"""The sandbox's template process: it loads the interpreter's libraries once, jails itself, then
forks one fresh, further-confined process per run.

Started by the supervisor as ``python -I -S -B -c ...`` with an empty environment. Process tree:

    P  (host pid namespace: preloads modules, builds the jail, then only waits)
    └── Z  (pid 1 of the new PID namespace: the template; receives run requests)
        └── run  (one per request: rlimits, no capabilities, seccomp, import guard, user code)

Z dies with P (parent-death signal) and exits when the control channel closes, and every run dies
with Z (PID namespace teardown and parent-death signal), so no sandboxed process can outlive the
supervisor's handle on it. Z enforces each run's wall-clock timeout itself.
"""

from __future__ import annotations

import gc
import importlib
import os
import select
import signal
import socket
import sys
import time

from hessgpt.sandbox import channel, guard, jail, policy, seccomp


def _preload(modules: list[str]) -> list[str]:
    loaded = []
    for name in modules:
        try:
            importlib.import_module(name)
            loaded.append(name)
            if name == "numpy":  # numpy's first reseed costs ~0.1 s: pay it once, here
                sys.modules["numpy"].random.seed()
        except ImportError:
            pass  # optional packages (numpy, sympy) may be missing
    return loaded


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _probe_seccomp() -> str | None:
    """Install the filter in a throwaway child and check that it refuses fork; None if it works."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            seccomp.install(os.getpid())
            try:
                os.fork()
                os._exit(0)  # a forked child would exit here too
            except PermissionError:
                os.write(write_end, b"ok")
        except OSError as exc:
            os.write(write_end, str(exc).encode()[:200])
        os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 512).decode(errors="replace")
    os.close(read_end)
    os.waitpid(pid, 0)
    if answer == "ok":
        return None
    return answer or "seccomp filter did not block fork"


def _run_child(request: dict, fds: list[int], base_space: int, unsafe: bool) -> None:
    """In the forked run process: confine, then execute the user's code. Never returns."""
    status = policy.EXIT_SETUP_FAILED
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, 65536)
        limit = base_space + int(request["memory_mb"]) * 1024 * 1024
        cpu = int(request["timeout_s"]) + 1
        jail.confine(limit, cpu)
        if not unsafe:
            jail.drop_capabilities()
            seccomp.install(os.getpid())
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed()  # a fork shares its parent's random state; Python's random reseeds itself
        guard.install()
        status = guard.execute(request["code"])
    except BaseException as exc:  # noqa: B036 - any failure before user code is a setup failure
        try:
            os.write(2, f"sandbox setup failed: {type(exc).__name__}: {exc}\n".encode())
        except OSError:
            pass
    os._exit(status)


def _serve_one(ctl: socket.socket, request: dict, fds: list[int], base_space: int, unsafe: bool) -> bool:
    """Fork, supervise and reap one run; report it. Returns False when the channel is gone."""
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        ctl.close()
        _run_child(request, fds, base_space, unsafe)
    for fd in fds:
        os.close(fd)
    pidfd = os.pidfd_open(pid)
    deadline = started + float(request["timeout_s"])
    killed = None
    alive = True
    ready, _, _ = select.select([pidfd, ctl], [], [], max(0.0, deadline - time.monotonic()))
    if ctl in ready and pidfd not in ready:
        try:
            message, extra = channel.receive(ctl, 3)
        except EOFError:
            alive, message, extra = False, {}, []
        for fd in extra:
            os.close(fd)
        killed = message.get("kill") or "killed"
    elif pidfd not in ready:
        killed = "timeout"
    if killed:
        os.kill(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    os.close(pidfd)
    if alive:
        channel.send(
            ctl,
            {
                "status": status,
                "maxrss_kb": usage.ru_maxrss,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "killed": killed,
            },
        )
    return alive


def _template_loop(ctl: socket.socket, base_space: int, unsafe: bool) -> None:
    gc.collect()
    gc.freeze()  # runs never scan (and so never copy) the preloaded objects
    while True:
        try:
            request, fds = channel.receive(ctl, 3)
        except EOFError:
            return
        if "code" not in request or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            continue
        if not _serve_one(ctl, request, fds, base_space, unsafe):
            return


def main(config: dict) -> None:
    ctl = socket.socket(fileno=config["control_fd"])
    unsafe = bool(config["unsafe"])
    loaded = _preload(config["preload"])
    base_space = _address_space()
    if unsafe:
        channel.send(ctl, {"ready": True, "preloaded": loaded, "base_space": base_space})
        _template_loop(ctl, base_space, unsafe)
        return
    try:
        if not seccomp.supported():
            raise OSError(f"the seccomp filter is written for x86_64 Linux, not {sys.platform}/{os.uname().machine}")
        jail.enter(config["binds"])
        pid = os.fork()
    except OSError as exc:
        channel.send(ctl, {"ready": False, "error": str(exc)})
        return
    if pid:  # P: nothing more to do than to live as long as Z
        ctl.close()
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    jail.prctl(jail.PR_SET_PDEATHSIG, signal.SIGKILL)
    jail.prctl(jail.PR_SET_DUMPABLE, 0)  # P needed it for the id maps; the template does not
    problem = _probe_seccomp()
    if problem:
        channel.send(ctl, {"ready": False, "error": problem})
        return
    channel.send(ctl, {"ready": True, "preloaded": loaded, "base_space": base_space})
    _template_loop(ctl, base_space, unsafe)
