# attack: mount-API and mount-listing system calls newer than most deny lists (open_tree_attr, listmount, statmount)
# expect: ok
# stdout: all refused by the filter

import random

ctypes = random._os.sys.modules["ctypes"]
CDLL = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "CDLL"][0]
libc = CDLL(None, use_errno=True)
errnos = {}
for name, nr in {"open_tree_attr": 467, "listmount": 458, "statmount": 457}.items():
    libc.syscall(nr, 0, 0, 0, 0, 0)
    errnos[name] = ctypes.get_errno()
print(errnos)  # without the filter: EFAULT or EINVAL from the kernel; with it: EPERM (1)
print("all refused by the filter" if set(errnos.values()) == {1} else "SOMETHING REACHED THE KERNEL")
