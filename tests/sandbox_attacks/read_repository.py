# attack: walk the repository and print every file mentioning the secret marker
# expect: ok
# must-not: secret
# stdout: files seen: 0

import random

os = random._os

# The third-party libraries the sandbox offers (numpy, sympy, mpmath) are bound read-only at their own
# paths, which lie inside the repository when its virtualenv does; they are meant to be readable.
libraries = tuple(path + "/" for path in __LIBRARIES__)
seen = 0
for root, dirs, names in os.walk("__REPO__"):
    if (root + "/").startswith(libraries):
        continue
    for name in names:
        seen += 1
        try:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            print(os.read(fd, 200))
        except OSError:
            pass
print("files seen:", seen)
