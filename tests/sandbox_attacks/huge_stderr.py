# attack: flood stderr through a huge exception message
# expect: output_limit

raise ValueError('z' * (10 * 1024 * 1024))
