# attack: a system call through the x32 ABI numbering, to slip past the filter's numbers
# expect: forbidden

CDLL = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "CDLL"][0]
libc = CDLL(None)
print(libc.syscall(0x40000000 | 57))  # fork in the x32 table
