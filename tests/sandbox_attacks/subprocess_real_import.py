# attack: import subprocess with the guard's own saved import function and run a shell
# expect: forbidden
# must-not: sentinel
# absent: pwned

import random

os = random._os

real_import = os.sys.modules["hessgpt.sandbox.guard"]._real_import
subprocess = real_import("subprocess")
print(subprocess.run(["/bin/sh", "-c", "echo pw''ned > " + __SENTINELS__[0]], capture_output=True))
