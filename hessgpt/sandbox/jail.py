"""Operating-system isolation, done with raw system calls through ctypes (Python 3.11 has no
``os.unshare``), in the order bubblewrap and nsjail use.

:func:`enter` turns the calling (fresh, single-threaded) process into a jailed one:

1. a private mount namespace, in which a tmpfs becomes the new root holding only read-only bind
   mounts of the directories the interpreter needs (its standard library and the allowed third-party
   packages, at their usual paths) and one empty read-only directory as the working directory; after
   ``pivot_root`` the old root is detached, so /home, /work, /etc, /proc, /dev and /tmp are gone;
2. if started as root, a switch to the unprivileged ``nobody`` user (65534) before anything else;
3. new user, mount, network, IPC, UTS, cgroup and PID namespaces: inside, uid 0 maps to that
   unprivileged user, the mounts become locked (the inner namespace cannot remount them writable),
   the network has only a downed loopback, and process ids restart at 1.

:func:`confine` then locks down each run process forked from the jailed template: resource limits,
no capabilities, not dumpable, no new privileges (set by the seccomp install).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import socket

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

SYS_PIVOT_ROOT = 155
SYS_CAPSET = 126
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
NOBODY = 65534

# Where the new root's tmpfs is mounted while it is built (in our private mount namespace only): the
# first of these that exists and holds none of the directories to bind.
STAGING_CANDIDATES = ("/tmp", "/mnt", "/media", "/srv", "/opt", "/var/tmp", "/run")
HOSTNAME = "sandbox"
WORKDIR = "/sandbox"  # empty, read-only: the working directory of every run

_libc = ctypes.CDLL(None, use_errno=True)


class JailError(OSError):
    """A step of the isolation the kernel refused (the message names the step)."""


def _check(result: int, step: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise JailError(err, f"{step}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = [None if v is None else v.encode() for v in (source, target, fstype, data)]
    _check(_libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {target}")


def _unshare(flags: int, step: str) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), step)


def prctl(option: int, arg: int) -> None:
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), 0, 0, 0), f"prctl({option})")


def _staging(binds: list[str]) -> str:
    for candidate in STAGING_CANDIDATES:
        if os.path.isdir(candidate) and not any(b == candidate or b.startswith(candidate + "/") for b in binds):
            return candidate
    raise JailError(0, f"no directory to build the root in: each of {', '.join(STAGING_CANDIDATES)} is missing or holds a library")


def _bind_readonly(source: str, root: str) -> None:
    target = root + source
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "wb").close()
    _mount(source, target, None, MS_BIND)  # not recursive: mounts below the source stay out
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _build_root(binds: list[str]) -> None:
    staging = _staging(binds)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", staging, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=4096,mode=0755")
    for source in binds:
        _bind_readonly(source, staging)
    os.makedirs(staging + WORKDIR, mode=0o755)
    os.mkdir(staging + "/.old")
    os.chdir(staging)
    _check(_libc.syscall(SYS_PIVOT_ROOT, b".", b".old"), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old", MNT_DETACH), "umount old root")
    os.rmdir("/.old")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir(WORKDIR)


def _write(proc_fd: int, name: str, text: str) -> None:
    fd = os.open(f"self/{name}", os.O_WRONLY, dir_fd=proc_fd)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def enter(binds: list[str]) -> None:
    """Jail the calling process (see the module docstring). Its next child is pid 1 of the new
    PID namespace. Raises JailError naming the step the kernel refused."""
    proc_fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY)  # for the id maps, after /proc is gone
    try:
        if os.geteuid() == 0:
            _unshare(CLONE_NEWNS, "unshare(mount namespace)")
        else:  # an unprivileged user gets the right to mount from a user namespace of its own
            uid, gid = os.geteuid(), os.getegid()
            _unshare(CLONE_NEWUSER | CLONE_NEWNS, "unshare(user namespace)")
            _write(proc_fd, "setgroups", "deny")
            _write(proc_fd, "uid_map", f"{uid} {uid} 1")
            _write(proc_fd, "gid_map", f"{gid} {gid} 1")
        _build_root(binds)
        if os.geteuid() == 0:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            prctl(PR_SET_DUMPABLE, 1)  # our /proc/self files must stay ours to write the id maps
        uid, gid = os.geteuid(), os.getegid()
        flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID
        _unshare(flags | CLONE_NEWCGROUP, "unshare(user, mount, net, ipc, uts, pid, cgroup namespaces)")
        _write(proc_fd, "setgroups", "deny")
        _write(proc_fd, "uid_map", f"0 {uid} 1")
        _write(proc_fd, "gid_map", f"0 {gid} 1")
        socket.sethostname(HOSTNAME)  # the new UTS namespace starts with the host's name
    finally:
        os.close(proc_fd)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    """Clear every capability (uid 0 inside the user namespace keeps none; nothing is exec'd later,
    so none can come back)."""
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    _check(_libc.syscall(SYS_CAPSET, ctypes.byref(header), ctypes.byref(data)), "capset")


def confine(address_space_bytes: int, cpu_seconds: int) -> None:
    """Resource limits and privileges of one run process (soft = hard, so nothing can be raised)."""
    limits = {
        resource.RLIMIT_AS: address_space_bytes,
        resource.RLIMIT_CPU: cpu_seconds,
        resource.RLIMIT_FSIZE: 0,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NOFILE: 64,
        resource.RLIMIT_NPROC: 0,
        resource.RLIMIT_MEMLOCK: 0,
        resource.RLIMIT_MSGQUEUE: 0,
    }
    for which, value in limits.items():
        resource.setrlimit(which, (value, value))
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    prctl(PR_SET_DUMPABLE, 0)
