# attack: reach a Unix socket (abstract or on disk) and socketpair
# expect: forbidden

import random

os = random._os

socket = os.sys.modules["socket"]
try:
    socket.socketpair()
except OSError as exc:
    print("socketpair", exc)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("\0hessgpt")
