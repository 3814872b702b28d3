# attack: sleep far past the timeout (no CPU used, so only the wall clock can stop it)
# expect: timeout
# timeout: 1

import time

time.sleep(10**6)
