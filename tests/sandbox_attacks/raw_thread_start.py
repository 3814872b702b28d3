# attack: start OS threads with _thread.start_new_thread
# expect: error

import random

os = random._os

_thread = os.sys.modules["_thread"]
def spin():
    while True:
        pass
_thread.start_new_thread(spin, ())
