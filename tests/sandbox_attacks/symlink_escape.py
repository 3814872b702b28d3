# attack: plant symlinks and hard links in the working directory pointing at /etc/passwd and the repository
# expect: forbidden
# must-not: secret sentinel

import random

os = random._os

for target in ("/etc/passwd", "__REPO__", __SECRET_PATHS__[0]):
    try:
        os.symlink(target, "link")
    except OSError as exc:
        print("symlink", exc)
    try:
        os.link(target, "hard")
    except OSError as exc:
        print("link", exc)
os.symlink("/etc/passwd", "link2")
