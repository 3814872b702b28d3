# attack: the classic chroot escape (chdir .. beyond the root, chroot to a subdir)
# expect: forbidden
# absent: 'etc'

import random

os = random._os

for _ in range(50):
    os.chdir("..")
print(os.listdir("."))
os.chroot("/sandbox")
