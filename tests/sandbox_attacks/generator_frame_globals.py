# attack: reach module globals through gi_frame and function __globals__ of library code
# expect: error forbidden
# must-not: sentinel

import json

g = json.dumps.__globals__
codecs = g["codecs"]
print(type(codecs))
gen = (x for x in [1])
print(gen.gi_frame.f_globals["__name__"])
f = codecs.open(__SENTINELS__[0], "w")
