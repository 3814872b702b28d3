# attack: a catastrophically backtracking regular expression (CPU burn in C code)
# expect: timeout
# timeout: 1

import re

re.match(r'(a+)+$', 'a' * 64 + 'b')
