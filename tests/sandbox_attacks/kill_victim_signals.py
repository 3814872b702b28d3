# attack: signal another process with tgkill, rt_sigqueueinfo and pidfd_send_signal
# expect: forbidden
# must-not: victim-process

import random

os = random._os
signal = os.sys.modules["signal"]
CDLL = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "CDLL"][0]
libc = CDLL(None)
for pid in (__VICTIM_PID__, 1, 2):
    print("tgkill", pid, libc.syscall(234, pid, pid, 9))
    print("rt_sigqueueinfo", pid, libc.syscall(129, pid, 9, 0))
    try:
        signal.pidfd_send_signal(os.pidfd_open(pid), 9)
    except OSError as exc:
        print("pidfd", exc)
os.pidfd_open(__VICTIM_PID__)
