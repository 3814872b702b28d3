# attack: memory outside the address space: memfd_create and writes to a memory file
# expect: forbidden

import random

os = random._os

fd = os.memfd_create("x")
while True:
    os.write(fd, b"x" * 1024 * 1024)
