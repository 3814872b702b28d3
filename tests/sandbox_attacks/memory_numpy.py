# attack: a numpy array of 3.2 GB, then one filled page by page
# expect: memory

import numpy as np

try:
    a = np.ones((20000, 20000))
except MemoryError as exc:
    print(exc)
b = np.empty(200 * 1024 * 1024, dtype=np.uint8)
b[:] = 1
