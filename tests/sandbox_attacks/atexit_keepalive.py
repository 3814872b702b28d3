# attack: atexit and __del__ hooks that loop after the program ends
# expect: ok timeout
# timeout: 1

import random

os = random._os

atexit = os.sys.modules["atexit"]
atexit.register(lambda: [None for _ in iter(int, 1)])

class Forever:
    def __del__(self):
        while True:
            pass

keep = Forever()
print("done")
