# attack: grow memory 10 MB at a time until something gives
# expect: memory

chunks = []
while True:
    chunks.append(bytearray(10 * 1024 * 1024))
