# attack: delete and overwrite the victim file planted outside
# expect: error forbidden
# must-not: victim-file

import random

os = random._os

try:
    os.truncate("__VICTIM_FILE__", 0)
except OSError as exc:
    print(exc)
os.remove("__VICTIM_FILE__")
