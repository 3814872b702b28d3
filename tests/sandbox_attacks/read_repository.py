# attack: walk the repository and print every file mentioning the secret marker
# expect: ok
# must-not: secret
# stdout: files seen: 0

import random

os = random._os

seen = 0
for root, dirs, names in os.walk("__REPO__"):
    for name in names:
        seen += 1
        try:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            print(os.read(fd, 200))
        except OSError:
            pass
print("files seen:", seen)
