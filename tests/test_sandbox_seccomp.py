"""The seccomp program itself, evaluated by a small classic-BPF interpreter: which action each system
call gets, including the argument checks, other architectures and numbers newer than the list."""

from __future__ import annotations

import errno
import struct

from hessgpt.sandbox import seccomp

OWN_PID = 7
ALLOW = seccomp.RET_ALLOW
EPERM = seccomp.RET_ERRNO | errno.EPERM
ENOSYS = seccomp.RET_ERRNO | errno.ENOSYS
KILL = seccomp.RET_KILL_PROCESS


def _evaluate(nr: int, args=(0, 0, 0, 0, 0, 0), arch: int = seccomp.AUDIT_ARCH_X86_64) -> int:
    data = struct.pack("<iIQ6Q", nr, arch, 0, *args)
    program = seccomp.build_filter(OWN_PID)
    insns = [struct.unpack("HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == seccomp.LD_W_ABS:
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == seccomp.RET_K:
            return k
        elif code in (seccomp.JEQ_K, seccomp.JGE_K):
            taken = acc == k if code == seccomp.JEQ_K else acc >= k
            pc += jt if taken else jf
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        pc += 1


def test_ordinary_calls_pass():
    for nr in (0, 1, 3, 9, 12, 39, 60, 231, 257, 262, 318, 334):  # read write close mmap brk getpid exit ...
        assert _evaluate(nr) == ALLOW, nr


def test_denied_calls_get_eperm():
    for name, nr in seccomp.DENIED_SYSCALLS.items():
        assert _evaluate(nr) == EPERM, name


def test_clone3_and_newer_calls_get_enosys():
    assert _evaluate(seccomp.CLONE3) == ENOSYS
    for nr in (seccomp.NEWEST_KNOWN + 1, 500, 0x3FFFFFFF):
        assert _evaluate(nr) == ENOSYS


def test_other_abis_kill():
    assert _evaluate(39, arch=0x40000003) == KILL  # i386
    assert _evaluate(0x40000000 | 57) == KILL  # x32 fork


def test_signals_only_to_itself():
    for name, nr in seccomp.SELF_ONLY_SIGNALS.items():
        assert _evaluate(nr, (OWN_PID, 9, 0, 0, 0, 0)) == ALLOW, name
        for target in (1, OWN_PID + 1, 0, 0xFFFFFFFF):  # init, a sibling, the group, -1
            assert _evaluate(nr, (target, 9, 0, 0, 0, 0)) == EPERM, (name, target)


def test_prlimit_only_reads_own_limits():
    assert _evaluate(seccomp.PRLIMIT64, (0, 9, 0, 0x7FFF0000, 0, 0)) == ALLOW  # getrlimit
    assert _evaluate(seccomp.PRLIMIT64, (0, 9, 0x7FFF0000, 0, 0, 0)) == EPERM  # setrlimit
    assert _evaluate(seccomp.PRLIMIT64, (1, 9, 0, 0x7FFF0000, 0, 0)) == EPERM  # another process
    assert _evaluate(seccomp.PRLIMIT64, (1 << 32, 9, 0, 0, 0, 0)) == EPERM
