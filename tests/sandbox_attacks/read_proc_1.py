# attack: inspect pid 1 and the parent through /proc (cmdline, environ, root, mem)
# expect: ok
# must-not: secret
# stdout: no /proc

import random

os = random._os

for path in ("/proc/1/cmdline", "/proc/1/environ", "/proc/__PARENT_PID__/environ", "/proc/1/root/etc/passwd", "/proc/1/mem"):
    try:
        fd = os.open(path, os.O_RDONLY)
        print(path, os.read(fd, 4096))
    except OSError as exc:
        print("no /proc", path, type(exc).__name__)
