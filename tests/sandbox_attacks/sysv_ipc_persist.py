# attack: leave System V shared memory, a message queue and a POSIX queue behind for the next run (memory leak, cross-run channel)
# expect: ok
# stdout: all refused

CDLL = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "CDLL"][0]
libc = CDLL(None)
IPC_CREAT = 0o1000
results = {
    "shmget": libc.shmget(0x4853, 64 * 1024 * 1024, IPC_CREAT | 0o666),
    "msgget": libc.msgget(0x4853, IPC_CREAT | 0o666),
    "semget": libc.semget(0x4853, 1, IPC_CREAT | 0o666),
    "mq_open": libc.syscall(240, b"/hessgpt", 0o100 | 2, 0o666, None),
}
print(results)
print("all refused" if all(v == -1 for v in results.values()) else "SOMETHING PASSED")
