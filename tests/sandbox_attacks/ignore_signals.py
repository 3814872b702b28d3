# attack: ignore SIGTERM, SIGXCPU, SIGINT, SIGALRM, then loop
# expect: timeout
# timeout: 1

import random

os = random._os

signal = os.sys.modules["signal"]
for sig in (signal.SIGTERM, signal.SIGXCPU, signal.SIGINT, signal.SIGALRM, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
while True:
    pass
