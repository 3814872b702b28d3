# attack: resolve a host name (DNS exfiltration)
# expect: forbidden error
# must-not: listener

import random

os = random._os

socket = os.sys.modules["socket"]
print(socket.getaddrinfo("localhost", __TCP_PORT__))
print(socket.gethostbyname("example.com"))
