# attack: fork a child that would outlive the run
# expect: forbidden
# must-not: sentinel

import random

os = random._os

pid = os.fork()
if pid == 0:
    os.open(__SENTINELS__[0], os.O_CREAT | os.O_WRONLY)
