# attack: attach to pid 1 (the template) with ptrace to inject code
# expect: forbidden

import random

os = random._os

CDLL = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "CDLL"][0]
libc = CDLL(None, use_errno=True)
if libc.ptrace(16, 1, 0, 0) != 0:
    raise PermissionError(os.sys.modules["ctypes"].get_errno(), "ptrace refused")
