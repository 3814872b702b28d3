# attack: use /dev/shm and /dev/mem as a writable or readable place
# expect: error
# must-not: sentinel

import random

os = random._os

for path in ("/dev/mem", "/dev/kmsg"):
    try:
        os.open(path, os.O_RDONLY)
    except OSError as exc:
        print(path, exc)
fd = os.open("/dev/shm/escape", os.O_CREAT | os.O_RDWR)
