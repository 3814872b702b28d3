# attack: raw system calls by number: clone, clone3, execve, bpf, io_uring, perf, userfaultfd, keyctl
# expect: ok
# stdout: all refused

CDLL = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "CDLL"][0]
libc = CDLL(None)
numbers = {"clone": 56, "clone3": 435, "execve": 59, "bpf": 321, "io_uring_setup": 425,
           "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "setns": 308, "pivot_root": 155,
           "process_vm_readv": 310, "pidfd_open": 434, "init_module": 175}
results = {name: libc.syscall(nr, 17, 0, 0, 0, 0) for name, nr in numbers.items()}
print(results)
print("all refused" if all(v == -1 for v in results.values()) else "SOMETHING PASSED")
