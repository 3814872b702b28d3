# attack: mount /proc or a tmpfs and unshare new namespaces
# expect: forbidden

CDLL = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "CDLL"][0]
libc = CDLL(None, use_errno=True)
print(libc.unshare(0x10000000 | 0x00020000))
if libc.mount(b"proc", b"/sandbox", b"proc", 0, None) != 0:
    raise PermissionError("mount refused")
