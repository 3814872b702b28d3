# attack: a shared anonymous mapping (not counted as data) of 2 GB, touched
# expect: memory error

import random

os = random._os

mmap = os.sys.modules["hessgpt.sandbox.guard"]._real_import("mmap")
m = mmap.mmap(-1, 2 * 1024**3)
for i in range(0, len(m), 4096):
    m[i] = 1
