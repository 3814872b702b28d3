# attack: a fork bomb (every process forks forever)
# expect: forbidden timeout
# timeout: 1

import random

os = random._os

failures = 0
while True:
    try:
        os.fork()
    except OSError:
        failures += 1
        if failures > 1000:
            raise
