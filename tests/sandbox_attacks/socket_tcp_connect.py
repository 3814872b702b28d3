# attack: connect to the test's TCP listener with the socket class found through __subclasses__
# expect: forbidden
# must-not: listener

sock_class = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "socket"][0]
s = sock_class()
s.connect(("127.0.0.1", __TCP_PORT__))
s.sendall(b"exfiltrated")
