# attack: walk every class for functions whose globals hold system/popen and call them
# expect: ok error forbidden
# must-not: sentinel listener
# absent: pwned

calls = 0
for cls in ().__class__.__base__.__subclasses__():
    for attr in vars(cls).values():
        g = getattr(attr, "__globals__", None)
        if g and "system" in g and callable(g["system"]):
            try:
                g["system"]("echo pw''ned; touch " + __SENTINELS__[0])
                calls += 1
            except TypeError:
                pass
print("system calls attempted:", calls)
