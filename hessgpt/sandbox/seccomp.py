"""A seccomp-BPF filter for sandboxed runs, assembled by hand and installed with prctl through ctypes.

The filter is a deny list on top of the namespaces (which already hide the file system, the network
and other processes): it refuses what a contained process could still use to reach out or to weaken
its own cage. Process creation (fork, vfork, clone, execve), sockets, ptrace and cross-process memory
access, signals to any process but itself, scheduling changes, System V IPC and message queues (they
would outlive the run), mounts and namespace changes, raising
resource limits, identity changes, kernel keyrings, BPF, perf, io_uring, module loading and clock
changes all fail with EPERM. ``clone3`` fails with ENOSYS (its flags live in memory a filter cannot read; ENOSYS is
what C libraries expect before they fall back to ``clone``, which is then refused). Any other
architecture or the x32 ABI kills the process, so a syscall number cannot be smuggled through another
calling convention, and system calls newer than the list get ENOSYS. Only x86_64 numbers are known here: elsewhere :func:`supported` is False and the
sandbox refuses to run.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000

# BPF opcodes (classic BPF, as the kernel's seccomp accepts)
LD_W_ABS = 0x20
JEQ_K = 0x15
JGE_K = 0x35
RET_K = 0x06

# offsets in struct seccomp_data
NR_OFFSET = 0
ARCH_OFFSET = 4


def _arg_low(i: int) -> int:
    return 16 + 8 * i


def _arg_high(i: int) -> int:
    return 20 + 8 * i


# x86_64 syscall numbers refused outright (EPERM)
DENIED_SYSCALLS: dict[str, int] = {
    # process creation and program execution
    "clone": 56, "fork": 57, "vfork": 58, "execve": 59, "execveat": 322,
    # network
    "socket": 41, "connect": 42, "accept": 43, "bind": 49, "listen": 50, "socketpair": 53, "accept4": 288,
    # other processes: signals, tracing, memory, file descriptors
    "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297, "pidfd_send_signal": 424, "pidfd_open": 434,
    "pidfd_getfd": 438, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
    "process_madvise": 440, "migrate_pages": 256, "move_pages": 279,
    # scheduling of other processes (a lowered priority would outlive the run in the template)
    "setpriority": 141, "sched_setparam": 142, "sched_setscheduler": 144, "sched_setaffinity": 203,
    "sched_setattr": 314, "ioprio_set": 251, "fanotify_init": 300,
    # System V IPC and POSIX message queues: objects that would outlive the run in the template's
    # IPC namespace (memory left behind, data read by the next run)
    "shmget": 29, "shmat": 30, "shmctl": 31, "shmdt": 67, "semget": 64, "semop": 65, "semctl": 66,
    "semtimedop": 220, "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "mq_open": 240,
    "mq_unlink": 241, "mq_timedsend": 242, "mq_timedreceive": 243, "mq_notify": 244, "mq_getsetattr": 245,
    # mounts, roots and namespaces
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "mount_setattr": 442, "open_tree_attr": 467, "statmount": 457, "listmount": 458,
    "name_to_handle_at": 303, "open_by_handle_at": 304, "process_mrelease": 448, "lsm_set_self_attr": 460,
    # limits and identity
    "setrlimit": 160, "setuid": 105, "setgid": 106, "setreuid": 113, "setregid": 114, "setgroups": 116,
    "setresuid": 117, "setresgid": 119, "setfsuid": 122, "setfsgid": 123, "capset": 126, "personality": 135,
    # kernel facilities with a history of exploits, or no business in a computation
    "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "add_key": 248,
    "request_key": 249, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "memfd_create": 319, "memfd_secret": 447, "init_module": 175, "finit_module": 313, "delete_module": 176,
    "kexec_load": 246, "kexec_file_load": 320, "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163,
    "quotactl": 179, "iopl": 172, "ioperm": 173, "syslog": 103, "settimeofday": 164, "clock_settime": 227,
    "clock_adjtime": 305, "adjtimex": 159, "sethostname": 170, "setdomainname": 171, "vhangup": 153,
    "mknod": 133, "mknodat": 259, "uselib": 134, "lookup_dcookie": 212,
}
CLONE3 = 435
# System calls newer than this list (x86_64 numbers up to 467, Linux 6.15) fail with ENOSYS, as on an
# older kernel: a deny list must not let through what did not exist when it was written.
NEWEST_KNOWN = 467
# allowed only when aimed at the calling process itself (arg 0 is its pid)
SELF_ONLY_SIGNALS: dict[str, int] = {"kill": 62, "tkill": 200, "tgkill": 234}
PRLIMIT64 = 302  # allowed only as a read of one's own limits: pid 0 and no new limit


def supported() -> bool:
    return platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def build_filter(own_pid: int) -> bytes:
    """The BPF program (packed ``struct sock_filter`` array) for a process whose pid is ``own_pid``."""
    deny = RET_ERRNO | errno.EPERM
    prog = [
        _insn(LD_W_ABS, 0, 0, ARCH_OFFSET),
        _insn(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        _insn(RET_K, 0, 0, RET_KILL_PROCESS),
        _insn(LD_W_ABS, 0, 0, NR_OFFSET),
        _insn(JGE_K, 0, 1, X32_SYSCALL_BIT),
        _insn(RET_K, 0, 0, RET_KILL_PROCESS),
        _insn(JGE_K, 0, 1, NEWEST_KNOWN + 1),
        _insn(RET_K, 0, 0, RET_ERRNO | errno.ENOSYS),
        _insn(JEQ_K, 0, 1, CLONE3),
        _insn(RET_K, 0, 0, RET_ERRNO | errno.ENOSYS),
    ]
    for nr in sorted(DENIED_SYSCALLS.values()):
        prog += [_insn(JEQ_K, 0, 1, nr), _insn(RET_K, 0, 0, deny)]
    for nr in SELF_ONLY_SIGNALS.values():
        # the kernel reads pid_t from the low 32 bits of the argument
        prog += [
            _insn(JEQ_K, 0, 4, nr),
            _insn(LD_W_ABS, 0, 0, _arg_low(0)),
            _insn(JEQ_K, 0, 1, own_pid),
            _insn(RET_K, 0, 0, RET_ALLOW),
            _insn(RET_K, 0, 0, deny),
        ]
    prog += [
        _insn(JEQ_K, 0, 10, PRLIMIT64),
        _insn(LD_W_ABS, 0, 0, _arg_low(0)),
        _insn(JEQ_K, 0, 7, 0),
        _insn(LD_W_ABS, 0, 0, _arg_high(0)),
        _insn(JEQ_K, 0, 5, 0),
        _insn(LD_W_ABS, 0, 0, _arg_low(2)),
        _insn(JEQ_K, 0, 3, 0),
        _insn(LD_W_ABS, 0, 0, _arg_high(2)),
        _insn(JEQ_K, 0, 1, 0),
        _insn(RET_K, 0, 0, RET_ALLOW),
        _insn(RET_K, 0, 0, deny),
        _insn(RET_K, 0, 0, RET_ALLOW),
    ]
    return b"".join(prog)


PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load(program: bytes) -> None:
    """Install a BPF program on the calling process (irreversible; sets no-new-privileges first).
    Raises OSError when the kernel refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) refused")
    if prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp filter refused: {errno.errorcode.get(err, err)}")


def install(own_pid: int) -> None:
    """Install the sandbox's filter for the process whose pid is ``own_pid``."""
    load(build_filter(own_pid))
