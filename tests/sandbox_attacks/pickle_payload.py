# attack: a pickle whose loading calls os.system (reduce payload)
# expect: ok error forbidden
# must-not: sentinel
# absent: pwned

import random

os = random._os

pickle = os.sys.modules["hessgpt.sandbox.guard"]._real_import("pickle")

class Payload:
    def __reduce__(self):
        return (os.system, ("echo pw''ned; touch " + __SENTINELS__[0],))

print(pickle.loads(pickle.dumps(Payload())))
