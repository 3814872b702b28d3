# attack: print without end
# expect: output_limit

while True:
    print('x' * 1000)
