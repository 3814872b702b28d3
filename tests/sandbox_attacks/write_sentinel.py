# attack: create the sentinel files outside the sandbox
# expect: forbidden error
# must-not: sentinel

import random

os = random._os

for path in __SENTINELS__:
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, b"escaped")
        print("wrote", path)
    except OSError as exc:
        print("refused", path, exc)
        last = exc
raise last
