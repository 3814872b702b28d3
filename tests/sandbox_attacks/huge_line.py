# attack: one print of 100 MB with no newline
# expect: output_limit memory

print('y' * (100 * 1024 * 1024), end='')
