# attack: restore a real open and __import__ into builtins, then use them
# expect: forbidden error
# must-not: secret

import random

os = random._os

io = os.sys.modules["io"]
__builtins__.open = io.open
__builtins__.__import__ = os.sys.modules["hessgpt.sandbox.guard"]._real_import
import pathlib
for path in __SECRET_PATHS__:
    print(open(path).read())
