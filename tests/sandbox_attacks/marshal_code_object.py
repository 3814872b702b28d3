# attack: a marshalled code object that opens a file, executed with exec
# expect: error forbidden
# must-not: sentinel

import random

os = random._os

marshal = os.sys.modules["marshal"]
blob = marshal.dumps(compile("import os; os.open(" + repr(__SENTINELS__[0]) + ", 65)", "x", "exec"))
exec(marshal.loads(blob), {"__name__": "random", "__builtins__": __builtins__})
