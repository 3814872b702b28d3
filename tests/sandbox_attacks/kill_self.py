# attack: the program kills itself (allowed: its own pid), the verdict says so
# expect: killed

import random

os = random._os
print('bye')
os.kill(os.getpid(), 9)
