# attack: write into the stdin pipe and every inherited descriptor, looking for the control channel
# expect: ok
# stdout: open descriptors: [0, 1, 2]

import random

os = random._os

try:
    os.write(0, b"injected")
except OSError as exc:
    print("stdin", exc)
open_fds = []
for fd in range(0, 1024):
    try:
        os.fstat(fd)
        open_fds.append(fd)
    except OSError:
        pass
print("open descriptors:", open_fds)
