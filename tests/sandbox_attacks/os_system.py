# attack: run shell commands with os.system and os.popen
# expect: ok error forbidden
# must-not: sentinel listener
# absent: pwned

import random

os = random._os

for path in __SENTINELS__:
    print(os.system(f"echo pw''ned > {path}"))
print(os.popen("echo pw''ned").read())
