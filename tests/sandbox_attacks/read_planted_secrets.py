# attack: read the secret files planted in /tmp, the repository and the home directory, via io.FileIO
# expect: ok
# must-not: secret
# stdout: unreadable

import random

os = random._os
io = os.sys.modules["io"]
for path in __SECRET_PATHS__:
    try:
        print(io.FileIO(path).read().decode())
    except OSError as exc:
        print("unreadable", path, type(exc).__name__)
