# attack: close stdout and replace it to hide output or hang the supervisor
# expect: ok error

import random

os = random._os

os.close(1)
os.close(2)
while True:
    try:
        os.write(1, b"x")
    except OSError:
        break
