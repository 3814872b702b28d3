# attack: import ctypes
# expect: forbidden

import ctypes

ctypes.CDLL(None).fork()
