# attack: read the environment through /proc/self/environ and os.environ
# expect: error
# must-not: secret

import random

os = random._os

print(dict(os.environ))
print(os.getenv("__SECRET_ENV__"))
print(open.__self__)  # builtins
fd = os.open("/proc/self/environ", os.O_RDONLY)
print(os.read(fd, 65536))
