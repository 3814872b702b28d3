# attack: overflow the C stack (json.dumps of 200,000 nested lists, recursion limit lifted)
# expect: killed error memory

import json
import random

os = random._os
os.sys.setrecursionlimit(10**8)
nested = []
for _ in range(200_000):
    nested = [nested]
print(len(json.dumps(nested)))
