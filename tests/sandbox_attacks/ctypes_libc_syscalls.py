# attack: call libc directly through the ctypes CDLL class found with __subclasses__
# expect: ok
# must-not: listener victim-process sentinel
# stdout: all refused

CDLL = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "CDLL"][0]
libc = CDLL(None)
results = {
    "fork": libc.fork(),
    "socket": libc.socket(2, 1, 0),
    "kill_victim": libc.kill(__VICTIM_PID__, 9),
    "kill_init": libc.kill(1, 9),
    "ptrace": libc.ptrace(16, 1, 0, 0),
    "mount": libc.mount(b"none", b"/sandbox", b"tmpfs", 0, None),
    "unshare": libc.unshare(0x10000000),
    "setuid": libc.setuid(0),
    "chroot": libc.chroot(b"/"),
    "execve": libc.execve(b"/bin/sh", None, None),
    "memfd": libc.memfd_create(b"x", 0),
}
print(results)
print("all refused" if all(v == -1 for v in results.values()) else "SOMETHING PASSED")
