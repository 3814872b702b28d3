# attack: send a UDP datagram to the test's UDP listener
# expect: forbidden
# must-not: listener

import random

os = random._os

socket = os.sys.modules["socket"]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"exfiltrated", ("127.0.0.1", __UDP_PORT__))
