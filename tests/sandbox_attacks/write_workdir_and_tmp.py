# attack: write files in the working directory, /tmp and /
# expect: forbidden
# must-not: sentinel

import random

os = random._os

print(os.getcwd())
for path in ("escape.txt", "/tmp/escape.txt", "/escape.txt"):
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY))
    except OSError as exc:
        print(path, exc)
os.mkdir("newdir")
