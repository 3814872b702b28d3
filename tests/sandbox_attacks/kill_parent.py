# attack: kill the supervisor, pid 1 of the sandbox, every process (-1) and the process group
# expect: forbidden
# must-not: victim-process

import random

os = random._os

for pid in (__PARENT_PID__, 1, __VICTIM_PID__, os.getppid()):
    try:
        os.kill(pid, 9)
        print("killed", pid)
    except OSError as exc:
        print("refused", pid, exc)
try:
    os.killpg(0, 9)
except OSError as exc:
    print("killpg", exc)
os.kill(-1, 9)
