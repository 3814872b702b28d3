# attack: allocate a list of a billion elements
# expect: memory

x = [0] * 10**9
