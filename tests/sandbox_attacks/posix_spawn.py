# attack: spawn a process with posix_spawn and the spawn* family
# expect: forbidden error
# must-not: sentinel

import random

os = random._os

try:
    os.spawnv(os.P_NOWAIT, "/bin/sh", ["sh", "-c", "touch " + __SENTINELS__[0]])
except OSError as exc:
    print("spawnv", exc)
os.posix_spawn(os.sys.executable, ["python", "-c", "print(1)"], {})
