# attack: change another process's limits with prlimit
# expect: forbidden
# must-not: victim-process

import random

os = random._os

resource = os.sys.modules["hessgpt.sandbox.guard"]._real_import("resource")
resource.prlimit(1, resource.RLIMIT_CPU, (0, 0))
