# attack: become real root (setuid, setgroups) and read root-only files
# expect: forbidden
# absent: root:x:0:0

import random

os = random._os

print("uid", os.getuid(), "groups", os.getgroups())
os.setgroups([0])
