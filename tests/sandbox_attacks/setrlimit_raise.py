# attack: raise the address-space and CPU limits back, then allocate 1 GB
# expect: forbidden memory

import random

os = random._os

resource = os.sys.modules["hessgpt.sandbox.guard"]._real_import("resource")
print(resource.getrlimit(resource.RLIMIT_AS))
for which in (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_NOFILE):
    try:
        resource.setrlimit(which, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (OSError, ValueError) as exc:
        print("refused", exc)
x = bytearray(1024**3)
