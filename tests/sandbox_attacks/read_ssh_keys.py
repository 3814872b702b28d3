# attack: list and read ~/.ssh and /root/.ssh
# expect: ok
# must-not: secret
# stdout: hidden

import random

os = random._os

for home in (os.path.expanduser("~"), "/root", "/home"):
    for sub in ("", "/.ssh"):
        try:
            print(home + sub, os.listdir(home + sub))
        except OSError as exc:
            print("hidden", home + sub, type(exc).__name__)
