# attack: read the network configuration (/sys/class/net, /etc/resolv.conf, /etc/hosts) and the host's name
# expect: ok
# stdout: hidden 3 host sandbox

import random

os = random._os

hidden = 0
for path in ("/sys/class/net", "/etc/resolv.conf", "/etc/hosts"):
    try:
        print(path, os.listdir(path) if path.startswith("/sys") else os.open(path, 0))
    except OSError:
        hidden += 1
print("hidden", hidden, "host", os.uname().nodename)
